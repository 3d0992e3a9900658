#!/usr/bin/env bash
# bench/compare.sh — `make bench`: tlsmail, a private Debian Postfix and the
# no-queue Go sink (bench/sink, the "ceiling"), side by side in the same run
# on the same machine, driven by the same load generator (bench/smtpload).
#
# tlsmail and Postfix both fsync every message before answering 250 and
# then deliver it to an fsync'd Maildir (tlsmail: an alias to a user;
# Postfix: virtual(8)). The sink reads each message, discards it and
# answers 250 at once. All three use a P-256 certificate and no session
# resumption.
#
# Prints the issue-13 table: six rows (STARTTLS TLS 1.2/X25519 and TLS 1.3
# default at c=8, TLS 1.2 at c=32, TLS 1.2 with 10 msgs/conn, plaintext 1
# and 10 msgs/conn), 1 KB messages, msgs/s of each server, tlsmail/Postfix,
# tlsmail/ceiling and p50/p99 latency of each, medians of RUNS runs of MSGS
# messages. The servers alternate: each run starts with a different one,
# and after each measurement the script waits until that server has
# delivered everything it accepted, so no backlog loads the next one. Then
# c=32 p99 latency and RSS per idle TLS session (tlsmail and the sink).
#
# Usage (loopback only):  make bench   or   bash bench/compare.sh
# Environment:
#   RUNS=3 MSGS=2000   runs per row and messages per run (quick: RUNS=1 MSGS=300)
#   SECS=120           time limit of one run (smtpload stops at MSGS or SECS)
#   IDLE=500           idle STARTTLS sessions for the RSS line (0: skip)
#   DRAIN_SECS=120     longest wait for a server's Maildir to catch up
#   TMPDIR=/tmp        where every server's spool and Maildir live (one file
#                      system for all three; e.g. a journalled ext4 mount to
#                      see the write path without the root file system's)
#   DURABLE=1          also run bench/sink -durable (each message appended to a
#                      file and fdatasync'd, group commit, before its 250: the
#                      least a durable server does) and print tlsmail's share
#                      of that "durable ceiling" per row
#   NO_POSTFIX=1       leave Postfix out (it is also left out when not root:
#                      only the private Postfix needs root)
#   SWEEP=1            instead of the table, the older sweep: plaintext and
#                      STARTTLS (TLS_VERSION, default 1.3), c=1/8/32, 1 KB and
#                      100 KB, 1 and 10 msgs/conn, one run each (QUICK=1: c=8, 1 KB)
set -euo pipefail
runs=${RUNS:-3}
msgs=${MSGS:-2000}
secs=${SECS:-120}
idle=${IDLE:-500}
drain_secs=${DRAIN_SECS:-120}
for v in runs msgs secs idle drain_secs; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -le 100000 ] || { echo "compare.sh: ${v^^} must be a number up to 100000" >&2; exit 2; }
done
[ "$runs" -ge 1 ] && [ "$msgs" -ge 1 ] || { echo "compare.sh: RUNS and MSGS must be at least 1" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh" # stop_pid, freeport, wait_greeting, bench_workdir
work=$(bench_workdir tlsmail-bench)
chmod 755 "$work"
tlsmail_pid="" sink_pid="" dsink_pid="" pf_dir="$work/postfix"

use_postfix=1
if [ "${NO_POSTFIX:-}" = 1 ]; then
  use_postfix=0
elif [ "$(id -u)" != 0 ]; then
  echo "compare.sh: not root, so no private Postfix: its columns stay empty" >&2
  use_postfix=0
elif ! command -v postfix >/dev/null; then
  echo "compare.sh: postfix is not installed (make peers installs it): its columns stay empty" >&2
  use_postfix=0
fi

cleanup() {
  [ -n "$tlsmail_pid" ] && stop_pid "$tlsmail_pid"
  [ -n "$sink_pid" ] && stop_pid "$sink_pid"
  [ -n "$dsink_pid" ] && stop_pid "$dsink_pid"
  if [ -f "$pf_dir/queue/pid/master.pid" ]; then
    stop_pid "$(tr -d ' ' < "$pf_dir/queue/pid/master.pid")"
  fi
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM



echo "building..." >&2
(cd "$root" && go build -o "$work/tlsmail" ./cmd/tlsmail && go build -o "$work/smtpload" ./bench/smtpload &&
  go build -o "$work/sink" ./bench/sink)
sync # the build's deleted temporary files: their inodes count as recently deleted until written (see bench_workdir)
T="$work/tlsmail"

# --- tlsmail -----------------------------------------------------------
data="$work/tlsmail-data"
tport=$(freeport)
bench_server_data "$T" "$data" "$tport" tlsmail.bench.test
"$T" serve --config "$data/tlsmail.toml" 2> "$work/tlsmail.log" &
tlsmail_pid=$!
tlsmail_maildir="$data/mail/bench"

# --- the ceiling: bench/sink, same certificate as tlsmail ------------------
sport=$(freeport)
"$work/sink" -addr "127.0.0.1:$sport" -cert "$data/tls/server.pem" -key "$data/tls/server.key" 2> "$work/sink.log" &
sink_pid=$!
dport=""
if [ "${DURABLE:-}" = 1 ]; then
  dport=$(freeport)
  "$work/sink" -addr "127.0.0.1:$dport" -cert "$data/tls/server.pem" -key "$data/tls/server.key" \
    -durable "$work/durable.journal" -hostname dsink.bench.test 2> "$work/dsink.log" &
  dsink_pid=$!
fi

# --- Postfix (private instance, root) ---------------------------------------
pport="" postfix_maildir="$pf_dir/mail/sink"
if [ "$use_postfix" = 1 ]; then
  # Postfix's queue (a file made and deleted per message) and its Maildir in
  # block groups of their own, as a host's spool and mailboxes are apart
  mkdir -p "$pf_dir" && chattr +T "$pf_dir" 2>/dev/null || true
  mkdir -p "$pf_dir/etc" "$pf_dir/queue" "$pf_dir/data" "$pf_dir/mail"
  chown 65534:65534 "$pf_dir/mail" # virtual(8) delivers as this uid
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
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $pf_dir/mail
virtual_mailbox_maps = inline:{ sink@bench.test=sink/ }
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_tls_chain_files = $pf_dir/etc/key.pem, $pf_dir/etc/cert.pem
smtpd_tls_security_level = may
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 200
service_throttle_time = 1s
biff = no
shlib_directory = /usr/lib/postfix
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
EOF
  sed "s/^LISTEN /127.0.0.1:$pport /" "$root/internal/testpeer/postfix-master.cf" > "$pf_dir/etc/master.cf"
  postfix -c "$pf_dir/etc" set-permissions >/dev/null 2>&1
  postfix -c "$pf_dir/etc" start >/dev/null 2>&1
fi

wait_greeting "$tport" tlsmail
wait_greeting "$sport" sink
[ -n "$dport" ] && wait_greeting "$dport" "durable sink"
[ "$use_postfix" = 1 ] && wait_greeting "$pport" Postfix

# load ARGS...: one smtpload run, JSON on stdout, bounded by SECS (and by
# timeout(1) should smtpload itself hang).
load() { timeout -k 5 $((secs + 60)) "$work/smtpload" -t "${secs}s" -json "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }

# delivered SERVER: messages in that server's Maildir so far.
delivered() {
  local d
  case $1 in tlsmail) d=$tlsmail_maildir ;; postfix) d=$postfix_maildir ;; *) echo 0; return ;; esac
  python3 -c 'import os,sys; print(sum(len(os.listdir(os.path.join(sys.argv[1], s))) for s in ("new", "cur") if os.path.isdir(os.path.join(sys.argv[1], s))))' "$d"
}
declare -A accepted=([tlsmail]=0 [postfix]=0 [sink]=0 [dsink]=0)
# drain SERVER: wait (at most DRAIN_SECS) until it delivered all it accepted.
drain() {
  [ "$1" = sink ] || [ "$1" = dsink ] && return 0
  local end=$((SECONDS + drain_secs)) n
  while n=$(delivered "$1"); [ "$n" -lt "${accepted[$1]}" ]; do
    if [ "$SECONDS" -ge "$end" ]; then
      echo "compare.sh: $1 delivered $n of ${accepted[$1]} after ${drain_secs}s; going on" >&2
      return 0
    fi
    sleep 0.2
  done
}
port_of() { case $1 in tlsmail) echo "$tport" ;; postfix) echo "$pport" ;; sink) echo "$sport" ;; dsink) echo "$dport" ;; esac; }

