package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/certs"
)

// TestLoadRefusesWhatItUsedToAccept: each of these loaded before (or
// failed only at bind time, with no line); now Load names the file and
// the line, and `serve` exits 2.
func TestLoadRefusesWhatItUsedToAccept(t *testing.T) {
	for name, tc := range map[string]struct{ edit, want string }{
		"duplicate address": {strings.Replace(good, "127.0.0.1:587", "127.0.0.1:25", 1), `:19: listener submission: address 127.0.0.1:25 is already used by listener mx`},
		"port out of range": {strings.Replace(good, "127.0.0.1:587", "127.0.0.1:99999", 1), `:19: listener submission: address "127.0.0.1:99999": port 99999 is out of range`},
		"unknown port":      {strings.Replace(good, "127.0.0.1:587", "127.0.0.1:nosuchport", 1), `:19: listener submission: address "127.0.0.1:nosuchport": unknown port`},
		"duplicate name":    {strings.Replace(good, `name = "submission"`, `name = "mx"`, 1), `:18: listener name "mx" is used twice`},
		"pop3 vs smtp":      {good + "\n[[pop3_listener]]\nname = \"p\"\naddress = \"127.0.0.1:587\"\n", `:24: pop3_listener p: address 127.0.0.1:587 is already used by listener submission`},
		"imap vs pop3":      {good + "\n[[pop3_listener]]\nname = \"p\"\naddress = \"127.0.0.1:995\"\n[[imap_listener]]\nname = \"i\"\naddress = \"127.0.0.1:995\"\n", `:27: imap_listener i: address 127.0.0.1:995 is already used by pop3_listener p`},
		"imap plain":        {good + "\n[[imap_listener]]\nname = \"i\"\naddress = \"127.0.0.1:143\"\nmode = \"plain\"\n", `:25: imap_listener i: mode plain allows no login`},
		"imap autologout":   {strings.Replace(good, "[limits]", "[limits]\nimap_timeout = \"10m\"", 1), `limits.imap_timeout 10m0s is below 30m`},
		"metrics clash":     {strings.Replace(good, "[tls]", "metrics_address = \"127.0.0.1:25\"\n[tls]", 1), `:5: metrics_address: address 127.0.0.1:25 is already used by listener mx`},
		"negative":          {strings.Replace(good, "[limits]", "[limits]\nconnections = -5", 1), `:10: limits.connections must be positive`},
		"zero size":         {strings.Replace(good, "message_size = 10485760", "message_size = 0", 1), `:10: limits.message_size must be positive (0 does not mean "no limit"`},
		"zero duration":     {strings.Replace(good, `"2m"`, `"0s"`, 1), `:11: limits.command_timeout must be positive`},
		"queue workers":     {good + "[queue]\nworkers = -1\n", `:22: queue.workers must be positive`},
		"unknown user":      {"user = \"no-such-user-here\"\n" + good, `:1: user "no-such-user-here": user: unknown user`},
		"unknown group":     {"user = \"nobody\"\ngroup = \"no-such-group-here\"\n" + good, `:2: group "no-such-group-here"`},
	} {
		_, err := Load(write(t, tc.edit))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%s: error %v, want it to contain %q", name, err, tc.want)
		}
	}
}

