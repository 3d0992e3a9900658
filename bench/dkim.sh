#!/usr/bin/env bash
# bench/dkim.sh — `make bench-dkim`: the cost of DKIM signing (issue 17).
# Two tlsmail servers, identical but for a [[dkim]] key of the From domain
# (made with `tlsmail dkim keygen`; Ed25519, or RSA-2048 with KEY=rsa),
# take the same load from bench/smtpload on their submission port
# (STARTTLS + AUTH PLAIN, so the mail is from an authenticated user and the
# signed server signs it) and relay it over STARTTLS to a bench/sink of
# their own through [transport]: signing (internal/server/dkim.go, at
# delivery time) is on the measured path. Runs alternate on/off, each
# drained (the sink has every accepted message) before the next. Prints,
# medians of RUNS runs: the accept rate and p50/p99 smtpload sees, the end
# to end rate (first message injected to the last one at the sink), and
# the ratios signed/unsigned (issue 17: within 15%). Checks once that the
# sink-side message of the signed server carries a DKIM-Signature (and the
# unsigned one's does not). Prints the load average before and after.
#
# Usage (loopback only):  make bench-dkim   or   bash bench/dkim.sh
# Environment: RUNS=3 MSGS=2000 C=8 M=10 SIZE=1024 SECS=120 KEY=ed25519 (or rsa)
# M=10 messages per connection by default: AUTH checks the user's bcrypt
# hash once per connection, which at M=1 costs more than everything else
# (about 20 msgs/s on a busy 2-core machine) and hides what signing costs.
set -euo pipefail
runs=${RUNS:-3} msgs=${MSGS:-2000} conc=${C:-8} per=${M:-10} size=${SIZE:-1024} secs=${SECS:-120} key=${KEY:-ed25519}
case $key in ed25519) rsa= ;; rsa) rsa=--rsa ;; *) echo "dkim.sh: KEY must be ed25519 or rsa" >&2; exit 2 ;; esac
for v in runs msgs conc per secs; do
  [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 100000 ] || { echo "dkim.sh: ${v^^} must be a number from 1 to 100000" >&2; exit 2; }