servers=(tlsmail postfix sink)
[ "$use_postfix" = 1 ] || servers=(tlsmail sink)
[ -n "$dport" ] && servers+=(dsink)

if [ "${SWEEP:-}" = 1 ]; then
  tlsv=${TLS_VERSION:-1.3}
  printf '%-28s %10s %10s %10s %7s   %s\n' "scenario (TLS $tlsv)" tlsmail/s postfix/s ceiling/s t/pf "p50/p99 ms per server"
  concs="1 8 32"; sizes="1024 102400"
  if [ "${QUICK:-}" = 1 ]; then concs="8"; sizes="1024"; fi
  for mode in none starttls; do for c in $concs; do for size in $sizes; do for m in 1 10; do
    declare -A rate=([postfix]=0) lat=([postfix]="-")
    for s in "${servers[@]}"; do
      r=$(load -addr "127.0.0.1:$(port_of "$s")" -tls "$mode" -tls-version "$tlsv" -c "$c" -size "$size" -m "$m" -n "$msgs" -to sink@bench.test)
      accepted[$s]=$((accepted[$s] + $(field "$r" messages)))
      rate[$s]=$(field "$r" msgs_per_s); printf -v "lat[$s]" '%.1f/%.1f' "$(field "$r" p50_ms)" "$(field "$r" p99_ms)"
      [ "$(field "$r" errors)" = 0 ] || lat[$s]+="(errors $(field "$r" errors))"
      drain "$s"
    done
    ratio=$(python3 -c "import sys; a,b=map(float,sys.argv[1:]); print(f'{a/b:.2f}' if b > 0 else '-')" "${rate[tlsmail]}" "${rate[postfix]}")
    printf '%-28s %10.1f %10.1f %10.1f %7s   %s  %s  %s\n' "$mode c=$c size=$size m=$m" "${rate[tlsmail]}" "${rate[postfix]}" \
      "${rate[sink]}" "$ratio" "${lat[tlsmail]}" "${lat[postfix]}" "${lat[sink]}"
  done; done; done; done
  exit 0
