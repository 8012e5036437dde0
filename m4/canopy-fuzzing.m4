dnl Fuzzing: libFuzzer targets for every parser of outside input (clang only).
AC_DEFUN([CANOPY_ARG_FUZZING], [
  AC_ARG_ENABLE([fuzzing],
    [AS_HELP_STRING([--enable-fuzzing],
                    [build the libFuzzer targets, with the whole tree under ASan and UBSan (needs CC=clang); make fuzz runs them])],
    [], [enable_fuzzing=no])
])

dnl Everything is compiled with the coverage libFuzzer follows and the
dnl sanitizers; only the fuzz programs link libFuzzer's main.
AC_DEFUN([CANOPY_CHECK_FUZZING], [
  FUZZ_CFLAGS=""
  FUZZ_LDFLAGS=""
  AS_IF([test "x$enable_fuzzing" = xyes], [
    canopy_fuzz_sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=all"
    AC_MSG_CHECKING([whether $CC can build libFuzzer targets])
    canopy_save_CFLAGS="$CFLAGS"
    canopy_save_LDFLAGS="$LDFLAGS"
    CFLAGS="$CFLAGS -fsanitize=fuzzer $canopy_fuzz_sanitizers"
    LDFLAGS="$LDFLAGS -fsanitize=fuzzer $canopy_fuzz_sanitizers"
    AC_LINK_IFELSE([AC_LANG_SOURCE([[
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) { return size > 0 && data[0] == 0; }
]])], [AC_MSG_RESULT([yes])],
      [AC_MSG_RESULT([no])
       AC_MSG_ERROR([--enable-fuzzing needs a compiler with libFuzzer: configure with CC=clang])])
    CFLAGS="$canopy_save_CFLAGS -fsanitize=fuzzer-no-link $canopy_fuzz_sanitizers -fno-omit-frame-pointer -g -O1"
    LDFLAGS="$canopy_save_LDFLAGS $canopy_fuzz_sanitizers"
    FUZZ_LDFLAGS="-fsanitize=fuzzer"
  ])
  AC_SUBST([FUZZ_LDFLAGS])
  AM_CONDITIONAL([ENABLE_FUZZING], [test "x$enable_fuzzing" = xyes])
])

AC_DEFUN([CANOPY_RESULT_FUZZING], [
  AS_IF([test "x$enable_fuzzing" = xyes],
        [AC_MSG_NOTICE([  fuzz targets:         yes (make fuzz)])],
        [AC_MSG_NOTICE([  fuzz targets:         no (--enable-fuzzing with CC=clang)])])
])
