dnl The quic plugin: QUIC transport (ngtcp2).
AC_DEFUN([CANOPY_ARG_QUIC], [CANOPY_PLUGIN_ARG([quic], [do not build the QUIC transport (ngtcp2)])])
AC_DEFUN([CANOPY_RESULT_QUIC], [CANOPY_PLUGIN_RESULT([quic])])
AC_DEFUN([CANOPY_CHECK_QUIC],
  [CANOPY_PLUGIN_CHECK([quic], [libngtcp2 >= 0.12 libngtcp2_crypto_gnutls >= 0.12])])
