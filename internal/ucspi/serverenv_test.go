package ucspi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// envOf is a getenv over a map.
func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// serverEnv runs ServerEnv with -c 40 and returns what it set and warned.
func serverEnv(t *testing.T, env map[string]string, clientCert string, uid, gid int) (ServerOptions, tlsconf.ServerSettings, bool, []string, int, int, error) {
	t.Helper()
	o := ServerOptions{Verbosity: 1, MaxChildren: 40}
	var warnings []string
	s, req, err := ServerEnv(&o, envOf(env), clientCert, []byte("pw"), &uid, &gid, func(f string, a ...any) {
		warnings = append(warnings, fmt.Sprintf(f, a...))
	})
	return o, s, req, warnings, uid, gid, err
}

func TestServerEnvCertificateAndCiphers(t *testing.T) {
	// ucspi-ssl.md §1.3: CERTCHAINFILE takes precedence over CERTFILE.
	_, s, _, _, _, _, err := serverEnv(t, map[string]string{"CERTFILE": "/c.pem", "KEYFILE": "/k.pem", "CERTCHAINFILE": "/chain.pem", "CIPHERS": "HIGH"}, "", -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Certs[0]; c.CertFile != "/chain.pem" || c.KeyFile != "/k.pem" || string(c.KeyPassword) != "pw" || s.Ciphers != "HIGH" {
		t.Errorf("settings %+v", s)
	}
	_, s, _, _, _, _, _ = serverEnv(t, map[string]string{"CERTFILE": "/c.pem"}, "", -1, -1)
	if c := s.Certs[0]; c.CertFile != "/c.pem" || c.KeyFile != "" {
		t.Errorf("CERTFILE alone: %+v", c)
	}
}

func TestServerEnvClientCertificates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		clientCert string
		require    bool
		caFile     string
		host       bool
	}{
		{"no -z/-m: nothing requested", map[string]string{"CAFILE": "/ca", "CCAFILE": "/cca"}, "", false, "/cca", false},
		{"-m with CCAFILE", map[string]string{"CAFILE": "/ca", "CCAFILE": "/cca"}, "m", true, "/cca", false},
		{"-z checks the host", map[string]string{"CAFILE": "/ca"}, "z", true, "/ca", true},
		{"CCAFILE=- overrides -z", map[string]string{"CAFILE": "/ca", "CCAFILE": "-"}, "z", false, "/ca", false},
	} {
		o, s, req, _, _, _, err := serverEnv(t, tc.env, tc.clientCert, -1, -1)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if req != tc.require || o.ClientCAFile != tc.caFile || o.ClientCertHost != tc.host {
			t.Errorf("%s: require %v, ClientCAFile %q, ClientCertHost %v", tc.name, req, o.ClientCAFile, o.ClientCertHost)
		}
		if want := map[bool]string{true: tlsconf.ClientAuthRequire}[tc.require]; s.ClientAuth != want {
			t.Errorf("%s: ClientAuth %v", tc.name, s.ClientAuth)
		}
		// The base settings (per-connection TLS from rules) never
		// require a certificate themselves.
		if o.TLSSettings.ClientAuth != "" {
			t.Errorf("%s: o.TLSSettings.ClientAuth %v", tc.name, o.TLSSettings.ClientAuth)
		}
	}
}

// -m or -z with no client CA at all is refused in sslserver's own words
// (it failed in serve's TOML wording, 'client_auth "require" needs ...').
func TestServerEnvClientCertificateWithoutCA(t *testing.T) {
	_, _, _, _, _, _, err := serverEnv(t, map[string]string{}, "m", -1, -1)
	if err == nil || !strings.Contains(err.Error(), "-m needs the client certificates' CA: set CCAFILE (or CAFILE or CADIR)") {
		t.Errorf("-m without a CA: %v", err)
	}
	if _, _, req, _, _, _, err := serverEnv(t, map[string]string{"CCAFILE": "-"}, "m", -1, -1); err != nil || req {
		t.Errorf("-m with CCAFILE=-: require %v, %v", req, err)
	}
}

