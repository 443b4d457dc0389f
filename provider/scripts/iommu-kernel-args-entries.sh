# The options line of every Type #1 boot entry, as "<file>:options …" lines
# (checked by IommuKernelArgs after kernel-install). Every value is a
# positional argument:
#   $1 the boot path (bootctl --print-boot-path)
for f in "$1"/loader/entries/*.conf; do
  [ -f "$f" ] && grep -H "^options" "$f"
done
true
