#!/usr/bin/env bash
# bench/outbound.sh — outbound delivery throughput, tlsmail vs Postfix's
# smtp client, same run, same machine, same sink.
#
# A private Postfix "sink" (smtpd with STARTTLS, delivering to discard)
# receives; tlsmail and a second private Postfix (the "relay") each get N
# messages injected by bench/smtpload and relay them to the sink over
# STARTTLS (policy encrypt). The clock runs from the first injected message
# until the sink has logged N deliveries for that relay. Prints msgs/s and
# the ratio. (Postfix's smtp-sink cannot do TLS, hence a Postfix sink.)
#
# Usage (root, loopback only): bash bench/outbound.sh [N]
set -euo pipefail
n=${1:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh" # stop_pid, freeport, wait_greeting
work=$(mktemp -d /tmp/tlsmail-outbench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for d in sink relay; do
    f="$work/$d/queue/pid/master.pid"
    [ -f "$f" ] && kill -TERM "$(tr -d ' ' < "$f")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$work"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "outbound.sh: run as root (private Postfix instances)" >&2; exit 2; }

echo "building..." >&2
(cd "$root" && go build -o "$work/tlsmail" ./cmd/tlsmail && go build -o "$work/smtpload" ./bench/smtpload)
T="$work/tlsmail"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -keyout "$work/sink.key" -out "$work/sink.pem" 2>/dev/null

# postfix_instance NAME PORT EXTRA-MAIN-LINES...
postfix_instance() {
  local name=$1 port=$2; shift 2
  local d="$work/$name"
  mkdir -p "$d/etc" "$d/queue" "$d/data"
  {
    echo "compatibility_level = 3.6"
    echo "queue_directory = $d/queue"
    echo "data_directory = $d/data"
    echo "maillog_file = $d/postfix.log"
    echo "maillog_file_prefixes = $d"
    echo "inet_interfaces = 127.0.0.1"
    echo "inet_protocols = ipv4"
    echo "myhostname = $name.bench.test"
    echo "mynetworks = 127.0.0.0/8"
    echo "alias_maps ="
    echo "alias_database ="
    echo "smtpd_client_connection_count_limit = 0"
    echo "smtpd_client_connection_rate_limit = 0"
    echo "smtpd_client_message_rate_limit = 0"
    echo "default_process_limit = 200"
    echo "shlib_directory = /usr/lib/postfix"
    echo "daemon_directory = /usr/lib/postfix/sbin"
    echo "meta_directory = /etc/postfix"
    printf '%s\n' "$@"
  } > "$d/etc/main.cf"
  sed "s/^LISTEN /127.0.0.1:$port /" "$root/internal/testpeer/postfix-master.cf" > "$d/etc/master.cf"
  postfix -c "$d/etc" set-permissions >/dev/null 2>&1
  postfix -c "$d/etc" start >/dev/null 2>&1
}

sink_port=$(freeport); relay_port=$(freeport); tport=$(freeport)
postfix_instance sink "$sink_port" \
  "mydestination = sink.test" "local_recipient_maps =" "local_transport = discard:" \
  "smtpd_tls_chain_files = $work/sink.key, $work/sink.pem" "smtpd_tls_security_level = may"
postfix_instance relay "$relay_port" \
  "mydestination =" "relay_domains = sink.test" \
  "transport_maps = inline:{sink.test=smtp:[127.0.0.1]:$sink_port}" \
  "smtp_tls_security_level = encrypt"

data="$work/tlsmail-data"
mkdir -p "$data"
"$T" cert new-ca --out "$data/tls" >/dev/null
"$T" cert issue --ca "$data/tls" --host localhost,127.0.0.1 --out "$data/tls/server" >/dev/null
cat > "$data/tlsmail.toml" <<EOF
hostname = "tlsmail.bench.test"
data_dir = "$data"
local_domains = ["tlsmail.bench.test"]
relay_networks = ["127.0.0.0/8"]
log_level = "warn"
[tls]
cert = "tls/server.pem"
key = "tls/server.key"
[limits]
connections_per_ip = 2000
[queue]
workers = 16
[outbound]
mta_sts = false
[outbound.policy]
"sink.test" = "encrypt"
[transport]
"sink.test" = "127.0.0.1:$sink_port"
[[listener]]
name = "mx"
address = "127.0.0.1:$tport"
mode = "plain"
auth = "none"
EOF
: > "$data/users"   # no local users, but serve wants its users file to exist
"$T" serve --config "$data/tlsmail.toml" 2> "$work/tlsmail.log" &
pids+=($!)

for p in "$sink_port" "$relay_port" "$tport"; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && break; sleep 0.1; done
done

sent_count() { grep -c "postfix/discard.*status=sent" "$work/sink/postfix.log" 2>/dev/null || true; }

# run LABEL PORT: inject N, wait until the sink has N more deliveries.
run() {
  local label=$1 port=$2
  local before; before=$(sent_count)
  local start; start=$(date +%s.%N)
  "$work/smtpload" -addr "127.0.0.1:$port" -tls none -c 8 -n "$n" -t 300s -to user@sink.test -label "$label inject" >&2
  local deadline=$((SECONDS + 600))
  while [ $(( $(sent_count) - before )) -lt "$n" ]; do
    [ $SECONDS -gt $deadline ] && { echo "$label: timed out with $(( $(sent_count) - before ))/$n delivered" >&2; return 1; }
    sleep 0.2
  done
  local end; end=$(date +%s.%N)
  python3 -c "print(f'{$n/($end-$start):.1f}')"
}

echo "outbound: $n messages each, injected at c=8, relayed over STARTTLS (encrypt) to a Postfix sink"
a=$(run tlsmail "$tport")
b=$(run postfix "$relay_port")
printf 'tlsmail  %8s msgs/s end to end\npostfix  %8s msgs/s end to end\nratio    %8s\n' "$a" "$b" "$(python3 -c "print(f'{$a/$b:.2f}')")"
