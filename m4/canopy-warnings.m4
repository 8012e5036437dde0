dnl CANOPY_CHECK_CFLAG(flag, action-if-accepted)
AC_DEFUN([CANOPY_CHECK_CFLAG], [
  AC_MSG_CHECKING([whether $CC accepts $1])
  canopy_save_CFLAGS="$CFLAGS"
  CFLAGS="$CFLAGS -Werror $1"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
                    [AC_MSG_RESULT([yes]); $2], [AC_MSG_RESULT([no])])
  CFLAGS="$canopy_save_CFLAGS"
])

dnl CANOPY_COMPILE_WARNINGS: strict warnings, -Werror on request.
AC_DEFUN([CANOPY_COMPILE_WARNINGS], [
  AC_ARG_ENABLE([werror],
    [AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors])],
    [], [enable_werror=no])
  WARN_CFLAGS=""
  for flag in -Wall -Wextra -Wformat=2 -Wformat-security -Wshadow \
      -Wpointer-arith -Wcast-align -Wwrite-strings -Wstrict-prototypes \
      -Wmissing-prototypes -Wmissing-declarations -Wold-style-definition \
      -Wredundant-decls -Wnested-externs -Wundef -Wvla -Wnull-dereference \
      -Wno-unused-parameter \
      -Wno-missing-field-initializers -Werror=implicit-function-declaration \
      -fno-strict-aliasing -fstack-protector-strong; do
    CANOPY_CHECK_CFLAG([$flag], [WARN_CFLAGS="$WARN_CFLAGS $flag"])
  done
  AS_IF([test "x$enable_werror" = xyes], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
  AC_SUBST([WARN_CFLAGS])
])
