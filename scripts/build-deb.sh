#!/usr/bin/env bash
# Build the Debian package: the binary (with its VCS stamp), the man pages
# (generated from the help text: go run ./scripts/genman), then nfpm,
# pinned as a Go tool in packaging/tools/go.mod.
#   scripts/build-deb.sh [OUTDIR]     (default: ./dist)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cd "$root"
export ARCH=$(go env GOARCH)
# Debian versions start with a digit: v1.2.3 -> 1.2.3, else 0.0~git<date>.<commit>.
if tag=$(git describe --tags --exact-match 2>/dev/null); then
	export VERSION=${tag#v}
else
	export VERSION="0.0~git$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date +%Y%m%d).$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
fi
CGO_ENABLED=0 go build -buildvcs=auto -trimpath -o "$build/tlsmail" ./cmd/tlsmail
mkdir -p "$build/man"
"$build/tlsmail" man --out "$build/man" --gzip
(cd packaging/tools && go build -o "$build/nfpm" github.com/goreleaser/nfpm/v2/cmd/nfpm)
cp packaging/nfpm.yaml packaging/tlsmail.service packaging/tlsmail.toml packaging/postinst packaging/prerm packaging/postrm "$build/"
cd "$build"
./nfpm pkg --packager deb --config nfpm.yaml --target "$out/" >&2
ls "$out"/tlsmail_"$VERSION"_"$ARCH".deb
