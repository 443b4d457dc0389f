# Puts a file back as it was before a run changed it (an undo step of the
# executor, provider/host/execute.ts). Every value is a positional argument:
#   $1 the file
#   $2 the copy kept before the change ("": the file did not exist, so it is removed)
# The copy replaces the file atomically (a temporary file beside it, renamed),
# with the copy's mode and owner; a file that already matches is left alone.
f="$1"; kept="$2"
if [ -z "$kept" ]; then rm -f -- "$f"; exit; fi
[ -e "$kept" ] || { echo "no copy of $f was kept ($kept is missing)" >&2; exit 1; }
if [ -e "$f" ] && cmp -s -- "$kept" "$f"; then exit 0; fi
t=$(mktemp -- "$(dirname -- "$f")/.$(basename -- "$f").tmp.XXXXXX") || exit 1
trap 'rm -f -- "$t"' EXIT
cp -p -- "$kept" "$t" || exit 1
sync -- "$t" 2>/dev/null || sync
mv -f -- "$t" "$f" || exit 1
trap - EXIT
