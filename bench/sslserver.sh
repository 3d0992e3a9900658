#!/usr/bin/env bash
# bench/sslserver.sh — `tlsmail sslserver` against stunnel4, in the same
# run, on loopback: both exec cat(1) and a Go echo program per connection,
# with the same ECDSA P-256 certificate, driven by the same Go client
# (bench/sslbench). Prints new TLS connections/s at c=8 and c=32, bulk MB/s
# through one connection, relay RSS per idle connection, and the ratios.
#
# Usage: bash bench/sslserver.sh [sslbench flags, e.g. -time 5s -max 4000 -bulk 256 -idle 300 -group x25519]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v stunnel4 >/dev/null || { echo "sslserver.sh: stunnel4 is not installed (scripts/install-peers.sh installs it)" >&2; exit 2; }
work=$(mktemp -d /tmp/tlsmail-sslbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "building..." >&2
(cd "$root" && go build -o "$work/tlsmail" ./cmd/tlsmail && go build -o "$work/sslbench" ./bench/sslbench && go build -o "$work/gocat" ./bench/sslbench/gocat)
ulimit -n 8192 2>/dev/null || true
"$work/sslbench" -tlsmail "$work/tlsmail" -gocat "$work/gocat" "$@" 2> >(grep -v 'LOG3\[ui\]: pthread_join() failed' >&2)
