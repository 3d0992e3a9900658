package msgauth

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// resolverFor is a real resolver (Go's) talking to the test DNS server.
func resolverFor(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// zoneTXT is a TXT record line with v split into 255-octet strings.
func zoneTXT(name, v string) string {
	var parts []string
	for _, s := range SplitTXT(v) {
		parts = append(parts, `"`+s+`"`)
	}
	return name + " 300 IN TXT " + strings.Join(parts, " ")
}

// openDKIMSign signs msg with OpenDKIM (rsa-sha256, relaxed/relaxed) and
// returns the signed message.
func openDKIMSign(t *testing.T, pemKey []byte, domain, selector, msg string) string {
	t.Helper()
	bin := testpeer.Require(t, "opendkim")
	dir := t.TempDir()
	keyFile, conf, file := filepath.Join(dir, "key.pem"), filepath.Join(dir, "c.conf"), filepath.Join(dir, "m.eml")
	write(t, keyFile, string(pemKey))
	write(t, conf, "Mode s\nSyslog no\nRequireSafeKeys no\nSignatureAlgorithm rsa-sha256\nCanonicalization relaxed/relaxed\n"+
		"KeyFile "+keyFile+"\nDomain "+domain+"\nSelector "+selector+"\n")
	write(t, file, msg)
	out, err := exec.Command(bin, "-x", conf, "-t", file).CombinedOutput()
	_, sig, ok := strings.Cut(string(out), file+":\n")
	if err != nil || !ok || !strings.HasPrefix(sig, "DKIM-Signature:") {
		t.Fatalf("opendkim signing: %v\n%s", err, out)
	}
	sig = strings.ReplaceAll(strings.ReplaceAll(strings.TrimRight(sig, "\r\n"), "\r\n", "\n"), "\n", "\r\n") + "\r\n"
	return sig + msg
}

func TestVerifyOpenDKIMSignatureSPFAndDMARC(t *testing.T) {
	pemKey, key, err := GenerateKey(true)
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := TXTRecord(key)
	dns := testpeer.StartDNS(t,
		zoneTXT("odk._domainkey.example.org.", txt),
		`example.org. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`soft.example. 300 IN TXT "v=spf1 ~all"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=reject"`,
	)
	v := &Verifier{Host: "mx.example.net", Resolver: resolverFor(dns.Addr), Timeout: 60 * time.Second}
	signed := openDKIMSign(t, pemKey, "example.org", "odk", testMsg)
	ctx := context.Background()

	// From the sender's own address: DKIM by OpenDKIM, SPF and DMARC pass.
	r := v.Check(ctx, Envelope{IP: net.ParseIP("127.0.0.1"), Helo: "client.example.org", MailFrom: "alice@example.org"}, strings.NewReader(signed))
	if len(r.DKIM) != 1 || r.DKIM[0].Result != "pass" || r.DKIM[0].Domain != "example.org" || r.SPF != "pass" || r.DMARC != "pass" || r.Reject() {
		t.Fatalf("signed, from 127.0.0.1: %+v", r)
	}
	h := r.Header("mx.example.net")
	for _, want := range []string{"Authentication-Results: mx.example.net;\r\n\tdkim=pass header.d=example.org;", "spf=pass smtp.mailfrom=example.org", "dmarc=pass (p=reject) header.from=example.org\r\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	// From elsewhere: SPF fails, the signature still aligns: DMARC pass.
	r = v.Check(ctx, Envelope{IP: net.ParseIP("127.0.0.9"), Helo: "x", MailFrom: "alice@example.org"}, strings.NewReader(signed))
	if r.SPF != "fail" || r.DMARC != "pass" {
		t.Fatalf("signed, from 127.0.0.9: %+v", r)
	}
	// A changed body: DKIM fails; with SPF failing too, DMARC fails and
	// the domain's p=reject applies.
	forged := strings.Replace(signed, "this is signed", "send money", 1)
	r = v.Check(ctx, Envelope{IP: net.ParseIP("127.0.0.9"), Helo: "x", MailFrom: "alice@example.org"}, strings.NewReader(forged))
	if len(r.DKIM) != 1 || r.DKIM[0].Result != "fail" || r.DMARC != "fail" || !r.Reject() {
		t.Fatalf("forged: %+v", r)
	}
	// Softfail, and no DMARC record; unsigned: dkim=none.
	soft := strings.Replace(testMsg, "alice@example.org", "bob@soft.example", 1)
	r = v.Check(ctx, Envelope{IP: net.ParseIP("127.0.0.9"), Helo: "x", MailFrom: "bob@soft.example"}, strings.NewReader(soft))
	if r.SPF != "softfail" || r.DMARC != "none" || len(r.DKIM) != 0 || r.Reject() {
		t.Fatalf("softfail: %+v", r)
	}
	if h := r.Header("mx.example.net"); !strings.Contains(h, "dkim=none;") || !strings.Contains(h, "spf=softfail") {
		t.Fatalf("softfail header:\n%s", h)
	}
}

// Untrusted input: malformed signatures, key records and SPF records,
// lookup loops and a failing DNS server give permerror or temperror in
// bounded time, never a panic or a hang.
func TestVerifyMalformedInput(t *testing.T) {
	dns := testpeer.StartDNS(t,
		`bad._domainkey.example.org. 300 IN TXT "v=DKIM1; k=rsa; p=!!notbase64"`,
		`badspf.example. 300 IN TXT "v=spf1 ip4:1.2.3.4/99 bogus:x -all"`,
		`loop.example. 300 IN TXT "v=spf1 include:loop.example -all"`,
		`_dmarc.baddmarc.example. 300 IN TXT "v=DMARC1; p=whatever"`,
	)
	for i := range 12 {
		dns.Add(t, zoneTXT("l"+string(rune('a'+i))+".example.", "v=spf1 include:l"+string(rune('a'+i+1))+".example -all"))
	}
	dns.ServFail("dead.example")
	dns.ServFail("s._domainkey.dead.example")
	dns.ServFail("_dmarc.dead.example")
	v := &Verifier{Host: "mx.example.net", Resolver: resolverFor(dns.Addr), Timeout: 60 * time.Second}
	ip := net.ParseIP("127.0.0.1")
	ctx := context.Background()
	check := func(name, from, msg string) *Results {
		t.Helper()
		done := make(chan *Results, 1)
		go func() { done <- v.Check(ctx, Envelope{IP: ip, Helo: "x", MailFrom: from}, strings.NewReader(msg)) }()
		select {
		case r := <-done:
			return r
		case <-time.After(90 * time.Second):
			t.Fatalf("%s: no result in 90 s", name)
		}
		return nil
	}
	sig := func(s string) string { return "DKIM-Signature: " + s + "\r\n" + testMsg }
	for name, msg := range map[string]string{
		"no tags":      sig("garbage"),
		"bad version":  sig("v=9; a=rsa-sha256; d=example.org; s=x; h=From; bh=AA==; b=AA=="),
		"bad base64":   sig("v=1; a=rsa-sha256; d=example.org; s=sel; h=From; bh=!!; b=!!"),
		"bad key":      sig("v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=bad; h=From; bh=AA==; b=AA=="),
		"no From in h": sig("v=1; a=rsa-sha256; d=example.org; s=bad; h=To; bh=AA==; b=AA=="),
	} {
		r := check(name, "alice@example.org", msg)
		if len(r.DKIM) != 1 || (r.DKIM[0].Result != "permerror" && r.DKIM[0].Result != "fail") {
			t.Errorf("%s: DKIM %+v, want permerror or fail", name, r.DKIM)
		}
	}
	if r := check("no key record", "a@example.org", sig("v=1; a=ed25519-sha256; d=dead.example; s=s; h=From; bh=AA==; b=AA==")); len(r.DKIM) != 1 || r.DKIM[0].Result != "temperror" {
		t.Errorf("DNS failure for the key: %+v", r.DKIM)
	}
	for from, want := range map[string]string{"a@badspf.example": "permerror", "a@loop.example": "permerror", "a@la.example": "permerror", "a@dead.example": "temperror"} {
		if r := check(from, from, testMsg); r.SPF != want {
			t.Errorf("SPF for %s = %s (%s), want %s", from, r.SPF, r.SPFReason, want)
		}
	}
	if r := check("bad dmarc", "a@baddmarc.example", strings.Replace(testMsg, "alice@example.org", "a@baddmarc.example", 1)); r.DMARC != "permerror" {
		t.Errorf("bad DMARC record: %+v", r)
	}
	if r := check("dead dmarc", "a@dead.example", strings.Replace(testMsg, "alice@example.org", "a@dead.example", 1)); r.DMARC != "temperror" {
		t.Errorf("DMARC lookup failing: %+v", r)
	}
	if r := check("two From", "a@example.org", "From: a@example.org\r\n"+testMsg); r.DMARC != "permerror" {
		t.Errorf("two From fields: %+v", r)
	}
}

func TestClaimsHost(t *testing.T) {
	for v, want := range map[string]bool{
		"mx.example.net; spf=pass":              true,
		" MX.Example.Net. ; dkim=pass":          true,
		"(forged) mx.example.net (x); spf=pass": true,
		"mx.example.net":                        true,
		"other.example; spf=pass":               false,
		"mx.example.net.evil; spf=pass":         false,
		"":                                      false,
		"(unclosed mx.example.net; spf=pass":    false,
	} {
		if got := ClaimsHost(v, "mx.example.net"); got != want {
			t.Errorf("ClaimsHost(%q) = %v", v, got)
		}
	}
}
