#!/usr/bin/env bash
# Install the Debian packages the tests talk to, when missing and when we
# can (root with apt-get). With CI=true a peer that is still missing is an
# error, so no test is skipped silently in CI.
set -euo pipefail

# command -> Debian package
declare -A peers=(
  [openssl]=openssl
)

missing=()
for cmd in "${!peers[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${peers[$cmd]}")
done

if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "install-peers: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

still=()
for cmd in "${!peers[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || still+=("$cmd")
done
if [ ${#still[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "install-peers: missing test peers: ${still[*]}" >&2
    exit 1
  fi
  echo "install-peers: WARNING: missing test peers (their tests will be skipped): ${still[*]}" >&2
fi
