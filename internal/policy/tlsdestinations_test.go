package policy

import (
	"crypto/x509/pkix"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/certs"
)

func TestTlsdestinationsGrammar(t *testing.T) {
	dir := t.TempDir()
	ca, _ := certs.NewCA(certs.Template{Subject: pkix.Name{CommonName: "qmail CA"}})
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, certs.EncodeCertificates(ca.Cert), 0o644)
	caDir := filepath.Join(dir, "certdir") + "/"
	os.Mkdir(caDir, 0o755)
	os.WriteFile(filepath.Join(caDir, "ca.pem"), certs.EncodeCertificates(ca.Cert), 0o644)
	if _, err := certs.Rehash(caDir, io.Discard); err != nil {
		t.Fatal(err)
	}
	pin := strings.Repeat("e4", 32)
	file := filepath.Join(dir, "tlsdestinations")
	text := `# s/qmail control/tlsdestinations, every form
!nossl.example.com:
%peer.partner.com:=` + strings.ToUpper(pin[:8]) + pin[8:] + `
=mx.friend.com:` + caFile + `||4
~wild.net:
example.com:
securityfirst.com:` + caFile + `|!SSLv2:HIGH
remote.com:` + caDir + `||3;465
mx.partner.com:` + caFile + `||2|mydomain.net
-adhonly.com:||aNULL:!kRSA
hidden.org:;35
.sub.example.org:
*:
`
	os.WriteFile(file, []byte(text), 0o644)
	q, err := LoadTlsdestinations(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, sender string
		want         Policy
	}{
		{"nossl.example.com", "", Policy{Level: None}},
		{"a.nossl.example.com", "", Policy{Level: May}}, // "!" matches the name and tails of it, not its subdomains
		{"peer.partner.com", "", Policy{Level: Fingerprint, Fingerprints: []string{pin}}},
		{"mx.friend.com", "", Policy{Level: Verify, Match: []string{"mx.friend.com"}}},
		{"wild.net", "", Policy{Level: Verify, Match: []string{"wild.net"}, SkipChain: true}},
		{"example.com", "", Policy{Level: Encrypt}},
		{"securityfirst.com", "", Policy{Level: Verify, SkipName: true}},
		{"remote.com", "", Policy{Level: Verify, SkipName: true, Port: 465, Implicit: true}},
		{"mx.partner.com", "mydomain.net", Policy{Level: Verify, SkipName: true}},
		{"mx.partner.com", "other.net", Policy{Level: May}}, // the rule is for another sender domain
		{"adhonly.com", "", Policy{Level: Encrypt}},
		{"hidden.org", "", Policy{Level: Encrypt, Port: 35}},
		{"a.sub.example.org", "", Policy{Level: Encrypt}},
		{"unlisted.test", "", Policy{Level: May}},
	} {
		got, err := q.PolicyFor(tc.host, tc.sender)
		if err != nil {
			t.Errorf("%s: %v", tc.host, err)
			continue
		}
		same := got.Level == tc.want.Level && strings.Join(got.Match, ",") == strings.Join(tc.want.Match, ",") &&
			strings.Join(got.Fingerprints, ",") == strings.Join(tc.want.Fingerprints, ",") && got.SkipChain == tc.want.SkipChain &&
			got.SkipName == tc.want.SkipName && got.Port == tc.want.Port && got.Implicit == tc.want.Implicit
		if !same {
			t.Errorf("%s (sender %q): got %+v, want %+v", tc.host, tc.sender, got, tc.want)
		}
		if got.Level == Verify && !got.SkipChain && got.Roots == nil {
			t.Errorf("%s: CA not loaded", tc.host)
		}
		if !strings.HasPrefix(got.Source, file) {
			t.Errorf("%s: source %q", tc.host, got.Source)
		}
	}
	// Without a "*" rule, an unlisted host gets no TLS, as in s/qmail.
	q2, _ := ParseTlsdestinations("td", []byte("example.com:\n"))
	if p, _ := q2.PolicyFor("other.test", ""); p.Level != None {
		t.Errorf("no rule: %s", p.Level)
	}
	// A native policy wins over the imported file.
	tb := &Table{Default: Policy{Level: May}, Domains: map[string]Policy{"example.com": {Level: DANE}}, Qmail: q}
	if p, _ := tb.Lookup("example.com", "", ""); p.Level != DANE {
		t.Errorf("native entry lost: %s", p.Level)
	}
	if p, _ := tb.Lookup("wild.net", "", ""); p.Level != Verify {
		t.Errorf("imported entry not used: %s", p.Level)
	}
}

func TestTlsdestinationsErrorsNameTheLine(t *testing.T) {
	for text, want := range map[string]string{
		"ok.com:\nno colon here\n": "td:2: want KEY:VALUE",
		"%pin.com:\n":              "td:1: a % rule needs",
		"x.com:||1;99999\n":        "td:1: port",
		"%p.com:=abcd\n":           "td:1: invalid digest length 4",
		"a.com:\na.com:\n":         "td:2: key",
		"x.com:/ca|c|d|s|extra\n":  "td:1: too many",
		"%p.com:=" + "zz" + "\n":   "td:1: pin",
	} {
		if _, err := ParseTlsdestinations("td", []byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
}

func TestDomainCerts(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "domaincerts")
	os.WriteFile(f, []byte("example.com:/etc/c.pem|/etc/k.pem\n.example.net:/etc/both.pem\n*:/etc/default.pem\n"), 0o644)
	d, err := LoadDomainCerts(f)
	if err != nil {
		t.Fatal(err)
	}
	for dom, want := range map[string]string{"example.com": "/etc/k.pem", "a.example.net": "/etc/both.pem", "other.org": "/etc/default.pem"} {
		if c, ok := d.For(dom); !ok || c.KeyFile != want {
			t.Errorf("%s: %+v", dom, c)
		}
	}
	os.WriteFile(f, []byte("example.com:/c.pem|/k.pem|secret\n"), 0o644)
	if _, err := LoadDomainCerts(f); err == nil || !strings.Contains(err.Error(), ":1: encrypted keys") {
		t.Errorf("password field: %v", err)
	}
}

func FuzzTlsdestinations(f *testing.F) {
	f.Add("example.com:\n*:\n")
	f.Add("=mx.x:/ca||4;465|s.net\n%p:=" + strings.Repeat("ab", 20) + "\n")
	f.Fuzz(func(t *testing.T, text string) {
		q, err := ParseTlsdestinations("f", []byte(text))
		if err != nil {
			return
		}
		for _, h := range []string{"example.com", "a.b.c", ""} {
			_, class := q.Lookup(h, "x.org")
			if class < -1 || class > 7 {
				t.Fatalf("class %d", class)
			}
		}
	})
}

// A rule whose CA file or directory is missing is an error at load (check,
// serve, reload) naming its line; it deferred every message to that
// destination at delivery before, and check said OK.
func TestTlsdestinationsMissingCAFileIsALoadError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tlsdestinations")
	os.WriteFile(path, []byte("*:\n=mx.partner.example:"+dir+"/nonexist/ca.pem||2\nother.example:"+dir+"/nodir/\n"), 0o644)
	_, err := LoadTlsdestinations(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: ") || !strings.Contains(err.Error(), "nonexist/ca.pem") {
		t.Errorf("missing CA file: %v, want an error at line 2 naming it", err)
	}
	os.WriteFile(path, []byte("*:\nother.example:"+dir+"/nodir/\n"), 0o644)
	if _, err := LoadTlsdestinations(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("missing CA directory: %v, want an error at line 2", err)
	}
}
