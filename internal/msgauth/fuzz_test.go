package msgauth

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// staticDNS answers TXT lookups from a map, for fuzzing (a DNS server per
// input would make the fuzzer slow); every other lookup finds nothing.
type staticDNS map[string][]string

func (s staticDNS) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v, ok := s[strings.TrimSuffix(name, ".")]; ok {
		return v, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}
func (staticDNS) LookupMX(context.Context, string) ([]*net.MX, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}
func (staticDNS) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}
func (staticDNS) LookupAddr(context.Context, string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
}

// FuzzVerify: any DKIM-Signature, key record, SPF record and DMARC
// record give a result (never a panic), in bounded time.
func FuzzVerify(f *testing.F) {
	k, _ := testKey(f, false)
	sig, _ := SignWith(k, []byte(testMsg))
	txt, _ := TXTRecord(k.Signer)
	sigValue := strings.TrimSuffix(strings.TrimPrefix(sig, "DKIM-Signature: "), "\r\n")
	f.Add(sigValue, txt, "v=spf1 ip4:127.0.0.1 -all", "v=DMARC1; p=reject")
	f.Add("v=1; a=rsa-sha256; d=example.org; s=sel; h=From; bh=; b=", "v=DKIM1; k=rsa; p=", "v=spf1 include:example.org", "v=DMARC1")
	f.Add("", "", "v=spf1 redirect=example.org", "v=DMARC1; p=none; sp=reject; adkim=s")
	f.Fuzz(func(t *testing.T, sigValue, keyRecord, spfRecord, dmarcRecord string) {
		dns := staticDNS{"sel._domainkey.example.org": {keyRecord}, "example.org": {spfRecord}, "_dmarc.example.org": {dmarcRecord}}
		v := &Verifier{Host: "mx.example.net", Resolver: dns, Timeout: 10 * time.Second}
		msg := "DKIM-Signature: " + sigValue + "\r\n" + testMsg
		start := time.Now()
		r := v.Check(context.Background(), Envelope{IP: net.ParseIP("127.0.0.1"), Helo: "x", MailFrom: "alice@example.org"}, strings.NewReader(msg))
		if r.SPF == "" || r.DMARC == "" {
			t.Fatalf("empty result %+v", r)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		_ = r.Header("mx.example.net")
	})
}

func FuzzParseKey(f *testing.F) {
	_, pemKey := testKey(f, false)
	f.Add(pemKey)
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKey(b)
		if err == nil {
			if _, err := TXTRecord(k); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzClaimsHost(f *testing.F) {
	f.Add("mx.example.net; spf=pass")
	f.Add("(a (b) c) mx.example.net")
	f.Fuzz(func(t *testing.T, v string) { ClaimsHost(v, "mx.example.net") })
}
