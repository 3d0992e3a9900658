package importcfg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

// TestPostfixDovecotLMTPAndSASL: a Postfix that hands mail to Dovecot
// over LMTP (virtual_transport, mailbox_transport) and checks passwords
// with Dovecot SASL (in master.cf's submission -o) imports into
// [delivery] and auth_backend, socket paths under queue_directory, with
// a warning for sockets in Postfix's private/ that tlsmail's user cannot
// reach; the result loads.
func TestPostfixDovecotLMTPAndSASL(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) { os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644) }
	write("main.cf", `myhostname = mx.example.org
mydestination = $myhostname, localhost
virtual_mailbox_domains = example.org, example.net
virtual_transport = lmtp:unix:private/dovecot-lmtp
mailbox_transport = lmtp:[::1]
`)
	write("master.cf", `smtp inet n - y - - smtpd
submission inet n - y - - smtpd
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_sasl_type=dovecot
  -o smtpd_sasl_path=private/auth
`)
	r, err := Postfix(dir, Options{DataDir: dir, UsersFile: dir + "/users"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	out := b.String()
	for _, want := range []string{
		"auth_backend = \"dovecot:/var/spool/postfix/private/auth\"\n",
		"[delivery]\n\"example.org\" = \"lmtp:unix:/var/spool/postfix/private/dovecot-lmtp\"\n\"example.net\" = \"lmtp:unix:/var/spool/postfix/private/dovecot-lmtp\"\n\"mx.example.org\" = \"lmtp:inet:[::1]:24\"\n\"localhost\" = \"lmtp:inet:[::1]:24\"\n",
		"main.cf:4: virtual_transport: the LMTP socket /var/spool/postfix/private/dovecot-lmtp is in Postfix's private/",
		"# WARNING: master.cf submission -o smtpd_sasl_type: the Dovecot auth socket /var/spool/postfix/private/auth is in Postfix's private/",
		"unix_listener auth-tlsmail { user = tlsmail",
		"unix_listener lmtp-tlsmail { user = tlsmail",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "virtual_transport = lmtp:unix:private/dovecot-lmtp: not mapped") {
		t.Errorf("virtual_transport still called not mapped:\n%s", out)
	}
	f := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(f, b.Bytes(), 0o644)
	c, err := config.Load(f)
	if err != nil {
		t.Fatalf("the import does not load: %v\n%s", err, out)
	}
	if d := c.DovecotAuth(); d == nil || d.Address != "/var/spool/postfix/private/auth" || len(c.Delivery) != 4 {
		t.Errorf("loaded auth %+v, delivery %v", d, c.Delivery)
	}
}
