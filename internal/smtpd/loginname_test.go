package smtpd

import "testing"

// A name another auth backend returns (Dovecot's user=, unescaped) goes
// into the envelope and the logs only as printable text.
func TestPlainLoginName(t *testing.T) {
	for name, want := range map[string]bool{
		"alice": true, "alice@example.org": true, "a.b-c_d": true,
		"": false, "a\nb": false, "a b": false, "a\x7fb": false, "dérek": false, "a\tb": false,
		string(make([]byte, 256)): false,
	} {
		if got := plainLoginName(name); got != want {
			t.Errorf("plainLoginName(%q) = %v, want %v", name, got, want)
		}
	}
}
