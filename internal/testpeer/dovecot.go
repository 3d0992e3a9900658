package testpeer

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// StartDovecotAuth runs a private Dovecot that serves only SASL
// authentication (for Postfix's smtpd_sasl_type = dovecot) with the given
// users and plaintext passwords, and returns the path of its auth socket.
// It is stopped by PID when the test ends.
func StartDovecotAuth(t testing.TB, users map[string]string) string {
	t.Helper()
	bin := Require(t, "dovecot")
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var pw []string
	for u, p := range users {
		pw = append(pw, fmt.Sprintf("%s:{PLAIN}%s::::::", u, p))
	}
	sort.Strings(pw)
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte(strings.Join(pw, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "auth")
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[2]s
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%[1]s/home
}
service auth {
  unix_listener %[3]s {
    mode = 0666
  }
}
service anvil {
  chroot =
}
`, dir, passwd, sock)
	cfg := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := Start(t, Cmd{Path: bin, Args: []string{"-F", "-c", cfg}})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		select {
		case <-p.Done():
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot exited: %v\n%s\n%s", p.Err(), p.Output(), log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Fatalf("dovecot auth socket %s never appeared\n%s\n%s", sock, p.Output(), log)
		}
		time.Sleep(20 * time.Millisecond) // readiness polling, bounded
	}
}
