dnl The postgresql plugin: PostgreSQL storage backend through libpq.
AC_DEFUN([CANOPY_ARG_POSTGRESQL], [CANOPY_PLUGIN_ARG([postgresql], [do not build the PostgreSQL storage backend])])
AC_DEFUN([CANOPY_RESULT_POSTGRESQL], [CANOPY_PLUGIN_RESULT([postgresql])])
AC_DEFUN([CANOPY_CHECK_POSTGRESQL], [CANOPY_PLUGIN_CHECK([postgresql], [libpq >= 13])])
