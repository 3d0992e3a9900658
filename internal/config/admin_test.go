package config

import (
	"strings"
	"testing"
	"time"
)

func TestAdminDefaultsAndChecks(t *testing.T) {
	c, err := Load(write(t, acmeConf+"\n[admin]\nuser = \"admin\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin == nil || c.Admin.Address != "127.0.0.1:8443" || c.Admin.Session.Duration != 12*time.Hour {
		t.Fatalf("admin defaults: %+v, want loopback 127.0.0.1:8443 and 12h", c.Admin)
	}
	if c, err := Load(write(t, acmeConf)); err != nil || c.Admin != nil {
		t.Fatalf("no [admin]: %+v, %v; want no dashboard", c.Admin, err)
	}
	for _, tc := range []struct{ conf, want string }{
		{acmeConf + "\n[admin]\naddress = \"127.0.0.1:8443\"\n", "needs user"},
		{acmeConf + "\n[admin]\nuser = \"a\"\naddress = \"8443\"\n", "want host:port"},
		{"hostname = \"mx.example.org\"\nlocal_domains = [\"example.org\"]\n[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:25\"\nmode = \"plain\"\nauth = \"none\"\n[admin]\nuser = \"a\"\n", "[tls] cert"},
	} {
		_, err := Load(write(t, tc.conf))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "admin") {
			t.Errorf("%q: error %v, want one about admin saying %q", tc.conf[len(tc.conf)-40:], err, tc.want)
		}
	}
}
