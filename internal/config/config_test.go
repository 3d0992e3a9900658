package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tlsmail.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `hostname = "mx.example.org"
local_domains = ["example.org"]
relay_networks = ["192.0.2.0/24", "2001:db8::1"]

[tls]
cert = "tls/server.pem"
key = "tls/server.key"

[limits]
message_size = 10485760
command_timeout = "2m"

[[listener]]
name = "mx"
address = "127.0.0.1:25"

[[listener]]
name = "submission"
address = "127.0.0.1:587"
auth = "required"
`

func TestLoadAppliesDefaults(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MessageSize != 10485760 || c.Limits.CommandTimeout.Duration != 2*time.Minute || c.Limits.DataTimeout.Duration != 3*time.Minute {
		t.Errorf("limits %+v", c.Limits)
	}
	if c.Listeners[0].Mode != ModeSTARTTLS || c.Listeners[0].Auth != AuthOptional || !c.Listeners[1].RequireTLSForAuth() {
		t.Errorf("listener defaults %+v", c.Listeners)
	}
	if !c.InRelayNets([]byte{192, 0, 2, 9}) || c.InRelayNets([]byte{198, 51, 100, 1}) {
		t.Error("relay networks")
	}
	if c.Path("tls/server.pem") != filepath.Join("tlsmail-data", "tls/server.pem") {
		t.Errorf("path %s", c.Path("tls/server.pem"))
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	for name, tc := range map[string]struct{ edit, want string }{
		"syntax":                    {strings.Replace(good, "[limits]", "[limits", 1), ":9:"},
		"unknown key":               {strings.Replace(good, "message_size", "message_sise", 1), `:10: unknown setting "limits.message_sise"`},
		"unknown table":             {strings.Replace(good, "[limits]", "[limit]", 1), `:9: unknown table [limit]`},
		"unknown array of tables":   {strings.Replace(good, "[[listener]]", "[[listner]]", 1), `:13: unknown table [[listner]]`},
		"unknown dotted table":      {strings.Replace(good, "[limits]", "[limit.x]", 1), `:9: unknown table [limit.x]`},
		"unknown sub-table":         {strings.Replace(good, "[limits]", "[limits.extra]\nx = 1\n[limits]", 1), `:9: unknown table [limits.extra]`},
		"integer out of range":      {strings.Replace(good, "message_size = 10485760", "message_size = 99999999999999999999", 1), `:10: limits.message_size: 99999999999999999999 is out of range`},
		"bad mode":                  {good + "mode = \"tls\"\n", `:21: listener submission: mode "tls"`},
		"bad duration":              {strings.Replace(good, `"2m"`, `"2 minutes"`, 1), "invalid duration"},
		"bad cidr":                  {strings.Replace(good, "192.0.2.0/24", "192.0.2.0/33", 1), `:3: relay_networks`},
		"bad ciphers":               {strings.Replace(good, "[limits]", "ciphers = \"HIGH:NOPE\"\n[limits]", 1), ":9: cipher string"},
		"plain auth":                {good + "mode = \"plain\"\n", ":20: listener submission: auth on a plain listener"},
		"wrong type":                {strings.Replace(good, "message_size = 10485760", `message_size = "big"`, 1), `:10: limits.message_size: wrong type: a string where the setting takes a number without quotes (e.g. 10)`},
		"mixed-script domain":       {strings.Replace(good, `["example.org"]`, `["example.org", "pаypal.example"]`, 1), `:2: local_domains "pаypal.example": invalid domain: label "pаypal" mixes scripts (Latin, Cyrillic)`},
		"bad A-label transport":     {good + "[transport]\n\"xn--zz.example\" = \"h:25\"\n", `:22: transport "xn--zz.example": invalid domain`},
		"relay cert fingerprint":    {strings.Replace(good, "[tls]", "relay_clientcerts = [\"12:34\"]\n[tls]", 1), `:5: relay_clientcerts: "12:34" is neither`},
		"relay certs, no client CA": {strings.Replace(good, "[tls]", "permit_tls_all_clientcerts = true\n[tls]", 1), `:5: permit_tls_all_clientcerts needs client certificates`},
	} {
		_, err := Load(write(t, tc.edit))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%s: error %v, want it to contain %q", name, err, tc.want)
		}
	}
}

func TestDevConfigRoundTrips(t *testing.T) {
	dir := t.TempDir()
	c := Dev(dir)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "tlsmail.toml")
	if err := c.Write(p, "# generated\n"); err != nil {
		t.Fatal(err)
	}
	back, err := Load(p)
	if err != nil {
		t.Fatalf("the written dev config does not load: %v", err)
	}
	if len(back.Listeners) != 6 || back.Listeners[2].Auth != AuthRequired || back.Limits.MessageSize != 35*1024*1024 {
		t.Errorf("round trip: %+v", back.Listeners)
	}
	// The dev certificate names ::1: every listener is on [::1] too,
	// optional so that a machine without IPv6 still starts.
	if l := back.Listeners[5]; l.Name != "submission-ipv6" || l.Address != "[::1]:2587" || !l.Optional || l.Auth != AuthRequired {
		t.Errorf("IPv6 submission listener: %+v", l)
	}
	if p := back.POP3[3]; p.Name != "pop3s-ipv6" || p.Address != "[::1]:2995" || !p.Optional || p.Mode != ModeImplicit {
		t.Errorf("IPv6 POP3S listener: %+v", p)
	}
	if back.Listeners[0].Optional {
		t.Error("the IPv4 listeners must not be optional")
	}
	if len(back.IMAP) != 4 || back.IMAP[0].Address != "127.0.0.1:2143" || back.IMAP[0].Mode != ModeSTARTTLS ||
		back.IMAP[1].Address != "127.0.0.1:2993" || back.IMAP[1].Mode != ModeImplicit || !back.IMAP[3].Optional ||
		back.Limits.IMAPTimeout.Duration != 30*time.Minute {
		t.Errorf("dev IMAP listeners: %+v, imap_timeout %v", back.IMAP, back.Limits.IMAPTimeout)
	}
}

// TestPickSaysWhatTheAccountsFileLacks: an accounts file with no accounts
// says so (it used to claim "several accounts and no default").
func TestPickSaysWhatTheAccountsFileLacks(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.toml")
	two := filepath.Join(dir, "two.toml")
	os.WriteFile(empty, nil, 0o600)
	os.WriteFile(two, []byte("[account.a]\nserver = \"a.example:465\"\n[account.b]\nserver = \"b.example:465\"\n"), 0o600)
	for path, want := range map[string]string{empty: "no [account.NAME] sections", two: "several accounts and no default"} {
		a, err := LoadAccounts(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, err := a.Pick(""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Pick: %v, want %q", path, err, want)
		}
	}
}
