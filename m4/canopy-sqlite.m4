dnl The sqlite plugin: SQLite storage backend (the embedded default).
AC_DEFUN([CANOPY_ARG_SQLITE], [CANOPY_PLUGIN_ARG([sqlite], [do not build the SQLite storage backend (the embedded default)])])
AC_DEFUN([CANOPY_RESULT_SQLITE], [CANOPY_PLUGIN_RESULT([sqlite])])
AC_DEFUN([CANOPY_CHECK_SQLITE], [CANOPY_PLUGIN_CHECK([sqlite], [sqlite3 >= 3.31])])