func TestServerEnvDepthAndPerIPLimit(t *testing.T) {
	o, _, _, _, _, _, err := serverEnv(t, nil, "", -1, -1)
	if err != nil || o.VerifyDepth != 1 || o.MaxPerIP != 40 {
		t.Errorf("defaults: depth %d, per IP %d, %v; want 1 and -c", o.VerifyDepth, o.MaxPerIP, err)
	}
	o, _, _, _, _, _, _ = serverEnv(t, map[string]string{"VERIFYDEPTH": "3", "MAXCONIP": "5"}, "", -1, -1)
	if o.VerifyDepth != 3 || o.MaxPerIP != 5 {
		t.Errorf("depth %d, per IP %d", o.VerifyDepth, o.MaxPerIP)
	}
	for _, bad := range []string{"0", "-2", "x"} {
		if o, _, _, _, _, _, _ = serverEnv(t, map[string]string{"MAXCONIP": bad}, "", -1, -1); o.MaxPerIP != 40 {
			t.Errorf("MAXCONIP=%s: per IP %d, want -c", bad, o.MaxPerIP)
		}
	}
	if _, _, _, _, _, _, err = serverEnv(t, map[string]string{"VERIFYDEPTH": "-1"}, "", -1, -1); err == nil || err.Error() != `VERIFYDEPTH "-1" is not a number` {
		t.Errorf("VERIFYDEPTH=-1: %v", err)
	}
}

func TestServerEnvHandlerIDs(t *testing.T) {
	// SSL_UID/SSL_GID fill in -u/-g when not given...
	_, _, _, w, uid, gid, err := serverEnv(t, map[string]string{"SSL_UID": "100", "SSL_GID": "101"}, "", -1, -1)
	if err != nil || uid != 100 || gid != 101 || len(w) != 0 {
		t.Errorf("uid %d gid %d warnings %q %v", uid, gid, w, err)
	}
	// ... and -u/-g win, with a warning, where they differ.
	_, _, _, w, uid, gid, _ = serverEnv(t, map[string]string{"SSL_UID": "100", "SSL_GID": "7", "SSL_CHROOT": "/var/qmail/ssl"}, "", 5, 7)
	if uid != 5 || gid != 7 || len(w) != 2 || !strings.HasPrefix(w[0], "$SSL_UID=100 ignored") || !strings.HasPrefix(w[1], "$SSL_CHROOT ignored") {
		t.Errorf("uid %d gid %d warnings %q", uid, gid, w)
	}
	if _, _, _, _, _, _, err = serverEnv(t, map[string]string{"SSL_GID": "qmail"}, "", -1, -1); err == nil || err.Error() != `$SSL_GID "qmail" is not a number` {
		t.Errorf("SSL_GID=qmail: %v", err)
	}
}

func TestIDsFromEnv(t *testing.T) {
	if uid, gid, err := IDsFromEnv(envOf(map[string]string{"UID": "1", "GID": "2"})); uid != 1 || gid != 2 || err != nil {
		t.Errorf("%d %d %v", uid, gid, err)
	}
	if _, _, err := IDsFromEnv(envOf(map[string]string{"UID": "1"})); err == nil || err.Error() != `-U: $GID "" is not a number` {
		t.Errorf("no GID: %v", err)
	}
}

func TestStartLinesAndDHFile(t *testing.T) {
	env := envOf(map[string]string{"CAFILE": "/ca", "CCAFILE": "/cca", "CERTFILE": "/c", "DHFILE": "/dh"})
	got := strings.Join(StartLines(env, false, 9), "|")
	if got != "cafile 9 /ca|ccafile 9 |cadir 9 |chainfile 9 |cert 9 /c|key 9 |param 9 /dh 0" {
		t.Errorf("without -z/-m: %s", got)
	}
	if got := StartLines(env, true, 9)[1]; got != "ccafile 9 /cca" {
		t.Errorf("with -z: %s", got)
	}
	if DHFileWarning(env) == "" || DHFileWarning(envOf(nil)) != "" {
		t.Error("DHFILE warning")
	}
}
