package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/server"
)

// devDir makes a complete dev data directory (CA, certificate, users) and
// returns it with the config file serve wrote there.
func devDir(t *testing.T) (dir, cfgFile string) {
	t.Helper()
	dir = t.TempDir()
	if _, err := server.DevSetup(config.Dev(dir)); err != nil {
		t.Fatal(err)
	}
	return dir, filepath.Join(dir, "tlsmail.toml")
}

func TestCheckReportsEveryProblemWithFileAndLine(t *testing.T) {
	dir, good := devDir(t)
	if code, out, errs := runCLI(t, "tlsmail", "check", "--config", good); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check of the dev config: exit %d %q %q", code, out, errs)
	}
	// Three problems at once: no users file, a key that does not match
	// the certificate, a missing outbound CA file.
	other := filepath.Join(dir, "other.key")
	ca, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.key"))
	os.WriteFile(other, ca, 0o600)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte(fmt.Sprintf(`data_dir = %q
local_domains = ["example.org"]
users_file = "no-such-users"

[outbound]
ca_file = "/nonexistent/ca.pem"

[tls]
cert = "tls/server.pem"
key = "other.key"

[[listener]]
address = "127.0.0.1:0"
`, dir)), 0o644)
	code, out, errs := runCLI(t, "tlsmail", "check", "--config", bad)
	if code != exitUsage || out != "" {
		t.Fatalf("check: exit %d stdout %q; want 2 and nothing on stdout\n%s", code, out, errs)
	}
	for _, want := range []string{bad + ":3: users_file", bad + ":6: outbound.ca_file /nonexistent/ca.pem", bad + ":10: key ", "3 problems"} {
		if !strings.Contains(errs, want) {
			t.Errorf("check output lacks %q:\n%s", want, errs)
		}
	}
	// A config that does not load: every problem, each with its line, in
	// the file's order.
	os.WriteFile(bad, []byte("local_domains = [\"x\"]\nlog_level = \"loud\"\nmesage_size = 5\n[limits]\nrecipients = 0\n[[listener]]\naddress = \"127.0.0.1:0\"\nmode = \"tls\"\n"), 0o644)
	code, _, errs = runCLI(t, "tlsmail", "check", "--config", bad)
	for _, want := range []string{bad + ":2: log_level", bad + ":3: unknown setting \"mesage_size\"", bad + ":5: limits.recipients must be positive", bad + ":8: listener"} {
		if code != exitUsage || !strings.Contains(errs, want) {
			t.Errorf("check of a bad config: exit %d, output lacks %q:\n%s", code, want, errs)
		}
	}
	if i, j := strings.Index(errs, ":2: log_level"), strings.Index(errs, ":3: unknown"); i < 0 || j < i {
		t.Errorf("problems not in line order:\n%s", errs)
	}
}

func TestConfigPrintsNonDefaultsAndRoundTrips(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(file, []byte(`hostname = "mx.example.org"
data_dir = "/var/lib/tlsmail"
local_domains = ["example.org"]
[limits]
message_size = 1048576
[outbound.policy]
"bank.example" = "secure match=bank.example"
[tls]
cert = "a.pem"
[[tls.sni]]
cert = "b.pem"
key = "b.key"
[[listener]]
address = "127.0.0.1:25"
mode = "plain"
auth = "none"
`), 0o644)
	code, out, errs := runCLI(t, "tlsmail", "config", "--config", file)
	if code != 0 {
		t.Fatalf("config: %d %s", code, errs)
	}
	for _, want := range []string{`hostname = "mx.example.org"`, "limits.message_size = 1048576", `outbound.policy."bank.example" = "secure match=bank.example"`, "[[tls.sni]]\ncert = \"b.pem\"\nkey = \"b.key\"\n", "[[listener]]\naddress = \"127.0.0.1:25\"\nauth = \"none\"\nmode = \"plain\"\nname = \"smtp1\"\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "recipients") || strings.Contains(out, "# default") {
		t.Errorf("config without --all shows defaults:\n%s", out)
	}
	// What it prints is a configuration that loads to the same settings.
	again := filepath.Join(dir, "again.toml")
	os.WriteFile(again, []byte(out), 0o644)
	if code, out2, errs := runCLI(t, "tlsmail", "config", "--config", again); code != 0 || out2 != out {
		t.Errorf("config of config's output differs (exit %d %s):\n%s\nvs\n%s", code, errs, out2, out)
	}
	_, all, _ := runCLI(t, "tlsmail", "config", "--all", "--config", file)
	if !regexp.MustCompile(`(?m)^limits\.recipients = 1000  # default$`).MatchString(all) || !strings.Contains(all, "limits.message_size = 1048576\n") {
		t.Errorf("config --all does not mark defaults:\n%s", all)
	}
	// --all names every setting, those not set as comments; it still loads.
	if !strings.Contains(all, "# auth_backend: not set (string)\n") || !strings.Contains(all, "# tls.acme.email: not set (string)\n") {
		t.Errorf("config --all leaves settings out:\n%s", all)
	}
	// An empty default means "not set", not a value to copy: never `= ""`.
	if strings.Contains(all, `= ""`) || !strings.Contains(all, "# tls.chain: not set (string)\n") {
		t.Errorf("config --all shows empty defaults as values:\n%s", all)
	}
	os.WriteFile(again, []byte(all), 0o644)
	if code, _, errs := runCLI(t, "tlsmail", "config", "--config", again); code != 0 {
		t.Errorf("config --all output does not load: %s", errs)
	}
}