fi

# The rows of issue 13: label | -tls | -tls-version | -group | -c | -m
rows=(
  "STARTTLS TLS 1.2 (X25519), c=8, 1 msg/conn|starttls|1.2|X25519,P-256|8|1"
  "STARTTLS TLS 1.3 default (X25519MLKEM768), c=8, 1 msg/conn|starttls|1.3||8|1"
  "STARTTLS TLS 1.2, c=32, 1 msg/conn|starttls|1.2|X25519,P-256|32|1"
  "STARTTLS TLS 1.2, c=8, 10 msgs/conn|starttls|1.2|X25519,P-256|8|10"
  "plain, c=8, 1 msg/conn|none|||8|1"
  "plain, c=8, 10 msgs/conn|none|||8|10"
)
results="$work/results.jsonl"
: > "$results"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# RSS per idle TLS session first, while each process is fresh (no freed
# heap from the load runs for the sessions to reuse).
declare -A idle_kib=()
if [ "$idle" -gt 0 ]; then
  for s in tlsmail sink; do
    pid=$tlsmail_pid; [ "$s" = sink ] && pid=$sink_pid
    if r=$(timeout -k 5 $((secs + 60)) "$work/smtpload" -addr "127.0.0.1:$(port_of "$s")" -tls starttls \
      -idle "$idle" -pid "$pid" -json); then
      idle_kib[$s]=$(field "$r" kib_per_session)
    else
      echo "compare.sh: idle sessions on $s failed" >&2
    fi
  done
