dnl The transport scaffold (plugins/transport-common): built when a
dnl transport plugin that links it is.
AC_DEFUN([CANOPY_CHECK_TRANSPORT_COMMON], [
  AM_CONDITIONAL([WITH_TRANSPORT_COMMON],
                 [test "x$enable_tcp" = xyes || test "x$enable_quic" = xyes])
])
