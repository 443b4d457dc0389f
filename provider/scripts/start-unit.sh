# Starts a systemd unit whose file was just written, enabling it too when
# asked, in one systemctl call and without a daemon-reload: systemd reads a
# unit file it has not loaded when the unit is started (systemd 246 and
# later). An older systemd that still holds the unit as not found gets one
# reload. A failing start shows the unit's journal.
# Positional args: $1 the unit   $2 "enable" to enable it at boot as well
unit="$1"
if [ "$2" = enable ]; then set -- enable --now --no-reload; else set -- start; fi
systemctl "$@" -- "$unit" && exit 0
r=$?
case $(systemctl show -p LoadState -- "$unit" 2>/dev/null) in
  LoadState=not-found)
    systemctl daemon-reload && systemctl "$@" -- "$unit" && exit 0
    r=$? ;;
esac
journalctl -u "$unit" -n 15 --no-pager -o cat >&2
exit "$r"
