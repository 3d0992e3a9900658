#!/usr/bin/env bash
# bench/cpu.sh — server CPU per message (µs of utime+stime from /proc/PID/stat),
# tlsmail vs the no-queue ceiling (bench/sink), for the issue-13 rows that
# wall-clock throughput cannot show on a loaded machine: CPU seconds are far
# less sensitive to other processes than msgs/s. tlsmail's figure includes
# its local delivery (the script waits until the Maildir holds every message
# before reading the counters); the client's (bench/smtpload) is shown too.
#
# Usage:  bash bench/cpu.sh [BINARY]      (BINARY: a built tlsmail; default: build one)
# Environment: MSGS=2000 RUNS=3 (medians of RUNS runs per row and server);
#   ROWS=c (or ab, ...): only those rows; TMPDIR: where the server's data
#   (queue and Maildir) lives — its file system is part of what is measured;
#   PERF_DIR=DIR: also `perf record -g` the tlsmail process, one file per run
#   (the perf figures then include perf's own overhead)
set -euo pipefail
msgs=${MSGS:-2000}
runs=${RUNS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh" # stop_pid, freeport, wait_greeting, ticks, stime, hz
work=$(bench_workdir tlsmail-cpu)
tlsmail_pid="" sink_pid=""
cleanup() {
  for p in $tlsmail_pid $sink_pid; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/smtpload" ./bench/smtpload && go build -o "$work/sink" ./bench/sink)
if [ -n "${1:-}" ]; then T=$1; else (cd "$root" && go build -o "$work/tlsmail" ./cmd/tlsmail); T="$work/tlsmail"; fi

data="$work/data"
tport=$(freeport) sport=$(freeport)
bench_server_data "$T" "$data" "$tport" tlsmail.bench.test
"$T" serve --config "$data/tlsmail.toml" 2> "$work/tlsmail.log" &
tlsmail_pid=$!
"$work/sink" -addr "127.0.0.1:$sport" -cert "$data/tls/server.pem" -key "$data/tls/server.key" 2> "$work/sink.log" &
sink_pid=$!
wait_greeting "$tport"; wait_greeting "$sport"
maildir="$data/mail/bench"
delivered() { python3 -c 'import os,sys; print(sum(len(os.listdir(os.path.join(sys.argv[1], s))) for s in ("new", "cur") if os.path.isdir(os.path.join(sys.argv[1], s))))' "$maildir"; }

# one SERVER PORT ARGS...: prints "server_us client_us server_sys_%" per message.
one() {
  local s=$1 port=$2; shift 2
  local t0 t1 out n c1 d0 s0 s1 pid
  pid=$([ "$s" = tlsmail ] && echo "$tlsmail_pid" || echo "$sink_pid")
  d0=$(delivered)
  t0=$(ticks "$pid") s0=$(stime "$pid")
  local perf_pid=""
  if [ -n "${PERF_DIR:-}" ] && [ "$s" = tlsmail ]; then
    perf record -q -F 997 -g -p "$tlsmail_pid" -o "$PERF_DIR/perf.$(date +%s%N).data" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  out=$( { /usr/bin/time -f 'CPU %U %S' "$work/smtpload" -json -t 300s -addr "127.0.0.1:$port" -n "$msgs" -to sink@bench.test "$@" ; } 2>&1 )
  n=$(python3 -c "import json,sys; print(json.loads(sys.argv[1].splitlines()[0])['messages'])" "$out")
  if [ "$s" = tlsmail ]; then
    local end=$((SECONDS + 300))
    while [ "$(delivered)" -lt $((d0 + n)) ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
  fi
  t1=$(ticks "$pid") s1=$(stime "$pid")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
  c1=$(echo "$out" | awk '/^CPU/{print $2+$3}')
  python3 -c "import sys; t0,t1,hz,n,c,s0,s1=map(float,sys.argv[1:]); print(f'{(t1-t0)/hz/n*1e6:.0f} {c/n*1e6:.0f} {100*(s1-s0)/max(t1-t0,1):.0f}')" "$t0" "$t1" "$hz" "$n" "$c1" "$s0" "$s1"
}
median() { python3 -c "import sys,statistics; print(f'{statistics.median(map(float,sys.argv[1:])):.0f}')" "$@"; }

rows=(
  "(a) STARTTLS TLS 1.2 X25519 c=8 1 msg/conn|-tls starttls -tls-version 1.2 -group X25519,P-256 -c 8 -m 1"
  "(b) STARTTLS TLS 1.2 c=8 10 msgs/conn|-tls starttls -tls-version 1.2 -group X25519,P-256 -c 8 -m 10"
  "(c) plain c=8 10 msgs/conn|-tls none -c 8 -m 10"
)
printf '%-44s %8s %8s %11s %8s %8s %15s %13s\n' "row (server CPU µs/msg, median of $runs x $msgs)" tlsmail sink "above sink" "t sys%" "s sys%" "client(tlsmail)" "client(sink)"
for row in "${rows[@]}"; do
  label=${row%%|*}; args=${row#*|}
  letter=${label:1:1}
  [ -n "${ROWS:-}" ] && [[ "$ROWS" != *"$letter"* ]] && continue
  ts=() ss=() tc=() sc=() tk=() sk=()
  for r in $(seq "$runs"); do
    # shellcheck disable=SC2086
    read -r a b k < <(one tlsmail "$tport" $args); ts+=("$a"); tc+=("$b"); tk+=("$k")
    # shellcheck disable=SC2086
    read -r a b k < <(one sink "$sport" $args); ss+=("$a"); sc+=("$b"); sk+=("$k")
  done
  t=$(median "${ts[@]}") s=$(median "${ss[@]}")
  printf '%-44s %8s %8s %11s %8s %8s %15s %13s   (runs: %s | %s)\n' "$label" "$t" "$s" "$((t - s))" "$(median "${tk[@]}")" "$(median "${sk[@]}")" \
    "$(median "${tc[@]}")" "$(median "${sc[@]}")" "${ts[*]}" "${ss[*]}"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
