package route

import (
	"reflect"
	"strings"
	"testing"
)

// A "|command" alias target is a Pipe destination for the alias's
// address; a command holds commas; the other targets stay addresses.
func TestPipeAliases(t *testing.T) {
	r := newRouter(t, func(c *Config) {
		c.Aliases["list"] = "|/usr/bin/procmail -m /etc/procmailrc"
		c.Aliases["both@example.org"] = "alice, |/usr/local/bin/archive --to a,b"
	})
	for addr, want := range map[string][]Destination{
		"list@example.org":   {{Kind: Pipe, Addr: "list@example.org", Command: "/usr/bin/procmail -m /etc/procmailrc"}},
		"List+x@Example.org": {{Kind: Pipe, Addr: "List+x@example.org", Command: "/usr/bin/procmail -m /etc/procmailrc"}},
		"both@example.org": {
			{Kind: Pipe, Addr: "both@example.org", Command: "/usr/local/bin/archive --to a,b"},
			{Kind: Local, Addr: "alice@example.org", User: "alice"}},
	} {
		got, rep := r.Resolve(addr, false)
		if rep != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v %v, want %+v", addr, got, rep, want)
		}
	}
	if !r.IsPipeCommand("/usr/bin/procmail -m /etc/procmailrc") || r.IsPipeCommand("/bin/sh") {
		t.Error("IsPipeCommand")
	}
}

// A client never names a command: an address whose local part is a
// command is looked up as an alias or user like any other, and refused.
func TestClientCannotNameACommand(t *testing.T) {
	r := newRouter(t, func(c *Config) { c.Aliases["list"] = "|/usr/bin/procmail" })
	for _, addr := range []string{`"|/bin/sh"@example.org`, "|/bin/sh@example.org", "|/usr/bin/procmail@example.org", `"|/usr/bin/procmail"`, "|/bin/sh"} {
		for _, relay := range []bool{false, true} {
			got, rep := r.Resolve(addr, relay)
			if rep == nil || rep.Code/100 != 5 {
				t.Errorf("%s (relay %v): %+v %v, want a refusal", addr, relay, got, rep)
			}
			for _, d := range got {
				if d.Kind == Pipe || strings.Contains(d.Command, "/") {
					t.Errorf("%s: %+v", addr, d)
				}
			}
		}
	}
}
