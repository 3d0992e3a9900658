package config

import (
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/milter"
)

func TestMilterTables(t *testing.T) {
	c, err := Load(write(t, good+`
[[milter]]
name = "rspamd"
address = "inet:127.0.0.1:11332"
listeners = ["mx"]

[[milter]]
address = "unix:/run/opendkim/opendkim.sock"
default_action = "accept"
command_timeout = "5s"
`))
	if err != nil {
		t.Fatal(err)
	}
	ms := c.MilterConfigs()
	if len(ms) != 2 {
		t.Fatalf("%d milters", len(ms))
	}
	r, o := ms[0], ms[1]
	if r.Name != "rspamd" || r.Network != "tcp" || r.Address != "127.0.0.1:11332" || r.Default != milter.Tempfail ||
		r.ConnectTimeout != DefaultMilterConnectTimeout || r.CommandTimeout != DefaultMilterCommandTimeout || strings.Join(r.Listeners, ",") != "mx" {
		t.Errorf("rspamd: %+v", r)
	}
	if o.Name != "unix:/run/opendkim/opendkim.sock" || o.Network != "unix" || o.Address != "/run/opendkim/opendkim.sock" ||
		o.Default != milter.Accept || o.CommandTimeout != 5*time.Second || len(o.Listeners) != 0 {
		t.Errorf("opendkim: %+v", o)
	}
}

func TestMilterTableErrors(t *testing.T) {
	for body, want := range map[string]string{
		"\n[[milter]]\naddress = \"unix:opendkim.sock\"\n":                                           "absolute path",
		"\n[[milter]]\naddress = \"11332\"\n":                                                        "want inet:HOST:PORT or unix:/PATH",
		"\n[[milter]]\naddress = \"inet:127.0.0.1:1\"\ndefault_action = \"reject\"\n":                "want tempfail or accept",
		"\n[[milter]]\naddress = \"inet:127.0.0.1:1\"\nlisteners = [\"nope\"]\n":                     `no SMTP listener is named "nope"`,
		"\n[[milter]]\naddress = \"inet:127.0.0.1:1\"\n[[milter]]\naddress = \"inet:127.0.0.1:1\"\n": "two milters have this name",
	} {
		_, err := Load(write(t, good+body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
}