done
[[ $size =~ ^[0-9]+$ ]] && [ "$size" -ge 64 ] && [ "$size" -le 10485760 ] || { echo "dkim.sh: SIZE must be 64 to 10485760 bytes" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/lib.sh" # stop_pid, freeport, wait_greeting
work=$(mktemp -d /tmp/tlsmail-bench-dkim.XXXXXX)
declare -A pid=() sinkpid=() port=() sinkport=() accepted=([on]=0 [off]=0)
cleanup() {
  for k in "${!pid[@]}"; do stop_pid "${pid[$k]}"; done
  for k in "${!sinkpid[@]}"; do stop_pid "${sinkpid[$k]}"; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "building..." >&2
(cd "$root" && go build -o "$work/tlsmail" ./cmd/tlsmail && go build -o "$work/smtpload" ./bench/smtpload && go build -o "$work/sink" ./bench/sink)
T="$work/tlsmail"
echo "bench-password-123" > "$work/pass"
for s in on off; do
  data="$work/$s"
  mkdir -p "$data"
  "$T" cert new-ca --out "$data/tls" >/dev/null
  "$T" cert issue --ca "$data/tls" --host localhost,127.0.0.1 --out "$data/tls/server" >/dev/null
  port[$s]=$(freeport); sinkport[$s]=$(freeport)
  "$work/sink" -addr "127.0.0.1:${sinkport[$s]}" -log-each -save "$work/$s.first.eml" 2> "$work/sink-$s.log" &
  sinkpid[$s]=$!
  dkim=
  if [ "$s" = on ]; then
    # keygen prints the [[dkim]] setting; the TOML lines are the ones with " = ".
    dkim=$(printf '[[dkim]]\n'; "$T" dkim keygen --data "$data" $rsa bench.test bench | grep -E '^(domain|selector|key) = ')
  fi
  cat > "$data/tlsmail.toml" <<EOT
hostname = "tlsmail-$s.bench.test"
data_dir = "$data"
local_domains = ["bench.test"]
log_level = "warn"
[tls]
cert = "tls/server.pem"
key = "tls/server.key"
[limits]
connections = 2000
connections_per_ip = 2000
[queue]
workers = 16
[outbound]
mta_sts = false
[transport]
"sink.test" = "127.0.0.1:${sinkport[$s]}"
[[listener]]
name = "submission"
address = "127.0.0.1:${port[$s]}"
mode = "starttls"
auth = "required"
$dkim
EOT
  "$T" user add --config "$data/tlsmail.toml" bench < "$work/pass" >/dev/null
  "$T" serve --config "$data/tlsmail.toml" 2> "$work/$s.log" &
  pid[$s]=$!
  wait_greeting "${port[$s]}"
  wait_greeting "${sinkport[$s]}"
done
grep -q '^\[\[dkim\]\]' "$work/on/tlsmail.toml" && grep -q '^key = ' "$work/on/tlsmail.toml" || { echo "dkim.sh: no [[dkim]] key from tlsmail dkim keygen" >&2; exit 1; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }
at_sink() { grep -c 'msg=accepted' "$work/sink-$1.log" || true; }
now() { date +%s.%N; }
# drain S: wait until S's sink has every message S accepted (its queue is
# then empty); prints the time it got there.
drain() {
  local end=$((SECONDS + 300)) n
  while n=$(at_sink "$1"); [ "$n" -lt "${accepted[$1]}" ]; do
    [ "$SECONDS" -ge "$end" ] && { echo "dkim.sh: $1's sink has $n of ${accepted[$1]}; going on" >&2; break; }
    sleep 0.1
  done
  now
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A rates=() e2e=() p50=() p99=()
for i in $(seq "$runs"); do
  order="on off"; [ $((i % 2)) = 0 ] && order="off on"
  for s in $order; do
    t0=$(now)
    r=$(timeout -k 5 $((secs + 60)) "$work/smtpload" -json -t "${secs}s" -addr "127.0.0.1:${port[$s]}" -tls starttls \
      -user bench -pass-file "$work/pass" -c "$conc" -m "$per" -n "$msgs" -size "$size" -from load@bench.test -to sink@sink.test)
    [ "$(field "$r" errors)" = 0 ] || echo "dkim.sh: $s run $i had $(field "$r" errors) errors: $(field "$r" first_error 2>/dev/null || true)" >&2
    got=$(field "$r" messages)
    accepted[$s]=$((accepted[$s] + got))
    t1=$(drain "$s")
    rates[$s]+="$(field "$r" msgs_per_s) "; p50[$s]+="$(field "$r" p50_ms) "; p99[$s]+="$(field "$r" p99_ms) "
    e2e[$s]+="$(python3 -c "print($got/($t1-$t0))") "
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
for s in on off; do [ -s "$work/$s.first.eml" ] || { echo "dkim.sh: $s's sink saved no message" >&2; exit 1; }; done
# sigs FILE: the DKIM-Signature fields of a saved message, unfolded, one a line.
sigs() { python3 -c 'import email,sys; m=email.message_from_binary_file(open(sys.argv[1],"rb")); [print(" ".join(str(v).split())) for v in m.get_all("DKIM-Signature") or []]' "$1"; }
sigline=$(sigs "$work/on.first.eml" | grep -m1 -E '(^|[; ])d=bench\.test;' | grep -E '(^|[; ])s=bench;' || true)
[ -n "$sigline" ] || { echo "dkim.sh: the signed server's mail reached the sink without a DKIM-Signature d=bench.test s=bench" >&2; sed -n 1,5p "$work/on.first.eml" >&2; exit 1; }
[ -z "$(sigs "$work/off.first.eml")" ] || { echo "dkim.sh: the unsigned server's mail carries a DKIM-Signature" >&2; exit 1; }
sigline=$(tr ';' '\n' <<< "$sigline" | sed 's/^ *//' | grep -E '^(a|d|s|c)=' | tr '\n' ' ')
python3 - "${rates[on]}" "${rates[off]}" "${e2e[on]}" "${e2e[off]}" "${p50[on]}" "${p50[off]}" "${p99[on]}" "${p99[off]}" \
  "$runs" "$msgs" "$conc" "$per" "$size" "$key" "$load_before" "$load_after" "$sigline" <<'PY'
import statistics as st, sys
on, off, e2on, e2off, p50on, p50off, p99on, p99off = ([float(x) for x in a.split()] for a in sys.argv[1:9])
runs, msgs, c, m, size, key, lb, la, sig = sys.argv[9:]
md = st.median
print(f"submission STARTTLS + AUTH PLAIN, c={c}, {m} msg/conn, {size} B, relayed over STARTTLS to bench/sink;")
print(f"DKIM {key}; {runs} alternating runs of {msgs} messages each (medians); load average {lb} -> {la}")
print(f"  at the signed server's sink: DKIM-Signature {sig.strip()}")
for name, a, e, p5, p9 in (("signed  ", on, e2on, p50on, p99on), ("unsigned", off, e2off, p50off, p99off)):
    print(f"  {name}: accept {md(a):7.1f} msgs/s  p50 {md(p5):6.1f} ms  p99 {md(p9):6.1f} ms   end to end {md(e):7.1f} msgs/s"
          f"   runs {' '.join(f'{x:.0f}' for x in a)} / {' '.join(f'{x:.0f}' for x in e)}")
print(f"  signed/unsigned: accept {md(on)/md(off):.3f}   end to end {md(e2on)/md(e2off):.3f}   (issue 17: >= 0.85)")
PY
