package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLIEnv is runCLI with environment variables.
func runCLIEnv(t *testing.T, vars map[string]string, argv ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{name: "tlsmail", stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	return run(env, argv), out.String(), errb.String()
}

// Every command that reads the server's configuration or files finds it
// the same way: --config, else $TLSMAIL_CONFIG, else the dev default's
// tlsmail-data/tlsmail.toml here, else /etc/tlsmail/tlsmail.toml — and
// `user list` with no users file says so instead of listing nobody.
func TestCommandsFindTheServerConfigTheSameWay(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// A server elsewhere, named by $TLSMAIL_CONFIG, with one user.
	srv := filepath.Join(dir, "srv")
	os.MkdirAll(srv, 0o700)
	conf := filepath.Join(srv, "tlsmail.toml")
	os.WriteFile(conf, []byte(`hostname = "mx.example.org"
data_dir = "`+srv+`"
local_domains = ["example.org"]
[[listener]]
address = "127.0.0.1:25"
mode = "plain"
auth = "none"
`), 0o600)
	os.WriteFile(filepath.Join(srv, "users"), []byte("alice:$2a$10$0123456789012345678901uKjmXWYZbIXNbq6fd8YhX2dEG0tB0Cu\n"), 0o600)
	os.MkdirAll(filepath.Join(srv, "queue", "msg"), 0o700) // as a server that ran leaves it
	vars := map[string]string{"TLSMAIL_CONFIG": conf}
	if code, out, errs := runCLIEnv(t, vars, "tlsmail", "user", "list"); code != 0 || strings.TrimSpace(out) != "alice" {
		t.Errorf("user list with $TLSMAIL_CONFIG: %d %q %s", code, out, errs)
	}
	if code, out, errs := runCLIEnv(t, vars, "tlsmail", "queue", "list"); code != 0 || strings.Contains(errs, "tlsmail-data") {
		t.Errorf("queue list with $TLSMAIL_CONFIG: %d %q %s", code, out, errs)
	}
	if code, out, errs := runCLIEnv(t, vars, "tlsmail", "dns", "example.org"); code != 0 || !strings.Contains(out, "MX") {
		t.Errorf("dns with $TLSMAIL_CONFIG: %d %q %s", code, out, errs)
	}
	// No configuration anywhere and no users file: an error, not silence.
	if code, _, errs := runCLIEnv(t, nil, "tlsmail", "user", "list"); code == 0 || !strings.Contains(errs, "users file") {
		t.Errorf("user list with no users file: %d %s", code, errs)
	}
	// The dev default's configuration here is what check and config read.
	os.MkdirAll("tlsmail-data", 0o700)
	b, _ := os.ReadFile(conf)
	os.WriteFile("tlsmail-data/tlsmail.toml", bytes.Replace(b, []byte("mx.example.org"), []byte("dev.example.org"), 1), 0o600)
	if code, out, errs := runCLIEnv(t, nil, "tlsmail", "config"); code != 0 || !strings.Contains(out, `hostname = "dev.example.org"`) {
		t.Errorf("config with tlsmail-data/tlsmail.toml here: %d %q %s", code, out, errs)
	}
	if code, out, errs := runCLIEnv(t, nil, "tlsmail", "user", "list"); code != 0 || strings.TrimSpace(out) != "alice" {
		t.Errorf("user list with tlsmail-data/tlsmail.toml here: %d %q %s", code, out, errs)
	}
}