// tlsFiles writes a CA-issued certificate and key, and a second key that
// does not match, into dir/tls.
func tlsFiles(t *testing.T, dir string) {
	t.Helper()
	ca, err := certs.NewCA(certs.Template{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := certs.Issue(ca, certs.Template{Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := certs.Issue(ca, certs.Template{Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "tls"), 0o700)
	if err := a.WriteFiles(filepath.Join(dir, "tls/server.pem"), filepath.Join(dir, "tls/server.key")); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFiles(filepath.Join(dir, "tls/other.pem"), filepath.Join(dir, "tls/other.key")); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFilesNamesTheSetting: the files `serve` reads at start are
// checked before it binds, and a failure points at the setting's line.
func TestCheckFilesNamesTheSetting(t *testing.T) {
	dir := t.TempDir()
	tlsFiles(t, dir)
	os.WriteFile(filepath.Join(dir, "users"), nil, 0o600)
	base := "data_dir = \"" + dir + "\"\n" + good
	load := func(body string) *Config {
		t.Helper()
		c, err := Load(write(t, body))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if w, err := load(base).CheckFiles(); err != nil || len(w) != 0 {
		t.Fatalf("good files: %v %v", w, err)
	}
	for name, tc := range map[string]struct{ edit, want string }{
		"missing cert":  {strings.Replace(base, "tls/server.pem", "tls/nope.pem", 1), `:7: cert ` + dir + `/tls/nope.pem: no such file or directory`},
		"missing key":   {strings.Replace(base, "tls/server.key", "tls/nope.key", 1), `:8: key ` + dir + `/tls/nope.key: no such file or directory`},
		"key mismatch":  {strings.Replace(base, "tls/server.key", "tls/other.key", 1), `:8: key ` + dir + `/tls/other.key does not match certificate`},
		"missing users": {strings.Replace(base, "[tls]", "users_file = \"gone\"\n[tls]", 1), `:6: users_file ` + dir + `/gone: no such file or directory`},
		"client CA":     {strings.Replace(base, "[limits]", "client_ca_file = \"nope.pem\"\n[limits]", 1), `:10: tls.client_ca_file ` + dir + `/nope.pem: no such file`},
		"outbound CA":   {base + "[outbound]\nca_file = \"/nonexistent/ca.pem\"\n", `:23: outbound.ca_file /nonexistent/ca.pem: no such file`},
		"default users": {strings.Replace(base, dir+"\"", dir+"/sub\"", 1), `tlsmail.toml: users_file ` + dir + `/sub/users: no such file`},
	} {
		_, err := load(tc.edit).CheckFiles()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%s: error %v, want it to contain %q", name, err, tc.want)
		}
	}
	// A world-readable key works, with a warning naming it and its line.
	os.Chmod(filepath.Join(dir, "tls/server.key"), 0o644)
	w, err := load(base).CheckFiles()
	if err != nil || len(w) != 1 || !regexp.MustCompile(`tlsmail\.toml:8: warning: private key .*/tls/server\.key is readable by every local user \(mode 0644\)`).MatchString(w[0]) {
		t.Errorf("world-readable key: %q %v", w, err)
	}
}

func TestRestartNeeded(t *testing.T) {
	a, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Load(write(t, strings.Replace(good, "127.0.0.1:587", "127.0.0.1:588", 1)+"\n[[listener]]\nname = \"extra\"\naddress = \"127.0.0.1:2526\"\n"))
	got := strings.Join(b.RestartNeeded(a), "; ")
	if got != "listener submission changed; new listener extra" {
		t.Errorf("RestartNeeded = %q", got)
	}
	c, _ := Load(write(t, strings.Replace(good, "10485760", "20971520", 1)))
	if r := c.RestartNeeded(a); len(r) != 0 {
		t.Errorf("a message_size change is applied by a reload, got %q", r)
	}
}

// TestCheckFilesUnusedCertificate: a [tls] cert or key that is not there
// is a mistake even when no listener uses TLS — a warning naming the
// line then (serve starts without it), a problem as soon as anything
// serves TLS: a listener, or [web] alone (serve loads the certificate
// for it; check used to look only at the listeners).
func TestCheckFilesUnusedCertificate(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users"), nil, 0o600)
	plain := "data_dir = \"" + dir + "\"\n" + `local_domains = ["example.org"]
[tls]
cert = "tls/nope.pem"
key = "tls/nope.key"
[[listener]]
name = "mx"
address = "127.0.0.1:25"
mode = "plain"
`
	c, err := Load(write(t, plain))
	if err != nil {
		t.Fatal(err)
	}
	problems, warnings := c.FileProblems()
	if len(problems) != 0 || len(warnings) != 2 ||
		!strings.Contains(warnings[0], `:4: warning: cert `+dir+`/tls/nope.pem: no such file or directory (nothing serves TLS now`) ||
		!strings.Contains(warnings[1], `:5: warning: key `+dir+`/tls/nope.key: no such file or directory`) {
		t.Errorf("plain listeners only: problems %v, warnings %q", problems, warnings)
	}
	c, err = Load(write(t, plain+"[web]\naddress = \"127.0.0.1:8443\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	problems, warnings = c.FileProblems()
	if len(problems) != 2 || len(warnings) != 0 || !strings.Contains(problems[0].Error(), `:4: cert `+dir+`/tls/nope.pem: no such file or directory`) {
		t.Errorf("with [web]: problems %v, warnings %q", problems, warnings)
	}
}
