#!/usr/bin/env bash
# bench/compare.sh — tlsmail and a private Debian Postfix, side by side, in
# the same run on the same machine, driven by the same load generator
# (bench/smtpload). Both fsync every message before answering 250; tlsmail
# then delivers to a Maildir, Postfix to discard(8) (so Postfix does less
# work per message). Prints msgs/s, p50/p99 and the ratio tlsmail/Postfix
# for plaintext and STARTTLS, c = 1/8/32, 1 KB and 100 KB, 1 and 10
# messages per connection, and tlsmail's memory per idle TLS session.
#
# Usage (as root, on loopback only):  bash bench/compare.sh [SECONDS_PER_RUN] [MAX_MESSAGES_PER_RUN]
# Environment: TLS_VERSION=1.2|1.3 (default 1.3), QUICK=1 (c=8, 1 KB only).
set -euo pipefail
secs=${1:-5}
maxn=${2:-4000}
tlsv=${TLS_VERSION:-1.3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/tlsmail-bench.XXXXXX)
chmod 755 "$work"
tlsmail_pid=""
pf_dir="$work/postfix"

cleanup() {
  [ -n "$tlsmail_pid" ] && kill -TERM "$tlsmail_pid" 2>/dev/null && wait "$tlsmail_pid" 2>/dev/null || true
  if [ -f "$pf_dir/queue/pid/master.pid" ]; then
    pfpid=$(tr -d ' ' < "$pf_dir/queue/pid/master.pid")
    kill -TERM "$pfpid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "compare.sh: run as root (it starts a private Postfix)" >&2; exit 2; }
command -v postfix >/dev/null || { echo "compare.sh: postfix is not installed (make test installs it)" >&2; exit 2; }

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "building..." >&2
(cd "$root" && go build -o "$work/tlsmail" ./cmd/tlsmail && go build -o "$work/smtpload" ./bench/smtpload)
T="$work/tlsmail"

# --- tlsmail -----------------------------------------------------------
data="$work/tlsmail-data"
mkdir -p "$data"
"$T" cert new-ca --out "$data/tls" >/dev/null
"$T" cert issue --ca "$data/tls" --host localhost,127.0.0.1 --out "$data/tls/server" >/dev/null
tport=$(freeport)
cat > "$data/tlsmail.toml" <<EOF
hostname = "tlsmail.bench.test"
data_dir = "$data"
local_domains = ["bench.test"]
log_level = "warn"
[aliases]
sink = "bench"
[tls]
cert = "tls/server.pem"
key = "tls/server.key"
[limits]
connections = 2000
connections_per_ip = 2000
[[listener]]
name = "mx"
address = "127.0.0.1:$tport"
mode = "starttls"
auth = "none"
EOF
echo "bench-password-123" | "$T" user add --config "$data/tlsmail.toml" bench >/dev/null
"$T" serve --config "$data/tlsmail.toml" 2> "$work/tlsmail.log" &
tlsmail_pid=$!

# --- Postfix (private instance) ------------------------------------------
mkdir -p "$pf_dir/etc" "$pf_dir/queue" "$pf_dir/data"
pport=$(freeport)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -keyout "$pf_dir/etc/key.pem" -out "$pf_dir/etc/cert.pem" 2>/dev/null
cat > "$pf_dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf_dir/queue
data_directory = $pf_dir/data
maillog_file = $pf_dir/postfix.log
maillog_file_prefixes = $pf_dir
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench.test
mydestination = bench.test
local_transport = discard:
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
smtpd_tls_chain_files = $pf_dir/etc/key.pem, $pf_dir/etc/cert.pem
smtpd_tls_security_level = may
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
EOF
sed "s/^LISTEN /127.0.0.1:$pport /" "$root/internal/testpeer/postfix-master.cf" > "$pf_dir/etc/master.cf"
postfix -c "$pf_dir/etc" set-permissions >/dev/null 2>&1
postfix -c "$pf_dir/etc" start >/dev/null 2>&1

for p in "$tport" "$pport"; do
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break
    sleep 0.1
  done
done

load() { "$work/smtpload" -t "${secs}s" -n "$maxn" -tls-version "$tlsv" -json "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }

printf '%-34s %10s %10s %7s   %16s %16s\n' "scenario (TLS $tlsv)" "tlsmail/s" "postfix/s" "ratio" "tlsmail p50/p99" "postfix p50/p99"
modes="none starttls"; concs="1 8 32"; sizes="1024 102400"; pers="1 10"
if [ "${QUICK:-}" = 1 ]; then concs="8"; sizes="1024"; fi
for mode in $modes; do
  for c in $concs; do
    for size in $sizes; do
      for m in $pers; do
        label="$mode c=$c size=$size m=$m"
        a=$(load -addr "127.0.0.1:$tport" -tls "$mode" -c "$c" -size "$size" -m "$m" -to sink@bench.test)
        b=$(load -addr "127.0.0.1:$pport" -tls "$mode" -c "$c" -size "$size" -m "$m" -to sink@bench.test)
        ar=$(field "$a" msgs_per_s); br=$(field "$b" msgs_per_s)
        ae=$(field "$a" errors); be=$(field "$b" errors)
        ratio=$(python3 -c "print(f'{$ar/$br:.2f}' if $br > 0 else 'n/a')")
        printf '%-34s %10.1f %10.1f %7s   %7.1f/%-8.1f %7.1f/%-8.1f' "$label" "$ar" "$br" "$ratio" \
          "$(field "$a" p50_ms)" "$(field "$a" p99_ms)" "$(field "$b" p50_ms)" "$(field "$b" p99_ms)"
        [ "$ae$be" != "00" ] && printf '  errors %s/%s' "$ae" "$be"
        echo
      done
    done
  done
done
"$work/smtpload" -addr "127.0.0.1:$tport" -tls starttls -idle 500 -pid "$tlsmail_pid" -tls-version "$tlsv"
