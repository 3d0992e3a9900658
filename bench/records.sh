#!/usr/bin/env bash
# bench/records.sh — `make bench-records`: the cost of the TLS record store.
# Two tlsmail servers, identical but for [records] enabled (true / false),
# take the same load from bench/smtpload (STARTTLS, 1 KB, local delivery
# to an fsync'd Maildir), alternating run by run, each drained before the
# next. Prints msgs/s and p50/p99 of each, medians of RUNS runs, and the
# ratio on/off (issue 16: the store on must stay within 5% of off), and
# each server's CPU time per accepted message (utime+stime from
# /proc/PID/stat over the run, its deliveries and the records written
# after it, as bench/cpu.sh) with the on/off ratio of that: on a loaded
# machine the rates swing by tens of percent, CPU per message by a few.
#
# Usage (loopback only):  make bench-records   or   bash bench/records.sh
# Environment: RUNS=5 MSGS=2000 WARMUP=500 (each server's first, uncounted run) C=8 M=1 TLS_VERSION=1.3 SECS=120 MODE=starttls (or none);
#   PERF_DIR=DIR: also `perf record -g` each server over each run, into
#   DIR/perf.on.N.data and DIR/perf.off.N.data (the CPU figures then
#   include perf's own overhead)
set -euo pipefail
runs=${RUNS:-5} msgs=${MSGS:-2000} warm=${WARMUP:-500} conc=${C:-8} per=${M:-1} tlsv=${TLS_VERSION:-1.3} secs=${SECS:-120} mode=${MODE:-starttls}
case $mode in none|starttls) ;; *) echo "records.sh: MODE must be none or starttls" >&2; exit 2 ;; esac
for v in runs msgs conc per secs warm; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 100000 ] || { echo "records.sh: ${v^^} must be a number from 1 to 100000" >&2; exit 2; }
done
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh" # stop_pid, freeport, wait_greeting, ticks, hz, settle
work=$(mktemp -d /tmp/tlsmail-bench-records.XXXXXX)
declare -A pid=() port=() maildir=() accepted=([on]=0 [off]=0)
cleanup() {
  for k in "${!pid[@]}"; do stop_pid "${pid[$k]}"; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "building..." >&2
(cd "$root" && go build -o "$work/tlsmail" ./cmd/tlsmail && go build -o "$work/smtpload" ./bench/smtpload)
T="$work/tlsmail"
for s in on off; do
  data="$work/$s"
  port[$s]=$(freeport)
  enabled=true; [ "$s" = off ] && enabled=false
  bench_server_data "$T" "$data" "${port[$s]}" "tlsmail-$s.bench.test" "[records]
enabled = $enabled"
  "$T" serve --config "$data/tlsmail.toml" 2> "$work/$s.log" &
  pid[$s]=$!
  maildir[$s]="$data/mail/bench"
  wait_greeting "${port[$s]}"
done
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }
delivered() {
  python3 -c 'import os,sys; print(sum(len(os.listdir(os.path.join(sys.argv[1], s))) for s in ("new", "cur") if os.path.isdir(os.path.join(sys.argv[1], s))))' "${maildir[$1]}"
}
drain() {
  local end=$((SECONDS + 120)) n
  while n=$(delivered "$1"); [ "$n" -lt "${accepted[$1]}" ]; do
    [ "$SECONDS" -ge "$end" ] && { echo "records.sh: $1 delivered $n of ${accepted[$1]}; going on" >&2; return 0; }
    sleep 0.2
  done
}
# A warm-up run each, not counted: the first run of a fresh server pays
# for its heap, caches and, with the store on, the database's first pages.
for s in on off; do
  r=$("$work/smtpload" -json -t "${secs}s" -addr "127.0.0.1:${port[$s]}" -tls "$mode" -tls-version "$tlsv" \
    -c "$conc" -m "$per" -n "$warm" -to sink@bench.test)
  accepted[$s]=$((accepted[$s] + $(field "$r" messages)))
  drain "$s"
  settle "${pid[$s]}"
