dnl CANOPY_CHECK_CORE_DEPS: what every part of canopy needs.
AC_DEFUN([CANOPY_CHECK_CORE_DEPS], [
  GLIB_REQUIRED=2.74
  PKG_CHECK_MODULES([GLIB], [glib-2.0 >= $GLIB_REQUIRED gio-2.0 >= $GLIB_REQUIRED gio-unix-2.0 gmodule-2.0])
  PKG_CHECK_MODULES([GNUTLS], [gnutls >= 3.7])
  PKG_CHECK_MODULES([LIBXML], [libxml-2.0 >= 2.9])
  PKG_CHECK_MODULES([CUNIT], [cunit >= 2.1])
  PKG_CHECK_MODULES([SOUP], [libsoup-3.0 >= 3.2])
  PKG_CHECK_MODULES([JSON], [json-glib-1.0 >= 1.6])
  AC_DEFINE_UNQUOTED([GLIB_VERSION_MIN_REQUIRED], [GLIB_VERSION_2_74],
                     [Oldest GLib API canopy uses])
  AC_DEFINE_UNQUOTED([GLIB_VERSION_MAX_ALLOWED], [GLIB_VERSION_2_74],
                     [Newest GLib API canopy may use])
])