fi

# Warm-up, not measured: Postfix starts its smtpd processes, Go its heap.
for s in "${servers[@]}"; do
  r=$(load -addr "127.0.0.1:$(port_of "$s")" -tls starttls -c 8 -n 100 -to sink@bench.test) || true
  [ -n "$r" ] && accepted[$s]=$((accepted[$s] + $(field "$r" messages)))
  drain "$s"
done

ns=${#servers[@]}
for run in $(seq "$runs"); do
  for i in "${!rows[@]}"; do
    IFS='|' read -r label mode tlsv group c m <<< "${rows[$i]}"
    for k in $(seq 0 $((ns - 1))); do
      s=${servers[$(((run - 1 + k) % ns))]}
      echo "run $run/$runs, row $((i + 1)): $s" >&2
      args=(-addr "127.0.0.1:$(port_of "$s")" -tls "$mode" -c "$c" -m "$m" -size 1024 -n "$msgs" -to sink@bench.test -label "$i $s $run")
      [ -n "$tlsv" ] && args+=(-tls-version "$tlsv")
      [ -n "$group" ] && args+=(-group "$group")
      r=$(load "${args[@]}") || true
      if [ -z "$r" ]; then
        r="{\"label\":\"$i $s $run\",\"messages\":0,\"errors\":1,\"msgs_per_s\":0,\"p50_ms\":0,\"p99_ms\":0,\"first_error\":\"smtpload failed\"}"
      fi
      echo "$r" >> "$results"
      accepted[$s]=$((accepted[$s] + $(field "$r" messages)))
      drain "$s"
    done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A got=()
for s in "${servers[@]}"; do got[$s]=$(delivered "$s"); done

python3 - "$results" "$runs" "$msgs" "$load_start" "$load_end" "$use_postfix" \
  "${idle}" "${idle_kib[tlsmail]:-}" "${idle_kib[sink]:-}" \
  "${got[tlsmail]}/${accepted[tlsmail]}" "${got[postfix]:-0}/${accepted[postfix]}" "${rows[@]}" <<'EOF'
import json, statistics, sys

(path, runs, msgs, load_start, load_end, use_postfix, idle, idle_t, idle_s,
 deliv_t, deliv_p), rows = sys.argv[1:12], [r.split("|")[0] for r in sys.argv[12:]]
servers = ["tlsmail", "postfix", "sink"]
res = {}  # (row, server) -> [result]
for line in open(path):
    r = json.loads(line)
    row, srv, _ = r["label"].split()
    res.setdefault((int(row), srv), []).append(r)

def med(row, srv, key):
    rs = res.get((row, srv))
    if not rs:
        return None
    return statistics.median(r[key] for r in rs)

def rate(v): return "–" if v is None else f"{v:,.0f}"
def lat(row, srv):
    a, b = med(row, srv, "p50_ms"), med(row, srv, "p99_ms")
    return "–" if a is None else f"{a:.1f} / {b:.1f}"

print(f"make bench: 1 KB messages, medians of {runs} alternating run(s) of {int(msgs):,} messages; "
      f"load average {load_start} at the start, {load_end} at the end")
print()
print("| row | tlsmail | Postfix | ceiling | tlsmail / Postfix | tlsmail / ceiling "
      "| tlsmail p50 / p99 ms | Postfix p50 / p99 ms | ceiling p50 / p99 ms |")
print("|---|---|---|---|---|---|---|---|---|")
missed = []
for i, label in enumerate(rows):
    t, p, s = (med(i, x, "msgs_per_s") for x in servers)
    vs_p = f"{t / p:.2f}×" if t is not None and p else "–"
    vs_s = f"{100 * t / s:.0f}%" if t is not None and s else "–"
    if t is not None and p and t / p < 1:
        vs_p = f"**{vs_p}**"
    print(f"| {label} | {rate(t)} | {rate(p)} | {rate(s)} | {vs_p} | {vs_s} "
          f"| {lat(i, 'tlsmail')} | {lat(i, 'postfix')} | {lat(i, 'sink')} |")
    floor = 0.40 if "10 msgs" in label else 0.60
    if t is not None and p and t / p < 2:
        missed.append(f"row {i + 1} tlsmail/Postfix {t / p:.2f}× < 2×")
    if t is not None and s and t / s < floor:
        missed.append(f"row {i + 1} tlsmail/ceiling {100 * t / s:.0f}% < {100 * floor:.0f}%")
print()
c32 = next(i for i, l in enumerate(rows) if "c=32" in l)
p99 = lambda srv: "–" if med(c32, srv, "p99_ms") is None else f"{med(c32, srv, 'p99_ms'):.1f} ms"
print(f"c=32 p99 latency (row {c32 + 1}): tlsmail {p99('tlsmail')}, Postfix {p99('postfix')}, "
      f"ceiling {p99('sink')} (target: tlsmail < 50 ms)")
if med(c32, "tlsmail", "p99_ms") is not None and med(c32, "tlsmail", "p99_ms") >= 50:
    missed.append("c=32 p99 latency >= 50 ms")
if int(idle) > 0:
    kib = lambda v: f"{float(v):.1f} KiB" if v else "–"
    print(f"RSS per idle TLS session ({idle} STARTTLS sessions, TLS 1.3 default, growth of the process RSS): "
          f"tlsmail {kib(idle_t)}, ceiling {kib(idle_s)} (Postfix: a process per session) (target: tlsmail <= 40 KiB)")
    if idle_t and float(idle_t) > 40:
        missed.append("RSS per idle TLS session > 40 KiB")
tls = []
for i, label in enumerate(rows):
    seen = {srv: sorted({r.get("tls", "") for r in res.get((i, srv), [])} - {""}) for srv in servers}
    if any(seen.values()):
        tls.append(f"row {i + 1}: " + ", ".join(f"{n} {'/'.join(v) or '–'}"
                   for n, v in zip(["tlsmail", "Postfix", "ceiling"], (seen[x] for x in servers))))
print("negotiated: " + "; ".join(tls))
print(f"delivered to Maildir (delivered/accepted, warm-up included): tlsmail {deliv_t}"
      + (f", Postfix {deliv_p}" if use_postfix == "1" else ""))
errs = [f"row {int(r['label'].split()[0]) + 1} {r['label'].split()[1]} run {r['label'].split()[2]}: "
        f"{r['errors']} errors, {r['messages']} msgs ({r.get('first_error', '')})"
        for rs in res.values() for r in rs if r["errors"] or r["messages"] < int(msgs)]
print("errors or short runs: " + ("; ".join(errs) if errs else "none"))
print("targets missed (issue 13): " + ("; ".join(missed) if missed else "none"))
if any(srv == "dsink" for _, srv in res):
    print()
    print("durable ceiling (DURABLE=1: bench/sink -durable, each message appended to one file and "
          "fdatasync'd with group commit before its 250; no delivery):")
    for i, label in enumerate(rows):
        t, d = med(i, "tlsmail", "msgs_per_s"), med(i, "dsink", "msgs_per_s")
        share = f"{100 * t / d:.0f}%" if t is not None and d else "–"
        print(f"  row {i + 1} ({label}): durable ceiling {rate(d)} msgs/s, p50 / p99 {lat(i, 'dsink')} ms; tlsmail / durable ceiling {share}")
EOF