// A secret in the configuration (the ACME EAB MAC key) is never printed:
// `tlsmail config` output is what people paste into bug reports.
func TestConfigDoesNotPrintSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(file, []byte(`hostname = "mx.example.org"
data_dir = "/var/lib/tlsmail"
local_domains = ["example.org"]
[tls.acme]
email = "admin@example.org"
names = ["mx.example.org"]
eab_key_id = "kid-1"
eab_mac_key = "SECRETMACKEY"
[[listener]]
address = "127.0.0.1:25"
mode = "starttls"
`), 0o644)
	for _, args := range [][]string{{"config"}, {"config", "--all"}} {
		code, out, errs := runCLI(t, append([]string{"tlsmail"}, append(args, "--config", file)...)...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, errs)
		}
		if strings.Contains(out, "SECRETMACKEY") || !strings.Contains(out, `tls.acme.eab_mac_key = "(secret, not shown)"`) || !strings.Contains(out, `tls.acme.eab_key_id = "kid-1"`) {
			t.Errorf("%v printed:\n%s", args, out)
		}
	}
}

// A configuration whose certificates come from ACME alone (README's ACME
// path) passes `tlsmail check`, as `serve` starts with it.
func TestCheckAcceptsACMEOnlyConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(filepath.Join(dir, "users"), nil, 0o600)
	os.WriteFile(file, []byte(`hostname = "mx.example.org"
data_dir = "`+dir+`"
local_domains = ["example.org"]
[tls.acme]
email = "admin@example.org"
names = ["mx.example.org"]
[[listener]]
address = "127.0.0.1:25"
mode = "starttls"
`), 0o644)
	code, out, errs := runCLI(t, "tlsmail", "check", "--config", file)
	if code != 0 {
		t.Fatalf("check of an ACME-only configuration: exit %d\n%s%s", code, out, errs)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("check wrote into the data directory: %v", entries)
	}
}

// TestCheckWarnsAboutQuotaUsersAndUnusedCertificates: `check` warns (exit
// 0) about a [quota.user] entry naming no user of the users file and
// about a [tls] cert that is not there while no listener uses TLS, each
// with the file and line.
func TestCheckWarnsAboutQuotaUsersAndUnusedCertificates(t *testing.T) {
	dir, _ := devDir(t)
	cfg := filepath.Join(dir, "plain.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir = %q
local_domains = ["example.org"]
[aliases]
postmaster = "demo"
[quota]
storage = "1G"
[quota.user]
demo = { storage = "2G" }
"carol@example.org" = { storage = "5G" }
[tls]
cert = "tls/gone.pem"
key = "tls/server.key"
[[listener]]
address = "127.0.0.1:0"
mode = "plain"
`, dir)), 0o644)
	code, out, errs := runCLI(t, "tlsmail", "check", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "OK (2 warnings)") {
		t.Fatalf("check: exit %d stdout %q\n%s", code, out, errs)
	}
	for _, want := range []string{
		cfg + `:9: warning: quota.user "carol@example.org": no such user in ` + filepath.Join(dir, "users"),
		cfg + `:11: warning: cert ` + filepath.Join(dir, "tls/gone.pem") + `: no such file or directory (nothing serves TLS now`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("check output lacks %q:\n%s", want, errs)
		}
	}
}
