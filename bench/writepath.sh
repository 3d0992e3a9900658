#!/usr/bin/env bash
# bench/writepath.sh — the durable write path in isolation (issue 13):
# one tlsmail dev-style server (plain listener, local delivery to an
# fsync'd Maildir), bench/smtpload plain 1 KB messages, and either the
# rate (msgs/s until every message is in the Maildir) or, with STRACE=1,
# per-message system call counts from `strace -f -c` over the whole run.
#
#   bench/writepath.sh BINARY [c=8] [m=1] [n=2000]
#   STRACE=1: system calls per message; STRACE=sync: how long each
#   fdatasync, fsync and syncfs took (p50/p90/max); TMPDIR: where the data go
set -u
bin=$1 c=${2:-8} m=${3:-1} n=${4:-2000}
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh" # bench_workdir
work=$(bench_workdir tlsmail-writepath)
pid=
trap '[ -n "$pid" ] && kill -TERM $(pgrep -P $pid) $pid 2>/dev/null; [ -n "$pid" ] && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
(cd "$here" && go build -o "$work/smtpload" ./bench/smtpload)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/tlsmail.toml" <<CONF
hostname = "tlsmail.bench.test"
data_dir = "$work/data"
local_domains = ["bench.test"]
log_level = "warn"
[aliases]
sink = "bench"
[limits]
connections = 2000
connections_per_ip = 2000
[[listener]]
name = "mx"
address = "127.0.0.1:$port"
mode = "plain"
auth = "none"
CONF
mkdir -p "$work/data"
echo "bench-password-123" | "$bin" user add --config "$work/tlsmail.toml" bench >/dev/null
if [ "${STRACE:-0}" = sync ]; then
  strace -f -T -e trace=fdatasync,fsync,syncfs -o "$work/strace" "$bin" serve --config "$work/tlsmail.toml" 2>"$work/log" &
elif [ "${STRACE:-0}" = 1 ]; then
  strace -f -c -o "$work/strace" "$bin" serve --config "$work/tlsmail.toml" 2>"$work/log" &
else
  "$bin" serve --config "$work/tlsmail.toml" 2>"$work/log" &
fi
pid=$!
for _ in $(seq 100); do
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; head -c 3 <&3" 2>/dev/null | grep -q 220 && break
  sleep 0.1
done
start=$(date +%s.%N)
out=$("$work/smtpload" -addr "127.0.0.1:$port" -c "$c" -m "$m" -n "$n" -t 120s -json)
md="$work/data/mail/bench"
for _ in $(seq 1200); do
  got=$(find "$md/new" "$md/cur" -type f 2>/dev/null | wc -l)
  [ "$got" -ge "$n" ] && break
  sleep 0.05
done
end=$(date +%s.%N)
echo "$out"
python3 -c "import sys; print(f'delivered {sys.argv[1]} of {sys.argv[2]} in {float(sys.argv[4])-float(sys.argv[3]):.2f}s')" "$got" "$n" "$start" "$end"
if [ "${STRACE:-0}" = sync ]; then
  sleep 1  # the completer's last batch
  kill -TERM "$(pgrep -P $pid)"; wait $pid 2>/dev/null; pid=
  python3 - "$work/strace" "$n" <<'PY'
import re, sys
n = int(sys.argv[2]); took = {}
for line in open(sys.argv[1]):
    m = re.search(r"(fdatasync|fsync|syncfs)\(.*<([0-9.]+)>", line)
    if m:
        took.setdefault(m.group(1), []).append(float(m.group(2)) * 1000)
for k, v in sorted(took.items()):
    v.sort()
    print(f"{k}: {len(v)/n:.2f} per message, p50 {v[len(v)//2]:.2f} ms, p90 {v[int(len(v)*.9)]:.2f} ms, max {v[-1]:.2f} ms, mean {sum(v)/len(v):.2f} ms")
PY
fi
if [ "${STRACE:-0}" = 1 ]; then
  sleep 1  # the completer's last batch
  kill -TERM "$(pgrep -P $pid)"; wait $pid 2>/dev/null; pid=
  python3 - "$work/strace" "$n" <<'PY'
import sys
n = int(sys.argv[2]); calls = {}; errs = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] not in ("total",):
        name = f[-1]
        calls[name] = int(f[3]); errs[name] = int(f[4]) if len(f) == 6 else 0
print("per message: " + ", ".join(f"{k} {calls.get(k,0)/n:.2f} ({errs.get(k,0)/n:.2f} failing)" for k in
      ("fsync", "fdatasync", "syncfs", "openat", "write", "pwrite64", "rename", "renameat", "link", "linkat", "unlinkat")))
PY
fi
