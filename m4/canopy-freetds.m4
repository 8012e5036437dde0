dnl The freetds plugin: SQL Server storage backend through FreeTDS.
AC_DEFUN([CANOPY_ARG_FREETDS], [CANOPY_PLUGIN_ARG([freetds], [do not build the SQL Server storage backend through FreeTDS])])
AC_DEFUN([CANOPY_RESULT_FREETDS], [CANOPY_PLUGIN_RESULT([freetds])])
dnl Debian's freetds-dev ships no pkg-config file: look for db-lib itself.
AC_DEFUN([CANOPY_CHECK_FREETDS], [
  canopy_freetds_why=""
  AS_IF([test "x$enable_freetds" != xno], [
    AC_CHECK_HEADER([sybdb.h],
      [AC_CHECK_LIB([sybdb], [dbinit], [FREETDS_LIBS="-lsybdb"; enable_freetds=yes],
                    [canopy_freetds_why=" (libsybdb not found)"])],
      [canopy_freetds_why=" (sybdb.h not found)"])
    AS_IF([test -n "$canopy_freetds_why"], [
      AS_IF([test "x$enable_freetds" = xyes],
            [AC_MSG_ERROR([--enable-freetds was given but FreeTDS db-lib$canopy_freetds_why])])
      enable_freetds=no])
  ], [canopy_freetds_why=" (disabled)"])
  FREETDS_CFLAGS=""
  AC_SUBST([FREETDS_CFLAGS])
  AC_SUBST([FREETDS_LIBS])
  AM_CONDITIONAL([WITH_FREETDS], [test "x$enable_freetds" = xyes])
])
