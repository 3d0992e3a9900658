package importcfg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

// smtpd_milters, sender login maps and virtual mailbox domains become
// [[milter]], sender_login(_maps) and local_domains, and the result loads.
func TestPostfixMiltersSenderLoginVirtualMailbox(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) { os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644) }
	write("senders", "alice@example.org alice\n@lists.example.org alice, bob\n")
	write("main.cf", `myhostname = mx.example.org
smtpd_milters = inet:127.0.0.1:11332, { unix:/run/opendkim/opendkim.sock, default_action = accept, command_timeout = 1m }
non_smtpd_milters = $smtpd_milters
milter_default_action = tempfail
milter_connect_timeout = 10
smtpd_sender_login_maps = hash:`+dir+`/senders
smtpd_sender_restrictions = reject_sender_login_mismatch
virtual_mailbox_domains = example.net
`)
	write("master.cf", "smtp inet n - y - - smtpd\n")
	r, err := Postfix(dir, Options{DataDir: dir, UsersFile: dir + "/users"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	out := b.String()
	for _, want := range []string{
		"[[milter]]\nname = \"rspamd\"\naddress = \"inet:127.0.0.1:11332\"\ndefault_action = \"tempfail\"\nconnect_timeout = \"10s\"\n",
		"[[milter]]\nname = \"opendkim\"\naddress = \"unix:/run/opendkim/opendkim.sock\"\ndefault_action = \"accept\"\nconnect_timeout = \"10s\"\ncommand_timeout = \"1m\"\n",
		"sender_login = \"enforce\"\n",
		"\"alice\" = [\"alice@example.org\", \"@lists.example.org\"]\n\"bob\" = [\"@lists.example.org\"]\n",
		"\"example.net\"]",
		"# postfix: non_smtpd_milters = $smtpd_milters: not mapped (mail from sendmail",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "no milter client") || strings.Contains(out, "no tlsmail equivalent") {
		t.Errorf("stale comment in\n%s", out)
	}
	f := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(f, b.Bytes(), 0o644)
	c, err := config.Load(f)
	if err != nil {
		t.Fatalf("the import does not load: %v\n%s", err, out)
	}
	if len(c.Milters) != 2 || c.SenderLogin != "enforce" || len(c.SenderLoginMaps["alice"]) != 2 {
		t.Errorf("loaded %+v %q %v", c.Milters, c.SenderLogin, c.SenderLoginMaps)
	}
}

// TestPostfixMilterRepeatedInOverride: with three listeners, one whose
// -o smtpd_milters names a milter twice and one whose override is empty,
// the milter lists the two listeners that use it. The repeat counted its
// listener twice, the count reached the number of listeners, and the
// milter (no listeners = [...]) applied to all, the empty one included.
func TestPostfixMilterRepeatedInOverride(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) { os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644) }
	write("main.cf", "myhostname = mx.example.org\nsmtpd_milters = inet:127.0.0.1:11332\n")
	write("master.cf", `smtp      inet  n       -       y       -       -       smtpd
submission inet n       -       y       -       -       smtpd
  -o smtpd_milters=inet:127.0.0.1:11332,inet:127.0.0.1:11332
submissions inet n      -       y       -       -       smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_milters=
`)
	r, err := Postfix(dir, Options{DataDir: dir, UsersFile: dir + "/users"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	out := b.String()
	if len(r.Listeners) != 3 {
		t.Fatalf("listeners %+v\n%s", r.Listeners, out)
	}
	want := "[[milter]]\nname = \"rspamd\"\naddress = \"inet:127.0.0.1:11332\"\ndefault_action = \"tempfail\"\nlisteners = [\"smtp\", \"submission\"]\n"
	if !strings.Contains(out, want) || strings.Count(out, "\n[[milter]]\n") != 1 {
		t.Errorf("want one milter %q in\n%s", want, out)
	}
	f := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(f, b.Bytes(), 0o644)
	c, err := config.Load(f)
	if err != nil {
		t.Fatalf("the import does not load: %v\n%s", err, out)
	}
	if len(c.Milters) != 1 || strings.Join(c.Milters[0].Listeners, " ") != "smtp submission" {
		t.Errorf("loaded milters %+v", c.Milters)
	}
}
