# Keeps a copy of a file that a command rewrites (grub.cfg before update-grub),
# then runs the command; restore-file.sh puts the copy back if a later step
# fails. Every value is a positional argument:
#   $1 the file   $2 where its copy goes   $3… the command and its arguments
# A file that does not exist leaves no copy (an older one is removed).
f="$1"; kept="$2"; shift 2
if [ -e "$f" ]; then
  if ! { mkdir -p -- "$(dirname -- "$kept")" && cp -p -- "$f" "$kept"; }; then
    echo "could not keep a copy of $f in $kept" >&2; exit 1
  fi
else
  rm -f -- "$kept"
fi
exec "$@"
