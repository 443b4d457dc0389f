#!/usr/bin/env bash
# Builds the Pulumi CLI pinned in this folder's go.mod/go.sum, once per pin,
# into a cache outside the work tree (so a new clone reuses it), and puts the
# dynamic-provider plugin beside it. Prints the bin folder on the last line.
#
#   bash lab/tools/build.sh           # PULUMI_SRIOV_TOOLS overrides the cache folder
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
plugin=pulumi-resource-pulumi-nodejs
key=$(cat "$here/go.mod" "$here/go.sum" "$here/build.sh" "$here/$plugin" | sha256sum | cut -c1-16)
cache=${PULUMI_SRIOV_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-sriov/tools}
dest=$cache/$key

built() {
  [ -x "$dest/bin/pulumi" ] && [ -x "$dest/bin/$plugin" ] || return 1
  echo "tools: pulumi $("$dest/bin/pulumi" version) (built before, $dest)" >&2
  echo "$dest/bin"
}
built && exit 0
# One build at a time (test workers may ask at once); the others then find it built.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
built && exit 0

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then PATH=/usr/local/go/bin:$PATH; else
    echo "tools: the Go toolchain is needed to build the Pulumi CLI (go not found on PATH)" >&2; exit 1; fi
fi
version=$(cd "$here" && go list -m -f '{{.Version}}' github.com/pulumi/pulumi/pkg/v3)
echo "tools: building pulumi $version from its Go modules ($(go version | cut -d' ' -f3); the first build takes several minutes)" >&2
started=$(date +%s)
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"
# -v names each package as it is compiled; show a line every 250 of them.
if ! (cd "$here" && go build -v -trimpath -o "$tmp/bin/pulumi" \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) 2>&1 |
  awk '/^#|\.go:[0-9]+/ {print; next} {n++; if (n % 250 == 0) {printf "tools: %d packages compiled\n", n; fflush()}}' >&2
then
  echo "tools: go build of the Pulumi CLI failed (output above)" >&2; exit 1
fi
cp "$here/$plugin" "$tmp/bin/$plugin"
chmod +x "$tmp/bin/$plugin"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "tools: built pulumi $("$dest/bin/pulumi" version) in $(( $(date +%s) - started )) s ($dest)" >&2
echo "$dest/bin"
