package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
)

func TestAliasWarningsNameUnresolvableTargets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(file, []byte(`local_domains = ["example.org"]
[aliases]
postmaster = "Alice"
abuse = "postmaster, alice+abuse@example.org"
"sales@example.org" = "bob@elsewhere.example, nobody-here"
typo = "alcie@example.org"
list = "|/usr/bin/procmail -m /etc/procmailrc"
archive = "alice, |/usr/local/bin/archive a,b"
[[listener]]
address = "127.0.0.1:25"
mode = "plain"
auth = "none"
`), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := auth.LoadUsers(filepath.Join(dir, "users"))
	h, _ := auth.HashPassword("correct horse")
	users.Set("alice", h)
	got := warnings(t, cfg, users)
	want := []string{
		file + `:5: warning: alias "sales@example.org": target "nobody-here" is no local user or alias; mail to the alias would be refused`,
		file + `:6: warning: alias "typo": target "alcie@example.org" is no local user or alias; mail to the alias would be refused`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Without a postmaster alias or user, double-bounce notices cannot be
// delivered locally; serve says so at start.
func TestAliasWarningsSayWhenPostmasterIsNotLocal(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(file, []byte(`local_domains = ["example.org"]
[aliases]
abuse = "alice"
[[listener]]
address = "127.0.0.1:25"
mode = "plain"
auth = "none"
`), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := auth.LoadUsers(filepath.Join(dir, "users"))
	h, _ := auth.HashPassword("correct horse")
	users.Set("alice", h)
	got := strings.Join(warnings(t, cfg, users), "\n")
	if !strings.Contains(got, "postmaster@example.org is no local user or alias") || !strings.Contains(got, "hold/") {
		t.Errorf("warnings:\n%s\nwant one about postmaster@example.org", got)
	}
	users.Set("postmaster", h)
	if got := warnings(t, cfg, users); len(got) != 0 {
		t.Errorf("with a postmaster user: %q", got)
	}
}

// warnings is aliasWarnings with cfg's router.
func warnings(t *testing.T, cfg *config.Config, users *auth.Users) []string {
	t.Helper()
	rt, err := newRouter(cfg, users)
	if err != nil {
		t.Fatal(err)
	}
	return aliasWarnings(cfg, users, rt)
}

// Virtual domains: an alias to a qualified user is no warning; a
// qualified user in a domain that is not local is.
func TestAliasWarningsKnowQualifiedUsers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(file, []byte(`local_domains = ["example.org", "example.net"]
[aliases]
postmaster = "alice@example.org"
"info@example.net" = "alice@example.net"
[[listener]]
address = "127.0.0.1:25"
mode = "plain"
auth = "none"
`), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := auth.LoadUsers(filepath.Join(dir, "users"))
	h, _ := auth.HashPassword("correct horse")
	for _, n := range []string{"alice@example.org", "alice@example.net", "bob@example.com"} {
		users.Set(n, h)
	}
	got := warnings(t, cfg, users)
	want := []string{`warning: user bob@example.com: example.com is not in local_domains; mail to the user would be relayed or refused`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A [quota.user] override for a name the users file does not have applies
// to no mailbox (a bare name in a virtual domain, a typo, an alias): a
// warning naming the file, line and name, in both TOML forms.
func TestQuotaWarningsNameUnknownUsers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(file, []byte(`local_domains = ["example.org"]
[aliases]
postmaster = "alice@example.org"
[quota]
storage = "1G"
[quota.user]
"alice@example.org" = { storage = "5G" }
"Alice@Example.org" = { messages = 10 }
alice = { storage = "2G" }
postmaster = { storage = "0" }
[quota.user."bob@example.org"]
storage = "3G"
[[listener]]
address = "127.0.0.1:25"
mode = "plain"
auth = "none"
`), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := auth.LoadUsers(filepath.Join(dir, "users"))
	h, _ := auth.HashPassword("correct horse")
	users.Set("alice@example.org", h)
	got := warnings(t, cfg, users)
	usersFile := cfg.Path(cfg.UsersFile)
	want := []string{
		file + `:9: warning: quota.user "alice": no such user in ` + usersFile + `; the override applies to no mailbox (name a user as ` + "`tlsmail user list`" + ` shows it)`,
		file + `:12: warning: quota.user "bob@example.org": no such user in ` + usersFile + `; the override applies to no mailbox (name a user as ` + "`tlsmail user list`" + ` shows it)`,
		file + `:10: warning: quota.user "postmaster": no such user in ` + usersFile + `; the override applies to no mailbox (name a user as ` + "`tlsmail user list`" + ` shows it)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDeliveryWarningsNameEntriesThatNeverApply: [delivery] is for local
// recipients only; an entry for another domain, or for an address no
// user or alias has, is passed over without a word unless check says so.
func TestDeliveryWarningsNameEntriesThatNeverApply(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(file, []byte(`local_domains = ["example.org"]
[aliases]
postmaster = "alice"
[delivery]
"example.org" = "lmtp:unix:/run/dovecot/lmtp"
"notlocal.example" = "lmtp:unix:/run/dovecot/lmtp"
"ghost@example.org" = "lmtp:unix:/run/dovecot/lmtp"
"alice@example.org" = "maildir"
[[listener]]
address = "127.0.0.1:25"
mode = "plain"
auth = "none"
`), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := auth.LoadUsers(filepath.Join(dir, "users"))
	h, _ := auth.HashPassword("correct horse")
	users.Set("alice", h)
	got := warnings(t, cfg, users)
	want := []string{
		file + `:7: warning: [delivery] "ghost@example.org": no local user or alias has this address, so the entry never applies (mail to it is refused)`,
		file + `:6: warning: [delivery] "notlocal.example": notlocal.example is not in local_domains; [delivery] applies to local recipients only, so its mail goes by MX or [transport] instead`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
