# Lists running libvirt domains and active networks with their XML, one
# tab-separated line per item with base64 fields, ending with "end"; or an
# "err" line when virsh cannot list (parsed by parseUsageOutput in
# provider/resources/sriovPf/usage.ts).
#   $1 the libvirt connection URI
uri="$1"
b64() { base64 | tr -d '\n'; }
if ! doms=$(virsh -c "$uri" list --name 2>&1); then printf "err\t%s\n" "$(printf "%s" "$doms" | b64)"; exit 0; fi
printf "%s\n" "$doms" | while IFS= read -r d; do [ -n "$d" ] || continue; printf "dom\t%s\t%s\n" "$(printf "%s" "$d" | b64)" "$(virsh -c "$uri" dumpxml --domain "$d" 2>/dev/null | b64)"; done
if ! nets=$(virsh -c "$uri" net-list --name 2>&1); then printf "err\t%s\n" "$(printf "%s" "$nets" | b64)"; exit 0; fi
printf "%s\n" "$nets" | while IFS= read -r n; do [ -n "$n" ] || continue; printf "net\t%s\t%s\n" "$(printf "%s" "$n" | b64)" "$(virsh -c "$uri" net-dumpxml --network "$n" 2>/dev/null | b64)"; done
echo end
