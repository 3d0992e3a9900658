package testpeer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/selfsigned"
)

// DovecotUser is one user of a private Dovecot: a password and, if set, a
// quota (Dovecot's quota_rule storage value, e.g. "1K").
type DovecotUser struct {
	Password string
	Quota    string
	// TempfailQuota makes a full mailbox a temporary failure (4xx) for
	// this user (quota_full_tempfail), not a permanent one.
	TempfailQuota bool
}

// Dovecot is a private Dovecot serving LMTP (unix socket), IMAP with
// STARTTLS (loopback TCP) and SASL (its auth-client socket) for a few
// users, with mail in Maildirs under its own temporary directory. It runs
// as root from its own config file: nothing under /etc is read or written.
type Dovecot struct {
	Dir      string // its temporary directory
	Config   string // dovecot.conf
	LMTP     string // LMTP unix socket
	LMTPAddr string // LMTP on loopback TCP (host:port)
	Auth     string // auth-client unix socket (Postfix's smtpd_sasl_path)
	AuthAddr string // the auth service on loopback TCP (host:port)
	IMAPAddr string // IMAP (STARTTLS) on loopback
	CAFile   string // the self-signed certificate IMAP presents, as a CA file
	Proc     *Proc
	passwd   string
}

// SetUsers replaces the users (Dovecot re-reads its passwd-file when it
// changes): a test raises a quota this way, say.
func (d *Dovecot) SetUsers(t testing.TB, users map[string]DovecotUser) {
	t.Helper()
	var pw []string
	for name, u := range users {
		var extra []string
		if u.Quota != "" {
			extra = append(extra, "userdb_quota_rule=*:storage="+u.Quota)
		}
		if u.TempfailQuota {
			extra = append(extra, "userdb_quota_full_tempfail=yes")
		}
		// user:password:uid:gid:gecos:home:shell:extra
		pw = append(pw, fmt.Sprintf("%s:{PLAIN}%s:65534:65534::%s/home/%s::%s", name, u.Password, d.Dir, name, strings.Join(extra, " ")))
	}
	sort.Strings(pw)
	// Written aside and renamed, so Dovecot never reads half a file.
	tmp := d.passwd + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(pw, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, d.passwd); err != nil {
		t.Fatal(err)
	}
}

// StartDovecot starts a private Dovecot with users (name → password,
// quota); a login as "tempfail" always gets Dovecot's temporary failure
// (FAIL with "temp": its passdb cannot answer). Logins need TLS (disable_plaintext_auth = yes), so a SASL client
// must say "secured"; auth_failure_delay is 0 so refused logins answer at
// once. The instance is stopped by PID when the test ends.
func StartDovecot(t testing.TB, users map[string]DovecotUser) *Dovecot {
	t.Helper()
	RequireRoot(t, "dovecot runs its mail processes as another user")
	bin := Require(t, "dovecot")
	for _, p := range []string{"/usr/lib/dovecot/lmtp", "/usr/lib/dovecot/imap"} {
		if _, err := os.Stat(p); err != nil {
			Unavailable(t, "%s missing (Debian packages dovecot-lmtpd and dovecot-imapd)", p)
		}
	}
	dir := t.TempDir()
	// Mail processes run as nobody: every directory above the mail root
	// must be traversable.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &Dovecot{Dir: dir, Config: filepath.Join(dir, "dovecot.conf"),
		LMTP: filepath.Join(dir, "run", "lmtp"), Auth: filepath.Join(dir, "run", "auth-client"),
		CAFile: filepath.Join(dir, "cert.pem")}
	key := filepath.Join(dir, "key.pem")
	if _, err := selfsigned.Write(d.CAFile, key); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	d.passwd = passwd
	d.SetUsers(t, users)
	if err := os.MkdirAll(filepath.Join(dir, "mail"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "mail"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tempfail.sh"), []byte("#!/bin/sh\nexit 111\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	imapPort, lmtpPort, authPort := FreePort(t), FreePort(t), FreePort(t)
	d.IMAPAddr = fmt.Sprintf("127.0.0.1:%d", imapPort)
	d.LMTPAddr = fmt.Sprintf("127.0.0.1:%d", lmtpPort)
	d.AuthAddr = fmt.Sprintf("127.0.0.1:%d", authPort)
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:%[1]s/mail/%%n
mail_plugins = quota
plugin {
  quota = maildir:User quota
}
# The user "tempfail" gets Dovecot's temporary failure (its passdb
# cannot answer: checkpassword's exit code 111).
passdb {
  driver = checkpassword
  args = %[1]s/tempfail.sh
  username_filter = tempfail
  result_internalfail = return
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%n %[2]s
}
userdb {
  driver = passwd-file
  args = username_format=%%n %[2]s
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = %[3]d
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = %[4]d
  }
}
service auth {
  unix_listener auth-client {
    mode = 0666
  }
  inet_listener auth-inet {
    address = 127.0.0.1
    port = %[5]d
  }
}
service anvil {
  chroot =
  # No auth penalty (Dovecot's own per-IP delay of failing logins, up to
  # 15 s): tests fail logins on purpose, and tlsmail throttles them itself.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
protocol lmtp {
  mail_plugins = $mail_plugins
}
`, dir, passwd, imapPort, lmtpPort, authPort)
	if err := os.WriteFile(d.Config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Proc = Start(t, Cmd{Path: bin, Args: []string{"-F", "-c", d.Config}, ReadyAddr: d.IMAPAddr, Timeout: 60 * time.Second})
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot.log:\n%s", log)
		}
	})
	for _, addr := range []string{d.LMTPAddr, d.AuthAddr} {
		if err := WaitTCP(addr, 60*time.Second, d.Proc.Done()); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
	}
	for _, sock := range []string{d.LMTP, d.Auth} {
		if _, err := os.Stat(sock); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
	}
	return d
}

// Maildir is where Dovecot keeps user's mail.
func (d *Dovecot) Maildir(user string) string { return filepath.Join(d.Dir, "mail", user) }

// Log returns Dovecot's log so far.
func (d *Dovecot) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dovecot.log"))
	return string(b)
}
