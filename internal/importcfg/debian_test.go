package importcfg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

// debianFixture is a Postfix directory as Debian ships it, with what
// admins add: /etc/aliases as postinst writes it (postmaster: root, and
// nothing for root), rspamd as the milter of every smtpd, and the
// submission services switched on with their own -o smtpd_milters
// (rspamd and OpenDKIM signing on submission, OpenDKIM alone through
// $mua_milters on submissions).
func debianFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) { os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644) }
	write("aliases", "# See man 5 aliases for format\npostmaster:    root\nabuse: postmaster\n")
	write("main.cf", `# See /usr/share/postfix/main.cf.dist for a commented, more complete version
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no
append_dot_mydomain = no
readme_directory = no
compatibility_level = 3.6
smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key
smtpd_tls_security_level=may
smtp_tls_CApath=/etc/ssl/certs
smtp_tls_security_level=may
smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
myhostname = mx.example.org
alias_maps = hash:`+dir+`/aliases
alias_database = hash:`+dir+`/aliases
myorigin = mx.example.org
mydestination = $myhostname, example.org, localhost
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = all
inet_protocols = all
smtpd_milters = inet:localhost:11332
mua_milters = inet:localhost:8891
`)
	write("master.cf", `smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_milters=inet:localhost:11332,inet:localhost:8891
  -o milter_macro_daemon_name=ORIGINATING
submissions     inet  n       -       y       -       -       smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_milters=$mua_milters
pickup    unix  n       -       y       60      1       pickup
`)
	return dir
}

// TestDebianAliasesToRootAreWarnedAbout: Debian's /etc/aliases sends
// postmaster to root, which has no mailbox in tlsmail: the import warns,
// naming the aliases file and line and --root-to, instead of writing an
// alias that would refuse mail; with --root-to alice, root becomes an
// alias of alice and nothing is warned about.
func TestDebianAliasesToRootAreWarnedAbout(t *testing.T) {
	dir := debianFixture(t)
	r, err := Postfix(dir, Options{DataDir: dir, UsersFile: dir + "/users"})
	if err != nil {
		t.Fatal(err)
	}
	want := dir + "/aliases:2: alias postmaster: target root: tlsmail has no root mailbox, so mail to postmaster would be refused; map root to a real user: tlsmail import --root-to USER"
	if len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], want) {
		t.Errorf("warnings %q, want one starting %q", r.Warnings, want)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	if !strings.Contains(b.String(), "# WARNING: "+want) {
		t.Errorf("the output does not carry the warning:\n%s", b.String())
	}

	r, err = Postfix(dir, Options{DataDir: dir, UsersFile: dir + "/users", RootTo: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 0 || sprint(r.Aliases) != `[{Key:postmaster Value:root} {Key:abuse Value:postmaster} {Key:root Value:alice}]` {
		t.Errorf("--root-to alice: warnings %q, aliases %s", r.Warnings, sprint(r.Aliases))
	}
}

// TestDebianPerServiceMilters: a master.cf service's -o smtpd_milters
// replaces main.cf's for that listener, as in Postfix: each [[milter]]
// names the listeners it applies to, and the result loads.
func TestDebianPerServiceMilters(t *testing.T) {
	dir := debianFixture(t)
	r, err := Postfix(dir, Options{DataDir: dir, UsersFile: dir + "/users", RootTo: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	out := b.String()
	for _, want := range []string{
		"[[milter]]\nname = \"rspamd\"\naddress = \"inet:localhost:11332\"\ndefault_action = \"tempfail\"\nlisteners = [\"smtp\", \"submission\"]\n",
		"[[milter]]\nname = \"opendkim\"\naddress = \"inet:localhost:8891\"\ndefault_action = \"tempfail\"\nlisteners = [\"submission\", \"submissions\"]\n",
		"# postfix: master.cf submission/inet/smtpd_milters = inet:localhost:11332,inet:localhost:8891: mapped (replaces main.cf's smtpd_milters for listener submission",
		"# postfix: submission/inet/milter_macro_daemon_name = ORIGINATING: not mapped (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "set that by hand") || strings.Contains(out, "mua_milters = ") || strings.Contains(out, "submission/inet/smtpd_milters = inet:localhost:11332,inet:localhost:8891: not mapped") {
		t.Errorf("the per-service milters are still only a comment:\n%s", out)
	}
	f := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(f, b.Bytes(), 0o644)
	c, err := config.Load(f)
	if err != nil {
		t.Fatalf("the import does not load: %v\n%s", err, out)
	}
	if len(c.Milters) != 2 || strings.Join(c.Milters[0].Listeners, " ") != "smtp submission" || strings.Join(c.Milters[1].Listeners, " ") != "submission submissions" {
		t.Errorf("loaded milters %+v", c.Milters)
	}
}
