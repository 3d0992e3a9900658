#!/usr/bin/env bash
# Install the Debian packages the tests talk to, when missing and when we
# can (root with apt-get). With CI=true a peer that is still missing is an
# error, so no test is skipped silently in CI.
set -euo pipefail

# "check command|Debian package": the check must succeed once the package is in.
peers=(
  "command -v openssl|openssl"
  "command -v swaks|swaks"
  "perl -MNet::SSLeay -e1|libnet-ssleay-perl"
  "perl -MIO::Socket::SSL -e1|libio-socket-ssl-perl"
  "command -v python3|python3"
  "test -x /usr/sbin/postfix|postfix"
  "/usr/bin/python3 -c 'import aiosmtpd'|python3-aiosmtpd"
  "command -v s-nail|s-nail"
  "command -v msmtp|msmtp"
  "test -x /usr/sbin/dovecot|dovecot-core"
  "test -x /usr/lib/dovecot/lmtp|dovecot-lmtpd"
  "test -x /usr/lib/dovecot/imap|dovecot-imapd"
  "command -v fetchmail|fetchmail"
  "command -v curl|curl"
  "command -v mbsync|isync"
  "command -v mpop|mpop"
  "command -v tcprules|ucspi-tcp"
  "command -v stunnel4|stunnel4"
  "command -v testssl|testssl.sh"
  "command -v ss && command -v ip|iproute2"
  "command -v mailfront|mailfront"
  "command -v procmail|procmail"
  "command -v maildrop|maildrop"
  "command -v curl|curl"
  "command -v chromium|chromium"
  "command -v mandoc|mandoc"
  "test -x /usr/sbin/opendkim|opendkim"
  "test -x /usr/sbin/opendkim-testmsg|opendkim-tools"
  "command -v rspamd|rspamd"
  "command -v neomutt|neomutt"
  "command -v promtool|prometheus"
  "command -v adduser|adduser"
  "command -v man|man-db"
  "test -x /lib/systemd/systemd-journald && command -v journalctl && command -v systemd-analyze|systemd"
  "test -s /etc/ssl/certs/ca-certificates.crt|ca-certificates"
)

missing() {
  local out=()
  for p in "${peers[@]}"; do
    if ! bash -c "${p%%|*}" >/dev/null 2>&1; then out+=("${p##*|}"); fi
  done
  echo "${out[@]:-}"
}

need=$(missing)
if [ -n "$need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "install-peers: installing $need"
  export DEBIAN_FRONTEND=noninteractive
  # Postfix without its configuration dialogue; tests run private instances
  # from their own config directories and never use /etc/postfix.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

still=$(missing)
if [ -n "$still" ]; then
  if [ "${CI:-}" = true ]; then
    echo "install-peers: missing test peers: $still" >&2
    exit 1
  fi
  echo "install-peers: WARNING: missing test peers (their tests will be skipped): $still" >&2
fi
