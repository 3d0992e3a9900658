package tlsconf

import (
	"crypto/tls"
	"strings"
	"testing"
)

func TestParseCiphers(t *testing.T) {
	tests := []struct {
		spec    string
		want    []uint16 // nil: just check no error
		ignored string
	}{
		{spec: "ECDHE-RSA-AES128-GCM-SHA256", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		{spec: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:ECDHE-RSA-AES128-GCM-SHA256",
			want: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}},
		{spec: "ECDHE+AESGCM:!ECDSA", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{spec: "ECDHE+AESGCM:-ECDSA:ECDHE-ECDSA-AES128-GCM-SHA256",
			want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}},
		{spec: "ECDHE+AESGCM:!ECDSA:ECDHE-ECDSA-AES128-GCM-SHA256", // '!' is final
			want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{spec: "AES128-SHA:ECDHE-RSA-AES256-SHA:+AES128-SHA", want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}},
		{spec: "ECDHE-RSA-AES128-SHA ECDHE-RSA-AES256-GCM-SHA384,@STRENGTH",
			want: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}},
		// Mozilla's "intermediate" string: DHE names are real OpenSSL ciphers Go lacks.
		{spec: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305",
			ignored: "DHE-RSA-AES128-GCM-SHA256"},
		{spec: "HIGH:!aNULL:!MD5:!RC4:!3DES:@SECLEVEL=2"},
		{spec: "DEFAULT:TLS_AES_128_GCM_SHA256", ignored: "TLS_AES_128_GCM_SHA256"},
		{spec: "ALL:!EXPORT:!LOW:!aNULL:!eNULL:!SSLv2"[:len("ALL:!EXPORT:!LOW:!aNULL:!eNULL")]},
	}
	for _, tt := range tests {
		got, err := ParseCiphers(tt.spec)
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		if tt.want != nil && !equal(got.Suites, tt.want) {
			t.Errorf("%q: got %v, want %v", tt.spec, names(got.Suites), names(tt.want))
		}
		if tt.ignored != "" && !strings.Contains(strings.Join(got.Ignored, ":"), tt.ignored) {
			t.Errorf("%q: ignored %v, want %s among them", tt.spec, got.Ignored, tt.ignored)
		}
		for _, id := range got.Suites {
			if n := tls.CipherSuiteName(id); strings.Contains(tt.spec, "HIGH") && (strings.Contains(n, "RC4") || strings.Contains(n, "3DES")) {
				t.Errorf("%q selected %s, which is not HIGH", tt.spec, n)
			}
		}
	}
}

func TestParseCiphersErrors(t *testing.T) {
	for spec, want := range map[string]string{
		"ECDHE-RSA-AES128-GCM-SHA265:ECDHE-RSA-AES256-GCM-SHA384": "unknown cipher or keyword ECDHE-RSA-AES128-GCM-SHA265",
		"HIGH:BOGUS:ALSOBAD":                 "BOGUS, ALSOBAD",
		"DHE-RSA-AES128-GCM-SHA256":          "selects no cipher suite",
		"aNULL":                              "selects no cipher suite",
		"HIGH:!HIGH":                         "selects no cipher suite",
		"ECDHE-RSA-AES128-GCM-SHA256:@SPEED": "@SPEED",
	} {
		_, err := ParseCiphers(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", spec, err, want)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]uint16{"": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13, "1.2": tls.VersionTLS12, "tls1_3": tls.VersionTLS13, "TLSv1": tls.VersionTLS10} {
		got, err := ParseVersion(in, tls.VersionTLS12)
		if err != nil || got != want {
			t.Errorf("%q: %x %v", in, got, err)
		}
	}
	if _, err := ParseVersion("SSLv3", 0); err == nil {
		t.Error("SSLv3 accepted")
	}
}

func FuzzParseCiphers(f *testing.F) {
	for _, s := range []string{"HIGH:!aNULL", "ECDHE+AESGCM:-ECDSA:+AES128", "@STRENGTH", "!", "a:b,c d", "TLS_AES_128_GCM_SHA256"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := ParseCiphers(spec)
		if err != nil {
			return
		}
		seen := map[uint16]bool{}
		for _, id := range got.Suites {
			if seen[id] {
				t.Fatalf("%q: duplicate suite %x", spec, id)
			}
			seen[id] = true
		}
	})
}

func equal(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func names(ids []uint16) []string {
	var out []string
	for _, id := range ids {
		out = append(out, tls.CipherSuiteName(id))
	}
	return out
}
