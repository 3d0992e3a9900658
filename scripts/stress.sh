#!/usr/bin/env bash
# make stress: the unit tests under CPU contention, to find tests that
# pass only on an idle machine. Busy loops keep every core busy while
# go test -race -count=5 -cpu 1,2 runs the packages; a test that fails
# here has a timing assumption to fix at the root (wait on an event, not
# on time). Run it before stopping when touching concurrency or timing.
#
#   PKGS        packages to stress (default: all but ./test/e2e, whose
#               tests start binaries and real peers and have their own
#               timing budget), e.g. PKGS=./internal/ucspi make stress
#   HOGS        busy loops to run (default: one per core, nproc)
#   HOG_SECONDS upper bound on each busy loop's life (default 1800); they
#               are also killed by PID when this script ends
#   COUNT       -count (default 5)
#   GO          the go command (default go)
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
COUNT=${COUNT:-5}
HOGS=${HOGS:-$(nproc)}
HOG_SECONDS=${HOG_SECONDS:-1800}
if [ -z "${PKGS:-}" ]; then
  PKGS=$($GO list ./... | grep -v '/test/e2e$')
fi

# Build the test binaries first, without the hogs, so the time under
# load is spent testing.
# shellcheck disable=SC2086
$GO test -race -count=1 -run '^$' $PKGS >/dev/null

hogs=()
stop_hogs() {
  if [ ${#hogs[@]} -gt 0 ]; then
    kill "${hogs[@]}" 2>/dev/null || true
    wait "${hogs[@]}" 2>/dev/null || true
  fi
  hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$HOGS"); do
  timeout "$HOG_SECONDS" sh -c 'while :; do :; done' &
  hogs+=($!)
done
echo "stress: $HOGS busy loops (at most ${HOG_SECONDS}s); go test -race -count=$COUNT -cpu 1,2" >&2

# shellcheck disable=SC2086
$GO test -race -count="$COUNT" -cpu 1,2 -timeout 60m $PKGS
