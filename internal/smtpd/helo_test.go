package smtpd

import "testing"

// FuzzHeloName: whatever a client sends, an accepted name is printable
// ASCII without spaces (safe in a reply, a log line and any Received
// header), bounded, and accepted again unchanged.
func FuzzHeloName(f *testing.F) {
	for _, s := range []string{"client.example", "café.example", "[192.0.2.1]", "[IPv6:2001:db8::1]",
		"\x00\xff\xfe\x80x", "host_name.example extra", "xn--caf-dma.example", "a..b", "ex\u3002ample", "Ｅxample.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		name, ok := heloName(arg)
		if !ok {
			return
		}
		if name == "" || len(name) > 300 {
			t.Fatalf("heloName(%q) = %q", arg, name)
		}
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c > '~' {
				t.Fatalf("heloName(%q) = %q: byte %#x", arg, name, c)
			}
		}
		if again, ok := heloName(name); !ok || again != name {
			t.Fatalf("heloName(%q) = %q, but heloName of that = %q, %v", arg, name, again, ok)
		}
	})
}
