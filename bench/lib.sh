# bench/lib.sh — shell helpers the bench scripts share (sourced, not run).
# Loopback only; every wait is bounded.

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
  local p=$1 i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 100); do
    kill -0 "$p" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
}

# freeport: a free TCP port on 127.0.0.1.
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_greeting PORT [NAME]: until the SMTP server on 127.0.0.1:PORT sends
# its 220 (at most ~60 s); else a message naming the calling script and exit 1.
wait_greeting() {
  local i
  for i in $(seq 120); do
    if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; head -c 3 <&3" 2>/dev/null | grep -q 220; then
      return 0
    fi
    sleep 0.5
  done
  echo "$(basename "$0"): ${2:-the server} on 127.0.0.1:$1 does not greet" >&2
  exit 1
}

# ticks PID: utime+stime of the process in clock ticks (/proc/PID/stat);
# stime PID: stime alone; hz: ticks per second. CPU time is far less
# sensitive to other processes on the machine than wall-clock rates.
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
stime() { awk '{print $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# settle PID: until the process's CPU counters stop moving (two reads
# 0.3 s apart agree; at most ~10 s), so work it does after the load ends
# (a batched writer, a completer) is counted in the run that caused it.
settle() {
  local a b i
  a=$(ticks "$1")
  for i in $(seq 33); do
    sleep 0.3
    b=$(ticks "$1")
    [ "$a" = "$b" ] && return 0
    a=$b
  done
}

# bench_server_data BIN DIR PORT HOSTNAME [TOML]: the data dir DIR of a
# benchmark tlsmail server (compare.sh, cpu.sh, records.sh): a CA of its
# own and a certificate for localhost, DIR/tlsmail.toml with one MX
# listener on 127.0.0.1:PORT (STARTTLS, no AUTH), TOML (tables) inserted
# before it, and the user "bench" (mail to sink@bench.test reaches it).
bench_server_data() {
  local t=$1 data=$2 port=$3 name=$4 extra=${5:-}
  mkdir -p "$data"
  "$t" cert new-ca --out "$data/tls" >/dev/null
  "$t" cert issue --ca "$data/tls" --host localhost,127.0.0.1 --out "$data/tls/server" >/dev/null
  cat > "$data/tlsmail.toml" <<EOF
hostname = "$name"
data_dir = "$data"
local_domains = ["bench.test"]
log_level = "${LOG_LEVEL:-warn}"
[aliases]
sink = "bench"
[tls]
cert = "tls/server.pem"
key = "tls/server.key"
[limits]
connections = 2000
connections_per_ip = 2000
$extra
[[listener]]
name = "mx"
address = "127.0.0.1:$port"
mode = "starttls"
auth = "none"
EOF
  echo "bench-password-123" | "$t" user add --config "$data/tlsmail.toml" bench >/dev/null
}

# bench_workdir NAME: a new directory $TMPDIR/NAME.XXXXXX for one bench
# run (printed), whose subdirectories ext2/3/4 spread over the file
# system's block groups (chattr +T, "top of a directory hierarchy"), as
# the spool and mailbox trees of a real host are spread. Without it every
# server's files share one block group with what was just deleted there.
# That matters on ext4 without a journal (this machine's root fs): there,
# creating a file skips every inode of its group freed in the last 5 s
# (300 s while its inode table block is dirty), reading the inode table
# for each (the kernel's recently_deleted()). `go build`'s temporary
# files in /tmp and Postfix's per-message queue files, deleted in the same
# group as tlsmail's Maildir, made that scan 65% of tlsmail's CPU on the
# plain rows (perf record of the server) and halved its rate: a cost of
# the bench's layout, not of either server. Elsewhere +T only places
# directories; where chattr fails the run goes on without it.
bench_workdir() {
  local w
  w=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || return 1
  chattr +T "$w" 2>/dev/null || echo "$(basename "$0"): chattr +T $w failed; servers share a block group" >&2
  echo "$w"
}
