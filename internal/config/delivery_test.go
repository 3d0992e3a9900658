package config

import (
	"strings"
	"testing"
)

func TestDeliveryTable(t *testing.T) {
	c, err := Load(write(t, "auth_backend = \"dovecot:/run/dovecot/auth-client\"\n"+good+`
[delivery]
"example.org" = "lmtp:unix:/run/dovecot/lmtp"
"Bob@example.org" = "maildir"
"other.example" = "lmtp:inet:127.0.0.1:24"
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, user, want string }{
		{"alice@example.org", "alice", "lmtp:unix:/run/dovecot/lmtp"},
		{"bob@EXAMPLE.org", "bob", "maildir"},
		{"postmaster@example.org", "bob", "maildir"}, // an alias to bob: bob's own entry
		{"carol@other.example", "carol", "lmtp:inet:127.0.0.1:24"},
		{"dave@elsewhere.example", "dave", "maildir"},
	} {
		if got := c.DeliveryFor(tc.addr, tc.user).String(); got != tc.want {
			t.Errorf("DeliveryFor(%s, %s) = %s, want %s", tc.addr, tc.user, got, tc.want)
		}
	}
	if d := c.DovecotAuth(); d == nil || d.Network != "unix" || d.Address != "/run/dovecot/auth-client" {
		t.Errorf("DovecotAuth = %v", d)
	}
}

func TestDeliveryTableErrorsNameTheLine(t *testing.T) {
	for body, want := range map[string]string{
		"\n[delivery]\n\"example.org\" = \"procmail\"\n":        ":23: delivery: example.org: \"procmail\": want maildir",
		"\n[delivery]\n\"example.org\" = \"lmtp:unix:run/x\"\n": "absolute path",
		"\n[delivery]\n\"a@b@c\" = \"maildir\"\n":               "neither a domain nor an address",
		"auth_backend = \"ldap:x\"\n":                           "tlsmail.toml:1: auth_backend \"ldap:x\": want users or dovecot:",
		"auth_backend = \"dovecot:relative\"\n":                 "tlsmail.toml:1: auth_backend: dovecot auth",
	} {
		if strings.HasPrefix(body, "auth") {
			body += good
		} else {
			body = good + body
		}
		_, err := Load(write(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
}
