package config

import (
	"fmt"
	"testing"
)

// TestClientServicesNeverPlaintextLogin: only listeners that refuse a
// login before TLS are advertised, implicit TLS first.
func TestClientServicesNeverPlaintextLogin(t *testing.T) {
	no := false
	c := &Config{
		Listeners: []Listener{
			{Name: "mx", Address: ":25", Mode: ModeSTARTTLS, Auth: AuthNone},
			{Name: "mx-auth", Address: "0.0.0.0:25", Mode: ModeSTARTTLS, Auth: AuthOptional}, // the MX port: never advertised for submission
			{Name: "submission", Address: ":587", Mode: ModeSTARTTLS, Auth: AuthRequired},
			{Name: "smtps", Address: ":465", Mode: ModeImplicit, Auth: AuthRequired},
			{Name: "plain", Address: ":2525", Mode: ModePlain, Auth: AuthRequired, AllowInsecureAuth: true},
			{Name: "insecure", Address: ":2587", Mode: ModeSTARTTLS, Auth: AuthRequired, AllowInsecureAuth: true},
			{Name: "notlsonly", Address: ":2588", Mode: ModeSTARTTLS, Auth: AuthOptional, TLSAuthOnly: &no},
			{Name: "unbound", Address: "127.0.0.1:0", Mode: ModeImplicit, Auth: AuthRequired},
		},
		IMAP: []IMAPListener{{Name: "imap", Address: ":143", Mode: ModeSTARTTLS}, {Name: "imapplain", Address: ":1143", Mode: ModeSTARTTLS, AllowPlaintextLogin: true}},
		POP3: []POP3Listener{{Name: "pop3s", Address: ":995", Mode: ModeImplicit}, {Name: "pop3plain", Address: ":110", Mode: ModeSTARTTLS, AllowPlaintextLogin: true}},
	}
	got := fmt.Sprint(c.ClientServices())
	want := "[{submission smtps 465 true} {pop3 pop3s 995 true} {submission submission 587 false} {imap imap 143 false}]"
	if got != want {
		t.Errorf("ClientServices:\n%s\nwant\n%s", got, want)
	}
}
