package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, argv ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{name: "tlsmail", stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(env, argv)
	return code, out.String(), errb.String()
}

func TestHelpAndUsageErrors(t *testing.T) {
	if code, out, _ := runCLI(t, "tlsmail", "help"); code != 0 || !strings.Contains(out, "sslserver") || !strings.Contains(out, "cert") {
		t.Errorf("help: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, "tlsmail", "cert", "show", "-h"); code != 0 || !strings.Contains(out, "-json") {
		t.Errorf("cert show -h: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, "tlsmail", "help", "cert"); code != 0 || !strings.Contains(out, "rehash DIR") {
		t.Errorf("help cert: %d %q", code, out)
	}
	for _, argv := range [][]string{
		{"tlsmail", "frobnicate"},
		{"tlsmail", "cert", "show", "--bogus"},
		{"tlsmail", "cert", "nope"},
		{"tlsmail", "cert", "hash"},
		{"tlsmail", "serve", "--no-such-flag"},
	} {
		code, out, errs := runCLI(t, argv...)
		if code != exitUsage || out != "" || strings.Count(errs, "\n") != 1 {
			t.Errorf("%v: code %d stdout %q stderr %q; want exit 2 and one line on stderr", argv, code, out, errs)
		}
	}
}

func TestMultiCallByProgramName(t *testing.T) {
	for _, name := range []string{"sslserver", "/usr/local/bin/sslclient", "sendmail"} {
		code, out, _ := runCLI(t, name, "-h")
		if code != 0 || !strings.Contains(out, "usage: "+filepath.Base(name)) {
			t.Errorf("%s -h: %d %q", name, code, out)
		}
	}
}

// The UCSPI help says what works and points only into the project: -I
// is built, and the reference is the README, not a file outside it.
func TestUCSPIHelpIsCurrent(t *testing.T) {
	for _, name := range []string{"sslserver", "sslclient"} {
		code, out, _ := runCLI(t, name, "-h")
		if code != 0 {
			t.Fatalf("%s -h: exit %d", name, code)
		}
		for _, stale := range []string{"Not yet", "../", "ucspi-ssl.md"} {
			if strings.Contains(out, stale) {
				t.Errorf("%s -h still says %q:\n%s", name, stale, out)
			}
		}
		if !strings.Contains(out, "README.md") {
			t.Errorf("%s -h does not point to the README:\n%s", name, out)
		}
	}
	if _, out, _ := runCLI(t, "sslserver", "-h"); !strings.Contains(out, "-I ifname (the scope of an IPv6") {
		t.Errorf("sslserver -h does not describe -I:\n%s", out)
	}
}

func TestCertCommandsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if code, _, errs := runCLI(t, "tlsmail", "cert", "new-ca", "--out", ca, "--cn", "CLI CA"); code != 0 {
		t.Fatalf("new-ca: %s", errs)
	}
	if code, _, errs := runCLI(t, "tlsmail", "cert", "new-ca", "--out", ca); code != exitFail || !strings.Contains(errs, "exists") {
		t.Errorf("new-ca over an existing CA: %d %s", code, errs)
	}
	prefix := filepath.Join(dir, "mx")
	if code, _, errs := runCLI(t, "tlsmail", "cert", "issue", "--ca", ca, "--host", "mx.example.org,192.0.2.1", "--out", prefix); code != 0 {
		t.Fatalf("issue: %s", errs)
	}
	if st, err := os.Stat(prefix + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st, err)
	}
	code, out, _ := runCLI(t, "tlsmail", "cert", "show", prefix+".pem")
	if code != 0 || !strings.Contains(out, "certificate 1 of 2") || !strings.Contains(out, "DNS:mx.example.org, IP Address:192.0.2.1") || !strings.Contains(out, "(DANE 3 1 1)") {
		t.Errorf("show: %s", out)
	}
	code, out, _ = runCLI(t, "tlsmail", "cert", "show", "--json", prefix+".pem")
	if code != 0 || !strings.Contains(out, `"spki_sha256"`) || !strings.Contains(out, `"days_left"`) {
		t.Errorf("show --json: %s", out)
	}
	code, out, _ = runCLI(t, "tlsmail", "cert", "verify", "--cafile", filepath.Join(ca, "ca.pem"), "--host", "mx.example.org", prefix+".pem")
	if code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("verify good: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "tlsmail", "cert", "verify", "--cafile", filepath.Join(ca, "ca.pem"), "--host", "other.example", prefix+".pem")
	if code != exitFail || !strings.Contains(out, "FAILED: wrong host: certificate is for mx.example.org, 192.0.2.1, not other.example") {
		t.Errorf("verify wrong host: %d %s", code, out)
	}
	code, out, _ = runCLI(t, "tlsmail", "cert", "verify", "--at", "2040-01-01T00:00:00Z", "--cafile", filepath.Join(ca, "ca.pem"), prefix+".pem")
	if code != exitFail || !strings.Contains(out, "expired") {
		t.Errorf("verify in 2040: %d %s", code, out)
	}
	if code, _, errs := runCLI(t, "tlsmail", "cert", "show", filepath.Join(dir, "missing.pem")); code != exitFail || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "missing.pem") {
		t.Errorf("show missing file: %d %q", code, errs)
	}
}

