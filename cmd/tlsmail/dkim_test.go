package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestDKIMKeygenAndDNS: `tlsmail dkim keygen` writes a 0600 key and
// prints its record; configured, `tlsmail dns` lists the record and
// --check finds it (and calls another key's record wrong).
func TestDKIMKeygenAndDNS(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"example.org", "ed1"}, {"--rsa", "example.org", "rsa1"}} {
		code, out, errs := runCLI(t, append([]string{"tlsmail", "dkim", "keygen", "--data", dir}, args...)...)
		if code != 0 || !strings.Contains(out, "._domainkey.example.org. 3600 IN TXT \"v=DKIM1; k=") {
			t.Fatalf("keygen %v: %d\n%s%s", args, code, out, errs)
		}
	}
	edKey := filepath.Join(dir, "dkim", "example.org.ed1.ed25519.key")
	st, err := os.Stat(edKey)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if code, _, errs := runCLI(t, "tlsmail", "dkim", "keygen", "--data", dir, "example.org", "ed1"); code == 0 || !strings.Contains(errs, "exists") {
		t.Fatalf("second keygen over the same selector: %d %s", code, errs)
	}
	key, err := msgauth.LoadKey(edKey)
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := msgauth.TXTRecord(key)

	cfg := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(cfg, []byte(`hostname = "mx.example.org"
data_dir = "`+dir+`"
local_domains = ["example.org"]
[[dkim]]
domain = "example.org"
selector = "ed1"
key = "dkim/example.org.ed1.ed25519.key"
[[listener]]
name = "mx"
address = "127.0.0.1:0"
mode = "plain"
auth = "none"
`), 0o600)
	code, out, errs := runCLI(t, "tlsmail", "dns", "--config", cfg, "example.org")
	if want := `ed1._domainkey.example.org.      3600 IN TXT   "` + txt + `"`; code != 0 || !strings.Contains(out, want) {
		t.Fatalf("dns: %d, want %q in\n%s%s", code, want, out, errs)
	}
	dns := testpeer.StartDNS(t, `ed1._domainkey.example.org. 300 IN TXT "`+txt+`"`)
	_, out, _ = runCLI(t, "tlsmail", "dns", "--check", "--config", cfg, "--dns", dns.Addr, "example.org")
	if !strings.Contains(out, "OK       ed1._domainkey.example.org. TXT") {
		t.Fatalf("--check with the key published:\n%s", out)
	}
	_, other, _ := msgauth.GenerateKey(false)
	otherTXT, _ := msgauth.TXTRecord(other)
	dns2 := testpeer.StartDNS(t, `ed1._domainkey.example.org. 300 IN TXT "`+otherTXT+`"`)
	_, out, _ = runCLI(t, "tlsmail", "dns", "--check", "--config", cfg, "--dns", dns2.Addr, "example.org")
	if !strings.Contains(out, "WRONG    ed1._domainkey.example.org. TXT") {
		t.Fatalf("--check with another key published:\n%s", out)
	}
}

// `tlsmail check` names a missing DKIM key file at its setting.
func TestCheckReportsMissingDKIMKey(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tlsmail.toml")
	os.WriteFile(cfg, []byte(`hostname = "mx.example.org"
data_dir = "`+dir+`"
local_domains = ["example.org"]
[[dkim]]
domain = "example.org"
selector = "s1"
key = "dkim/none.key"
[[listener]]
name = "mx"
address = "127.0.0.1:0"
mode = "plain"
auth = "none"
`), 0o600)
	code, out, errs := runCLI(t, "tlsmail", "check", "--config", cfg)
	if code == 0 || !strings.Contains(out+errs, "dkim") || !strings.Contains(out+errs, "none.key") {
		t.Fatalf("check with a missing key: %d\n%s%s", code, out, errs)
	}
}