done
declare -A rates=() p50=() p99=() cpu=()
for i in $(seq "$runs"); do
  order="on off"; [ $((i % 2)) = 0 ] && order="off on"
  for s in $order; do
    t0=$(ticks "${pid[$s]}") perf_pid=""
    if [ -n "${PERF_DIR:-}" ]; then
      perf record -q -F 997 -g -p "${pid[$s]}" -o "$PERF_DIR/perf.$s.$i.data" >/dev/null 2>&1 &
      perf_pid=$!
    fi
    r=$(timeout -k 5 $((secs + 60)) "$work/smtpload" -json -t "${secs}s" -addr "127.0.0.1:${port[$s]}" -tls "$mode" -tls-version "$tlsv" \
      -c "$conc" -m "$per" -n "$msgs" -to sink@bench.test)
    [ "$(field "$r" errors)" = 0 ] || echo "records.sh: $s run $i had $(field "$r" errors) errors" >&2
    accepted[$s]=$((accepted[$s] + $(field "$r" messages)))
    rates[$s]+="$(field "$r" msgs_per_s) "; p50[$s]+="$(field "$r" p50_ms) "; p99[$s]+="$(field "$r" p99_ms) "
    drain "$s"
    settle "${pid[$s]}" # the records of the last sessions are written after a batch delay
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
    cpu[$s]+="$(python3 -c 'import sys; t0,t1,hz,n=map(float,sys.argv[1:]); print(f"{(t1-t0)/hz/max(n,1)*1e6:.0f}")' "$t0" "$(ticks "${pid[$s]}")" "$hz" "$(field "$r" messages)") "
  done
done
written=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from records").fetchone()[0])' "$work/on/records.db" 2>/dev/null || echo "?")
python3 - "${rates[on]}" "${rates[off]}" "${p50[on]}" "${p50[off]}" "${p99[on]}" "${p99[off]}" "${cpu[on]}" "${cpu[off]}" "$runs" "$msgs" "$conc" "$per" "$tlsv" "$written" "$mode" <<'PY'
import statistics as st, sys
on, off, p50on, p50off, p99on, p99off, cpuon, cpuoff = ([float(x) for x in a.split()] for a in sys.argv[1:9])
runs, msgs, c, m, tlsv, written, mode = sys.argv[9:]
what = f"STARTTLS TLS {tlsv}" if mode == "starttls" else "plaintext"
print(f"{what}, c={c}, {m} msg/conn, 1 KB, {runs} runs of {msgs} messages (medians)")
print(f"  records on : {st.median(on):8.1f} msgs/s  p50 {st.median(p50on):.1f} ms  p99 {st.median(p99on):.1f} ms   runs {' '.join(f'{x:.0f}' for x in on)}")
print(f"  records off: {st.median(off):8.1f} msgs/s  p50 {st.median(p50off):.1f} ms  p99 {st.median(p99off):.1f} ms   runs {' '.join(f'{x:.0f}' for x in off)}")
print(f"  on/off     : {st.median(on)/st.median(off):.3f}   (records in the store: {written})")
print(f"  server CPU per message (µs, utime+stime, delivery and records included):")
print(f"  records on : {st.median(cpuon):8.0f}   runs {' '.join(f'{x:.0f}' for x in cpuon)}")
print(f"  records off: {st.median(cpuoff):8.0f}   runs {' '.join(f'{x:.0f}' for x in cpuoff)}")
# Runs alternate, so run i of each saw much the same load: the ratio of
# each pair is steadier than the ratio of the medians.
pairs = [a / b for a, b in zip(cpuon, cpuoff)]
print(f"  on/off     : {st.median(cpuon)/st.median(cpuoff):.3f}   (median of the {len(pairs)} run pairs' ratios: {st.median(pairs):.3f})")
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
