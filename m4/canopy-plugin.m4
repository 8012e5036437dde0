dnl Shared macros behind the one-file-per-plugin m4 files.
dnl CANOPY_PLUGIN_ARG(name, help-text)
AC_DEFUN([CANOPY_PLUGIN_ARG], [
  AC_ARG_ENABLE([$1], [AS_HELP_STRING([--disable-$1], [$2 @<:@default=auto@:>@])],
                [], [enable_$1=auto])
])
dnl CANOPY_PLUGIN_CHECK(name, pkg-modules, [extra-check-on-success])
dnl Sets NAME_CFLAGS/NAME_LIBS, the WITH_NAME conditional and canopy_NAME_why.
AC_DEFUN([CANOPY_PLUGIN_CHECK], [
  canopy_$1_why=""
  AS_IF([test "x$enable_$1" != xno], [
    PKG_CHECK_MODULES(m4_toupper([$1]), [$2],
      [enable_$1=yes],
      [AS_IF([test "x$enable_$1" = xyes],
             [AC_MSG_ERROR([--enable-$1 was given but $2 was not found])])
       canopy_$1_why=" ($2 not found)"
       enable_$1=no])
  ], [canopy_$1_why=" (disabled)"])
  AM_CONDITIONAL(m4_toupper([WITH_$1]), [test "x$enable_$1" = xyes])
])
dnl CANOPY_PLUGIN_RESULT(name)
AC_DEFUN([CANOPY_PLUGIN_RESULT], [
  AC_MSG_NOTICE([    $1: ${enable_$1}${canopy_$1_why}])
])
