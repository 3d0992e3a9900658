package config

import (
	"slices"
	"strings"
	"testing"
)

const acmeConf = `hostname = "mx.example.org"
local_domains = ["example.org", "example.net"]

[tls.acme]
email = "postmaster@example.org"

[mta_sts]
mode = "enforce"

[web]
address = ":443"

[[listener]]
name = "mx"
address = "127.0.0.1:25"
`

func TestACMEDefaults(t *testing.T) {
	c, err := Load(write(t, acmeConf))
	if err != nil {
		t.Fatal(err)
	}
	a := c.TLS.ACME
	if want := []string{"mx.example.org", "mta-sts.example.org", "mta-sts.example.net"}; !slices.Equal(a.Names, want) {
		t.Errorf("names %v, want %v", a.Names, want)
	}
	if a.Directory != "https://acme-v02.api.letsencrypt.org/directory" || a.HTTPAddress != ":80" || a.TLSALPNAddress != ":443" || len(a.Challenges) != 2 {
		t.Errorf("defaults %+v", a)
	}
	if c.MTASTS.MaxAge != 604800 || !slices.Equal(c.MTASTS.MX, []string{"mx.example.org"}) {
		t.Errorf("mta_sts defaults %+v", c.MTASTS)
	}
	if s := c.ServerTLS(); len(s.Certs) != 0 {
		t.Errorf("with ACME and no cert file, file certificates %v", s.Certs)
	}
	if w, err := c.CheckFiles(); err == nil || !strings.Contains(err.Error(), "users_file") {
		t.Errorf("CheckFiles: %v %v (want only the missing users file)", w, err)
	}
}

func TestACMEConfigErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{`email = "postmaster@example.org"`, `email = ""`, ":5: tls.acme.email: the CA needs a contact address"},
		{`email = "postmaster@example.org"`, "email = \"a@b\"\nchallenges = [\"dns-01\"]", `:6: tls.acme.challenges: "dns-01"`},
		{`email = "postmaster@example.org"`, "email = \"a@b\"\ndirectory = \"http://ca.example\"", ":6: tls.acme.directory"},
		{`mode = "enforce"`, `mode = "strict"`, `:8: mta_sts.mode "strict"`},
		{`address = ":443"`, `address = ""`, ":8: [mta_sts] is published over HTTPS"},
	} {
		_, err := Load(write(t, strings.Replace(acmeConf, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.to, err, tc.want)
		}
	}
}
