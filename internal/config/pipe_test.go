package config

import (
	"strings"
	"testing"
	"time"
)

func TestPipeSettings(t *testing.T) {
	c, err := Load(write(t, good+`
[aliases]
list = "|/usr/bin/procmail -m /etc/procmailrc"
both = "alice, | /usr/local/bin/archive --to a,b"

[delivery]
"bob@example.org" = "pipe:/usr/bin/maildrop -d bob"

[pipe]
timeout = "10m"
user = "nobody"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DeliveryFor("Bob@example.org", "bob"); got.Agent != AgentPipe || got.Command != "/usr/bin/maildrop -d bob" || got.String() != "pipe:/usr/bin/maildrop -d bob" {
		t.Errorf("DeliveryFor(bob) = %+v", got)
	}
	if c.Pipe.Timeout.Duration != 10*time.Minute || c.Pipe.User != "nobody" {
		t.Errorf("pipe = %+v", c.Pipe)
	}
	if !c.IsPipeAlias("/usr/bin/procmail -m /etc/procmailrc") || !c.IsPipeAlias("/usr/local/bin/archive --to a,b") || c.IsPipeAlias("/bin/sh") {
		t.Error("IsPipeAlias")
	}
	if ids, ok, err := c.PipeIDs(); !ok || err != nil || ids.Name != "nobody" {
		t.Errorf("PipeIDs = %+v %v %v", ids, ok, err)
	}
	d, _ := Load(write(t, good))
	if d.Pipe.Timeout.Duration != time.Hour {
		t.Errorf("default pipe.timeout %s, want 1h (Postfix's command_time_limit)", d.Pipe.Timeout.Duration)
	}
	if _, ok, _ := d.PipeIDs(); ok {
		t.Error("PipeIDs without user or [pipe] user")
	}
}

func TestPipeSettingsErrorsNameTheLine(t *testing.T) {
	for body, want := range map[string]string{
		"\n[delivery]\n\"example.org\" = \"pipe:maildrop\"\n": ":23: delivery: example.org: \"pipe:maildrop\": the command must start with an absolute path",
		"\n[aliases]\nlist = \"|procmail\"\n":                 ":23: aliases: \"list\": the command must start with an absolute path",
		"\n[aliases]\nlist = \"alice |/bin/x\"\n":             ":23: aliases: \"list\": a |command must be a whole target",
		"\n[aliases]\nlist = \"|/bin/x\\n/bin/y\"\n":          "must be one line",
		"\n[pipe]\ntimeout = \"10ms\"\n":                      ":23: pipe.timeout 10ms: at least 1s",
		"\n[pipe]\nuser = \"no-such-user-tlsmail-test\"\n":    ":23: pipe.user",
	} {
		_, err := Load(write(t, good+body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
}
