# Reboots the host two seconds from now, detached from this command so that
# it returns (and its SSH channel closes) before the host goes down. systemd
# first; /sbin/reboot where systemctl is missing or refuses.
nohup sh -c 'sleep 2; systemctl reboot || /sbin/reboot' >/dev/null 2>&1 </dev/null &
