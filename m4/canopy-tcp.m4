dnl The tcp plugin: TCP+TLS transport.
AC_DEFUN([CANOPY_ARG_TCP], [CANOPY_PLUGIN_ARG([tcp], [do not build the TCP+TLS transport])])
AC_DEFUN([CANOPY_RESULT_TCP], [CANOPY_PLUGIN_RESULT([tcp])])
dnl TCP needs only GIO and GnuTLS, which the core requires already.
AC_DEFUN([CANOPY_CHECK_TCP], [
  canopy_tcp_why=""
  AS_IF([test "x$enable_tcp" = xno], [canopy_tcp_why=" (disabled)"], [enable_tcp=yes])
  AM_CONDITIONAL([WITH_TCP], [test "x$enable_tcp" = xyes])
])
