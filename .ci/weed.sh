#!/usr/bin/env bash
# weed.sh DIR VERSION: builds SeaweedFS's weed binary (an S3-compatible
# server for the artifact store's tests) into DIR/weed unless it is there.
# `go install …/weed@VERSION` is refused (the module's go.mod has replace
# directives), so the module is downloaded, copied writable and built in
# place: about 9 minutes cold on a 2-core machine, once per machine.
set -euo pipefail
dir=$1 ver=$2
if [ -x "$dir/weed" ]; then
	printf '%s\n' "$dir/weed"
	exit 0
fi
mod=github.com/seaweedfs/seaweedfs
src=$(GOFLAGS=-mod=mod go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$src" ] || { echo "weed.sh: go mod download $mod@$ver gave no directory" >&2; exit 1; }
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
mkdir -p "$dir"
echo "building weed $ver into $dir (once per machine; several minutes)" >&2
(cd "$work" && GOFLAGS=-buildvcs=false go build -o "$dir/weed.tmp" ./weed) >&2
mv "$dir/weed.tmp" "$dir/weed"
printf '%s\n' "$dir/weed"
