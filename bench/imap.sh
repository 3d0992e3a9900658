#!/usr/bin/env bash
# bench/imap.sh — tlsmail's IMAP server against Dovecot (Debian
# dovecot-imapd, a private instance) on one Maildir of 1,000 messages, on
# loopback, over IMAPS with the same certificate and the same bcrypt hash:
# LOGIN + SELECT + UID FETCH 1:* BODY.PEEK[] (alternating runs, medians),
# and PSS per idle logged-in session. Run as root (Dovecot's mail
# processes run as nobody).
#
# Usage: bash bench/imap.sh [-n 1000 -size 2048 -rounds 7 -idle 200]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
test -x /usr/lib/dovecot/imap || { echo "imap.sh: dovecot-imapd is not installed" >&2; exit 2; }
work=$(mktemp -d /tmp/tlsmail-imapbench-bin.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/tlsmail" ./cmd/tlsmail && go build -o "$work/imapbench" ./bench/imapbench)
"$work/imapbench" -tlsmail "$work/tlsmail" "$@"