// TestCertIssueCreatesOutDir: --out DIR/name works when DIR does not
// exist yet, as new-ca makes its own directory.
func TestCertIssueCreatesOutDir(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if code, _, errs := runCLI(t, "tlsmail", "cert", "new-ca", "--out", ca); code != 0 {
		t.Fatalf("new-ca: %s", errs)
	}
	prefix := filepath.Join(dir, "not", "yet", "server")
	if code, _, errs := runCLI(t, "tlsmail", "cert", "issue", "--ca", ca, "--host", "localhost", "--out", prefix); code != 0 {
		t.Fatalf("issue into a missing directory: %d %s", code, errs)
	}
	if st, err := os.Stat(prefix + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
}

func TestUserCommandFlagsAfterName(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	env := &cliEnv{name: "tlsmail", stdin: strings.NewReader("a-long-password\n"), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if code := run(env, []string{"tlsmail", "user", "add", "alice", "--data", dir}); code != 0 {
		t.Fatalf("user add: %d %s", code, errb.String())
	}
	code, list, _ := runCLI(t, "tlsmail", "user", "list", "--data", dir)
	if code != 0 || strings.TrimSpace(list) != "alice" {
		t.Errorf("user list: %d %q", code, list)
	}
	if code, _, errs := runCLI(t, "tlsmail", "user", "add", "bad name!", "--data", dir); code != exitUsage || !strings.Contains(errs, "invalid user name") {
		t.Errorf("bad name: %d %q", code, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "users")); strings.Contains(string(b), "a-long-password") {
		t.Error("plaintext password stored")
	}
}

func TestGetopt(t *testing.T) {
	opts, rest, err := getopt([]string{"-seVn", "-c40", "-x", "rules.cdb", "-B", "220 hi", "0", "25", "qmail-smtpd"}, sslserverArgs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range opts {
		got = append(got, o[0]+"="+o[1])
	}
	if strings.Join(got, " ") != "s= e= V= n= c=40 x=rules.cdb B=220 hi" || strings.Join(rest, " ") != "0 25 qmail-smtpd" {
		t.Errorf("%q %q", got, rest)
	}
	if _, _, err := getopt([]string{"-x"}, sslserverArgs); err == nil {
		t.Error("missing value accepted")
	}
	// -I takes its argument (fehcom's getopt string forgot the colon) and
	// names an interface that must exist.
	for _, prog := range []string{"sslserver", "sslclient"} {
		if code, _, errs := runCLI(t, prog, "-I", "nosuchif0", "127.0.0.1", "25", "prog"); code != 111 || !strings.Contains(errs, "-I nosuchif0") {
			t.Errorf("%s -I: %d %q", prog, code, errs)
		}
	}
	if code, _, _ := runCLI(t, "sslserver", "0", "25"); code != 100 {
		t.Errorf("missing program: exit %d, want 100", code)
	}
}

// TestRulesCompileAndCheck: `tlsmail rules compile` writes a cdb that
// `rules check` reads back; a bad line is named by file and line.
func TestRulesCompileAndCheck(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "rules.txt")
	cdb := filepath.Join(dir, "rules.cdb")
	os.WriteFile(text, []byte("127.0.0.1:allow,RELAYCLIENT=\"\"\n10.0.0.:deny\n"), 0o644)
	if code, _, errs := runCLI(t, "tlsmail", "rules", "compile", text, cdb); code != 0 {
		t.Fatalf("compile: %d %s", code, errs)
	}
	if code, out, _ := runCLI(t, "tlsmail", "rules", "check", cdb, "127.0.0.1"); code != 0 || out != "rule 127.0.0.1:\nset environment variable RELAYCLIENT=\nallow connection\n" {
		t.Errorf("check 127.0.0.1: %d %q", code, out)
	}
	if _, out, _ := runCLI(t, "tlsmail", "rules", "check", cdb, "10.0.0.9"); out != "rule 10.0.0.:\ndeny connection\n" {
		t.Errorf("check 10.0.0.9: %q", out)
	}
	os.WriteFile(text, []byte("127.0.0.1:allow\n127.0.0.2:maybe\n"), 0o644)
	code, _, errs := runCLI(t, "tlsmail", "rules", "compile", text, cdb)
	if code != 100 || !strings.HasPrefix(errs, "tlsmail rules compile: "+text+":2: want allow or deny") || strings.Count(errs, "\n") != 1 {
		t.Errorf("bad line: %d %q", code, errs)
	}
	if _, out, _ := runCLI(t, "tlsmail", "rules", "check", cdb, "127.0.0.1"); !strings.Contains(out, "allow connection") {
		t.Errorf("a failed compile must leave the old cdb: %q", out)
	}
}

// A broken configuration file is reported as FILE:LINE: message, exit 2,
// by serve and by the commands that read it for the data directory,
// without the "(see `tlsmail serve -h`)" of a command-line mistake.
func TestConfigErrorsHaveNoUsageHint(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tlsmail.toml")
	if err := os.WriteFile(file, []byte("data_dir = \"d\"\n[queu]\nfirst_retry = \"1m\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"serve", "status", "queue", "user"} {
		argv := []string{"tlsmail", cmd, "--config", file}
		if cmd == "queue" || cmd == "user" {
			argv = []string{"tlsmail", cmd, "list", "--config", file}
		}
		code, _, stderr := runCLI(t, argv...)
		want := file + ":2: unknown table [queu]"
		if code != 2 || !strings.Contains(stderr, want) || strings.Contains(stderr, "-h`") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line with %q, no -h hint", cmd, code, stderr, want)
		}
	}
}
