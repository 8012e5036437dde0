dnl CANOPY_CHECK_PLUGINDIR: where plugins are installed and looked up.
dnl The directory carries the ABI number so a daemon never loads plugins
dnl built for another ABI.
AC_DEFUN([CANOPY_CHECK_PLUGINDIR], [
  AC_ARG_WITH([plugindir],
    [AS_HELP_STRING([--with-plugindir=DIR],
                    [plugin directory @<:@LIBDIR/canopy/plugins-ABI@:>@])],
    [plugindir="$withval"],
    [plugindir="\${libdir}/canopy/plugins-$CANOPY_PLUGIN_ABI"])
  AC_SUBST([plugindir])
  CANOPY_PLUGINDIR_SHOW="$plugindir"
])
