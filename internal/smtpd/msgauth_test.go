package smtpd

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// msgAuthServer starts smtpd with the inbound checks on, DNS from a test
// server: example.org sends from 127.0.0.1 only and says p=reject;
// signed.example has a DKIM key.
func msgAuthServer(t *testing.T, enforce bool) (*testServer, msgauth.Key) {
	t.Helper()
	_, k, err := msgauth.GenerateKey(false)
	if err != nil {
		t.Fatal(err)
	}
	txt, _ := msgauth.TXTRecord(k)
	dns := testpeer.StartDNS(t,
		`example.org. 300 IN TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=reject"`,
		`s1._domainkey.example.org. 300 IN TXT "`+txt+`"`,
	)
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns.Addr)
	}}
	ts := startServer(t, func(c *testConfig) {
		c.MsgAuth = MsgAuth{Verifier: &msgauth.Verifier{Host: "localhost", Resolver: res, Timeout: time.Minute}, Enforce: enforce}
	})
	return ts, msgauth.Key{Domain: "example.org", Selector: "s1", Signer: k}
}

const unsignedFromExampleOrg = "From: ceo@example.org\r\nTo: demo@localhost\r\nSubject: wire money\r\n" +
	"Authentication-Results: localhost; dkim=pass header.d=example.org; dmarc=pass\r\n" +
	"Authentication-Results: elsewhere.example; spf=none\r\n\r\nnow\r\n.\r\n"

// Record mode: the message is delivered with one Authentication-Results
// header of ours (SPF fail, DMARC fail, p=reject), right below our
// Received; the forged one claiming "localhost" is gone, another host's
// stays.
func TestMsgAuthRecordsAndRemovesForgedResults(t *testing.T) {
	t.Parallel()
	ts, _ := msgAuthServer(t, false)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	if r := sendMessage(c, "ceo@example.org", "demo@localhost", unsignedFromExampleOrg); !strings.HasPrefix(r, "250") {
		t.Fatalf("DATA: %s", r)
	}
	m := ts.waitMessage(t)
	lines := strings.Split(m.body, "\r\n")
	if !strings.HasPrefix(lines[0], "Received: ") {
		t.Fatalf("first line %q", lines[0])
	}
	i := strings.Index(m.body, "\r\nAuthentication-Results: localhost;")
	if i < 0 || strings.Count(m.body, "Authentication-Results: localhost") != 1 || strings.Contains(m.body, "dkim=pass") {
		t.Fatalf("want exactly our header, the forged one removed:\n%s", m.body)
	}
	for _, want := range []string{"dkim=none", "spf=fail (matched all) smtp.mailfrom=example.org", "dmarc=fail (p=reject) header.from=example.org", "Authentication-Results: elsewhere.example; spf=none"} {
		if !strings.Contains(m.body, want) {
			t.Errorf("message lacks %q:\n%s", want, m.body)
		}
	}
	if !strings.Contains(ts.logs.String(), "forged Authentication-Results removed") {
		t.Error("the removal was not logged")
	}
	// Submission (authenticated) is not checked: no header added.
	c.cmd("QUIT", "221")
}

// Enforce mode: the p=reject failure is refused with 550 5.7.1 and
// nothing is queued; a message with a valid DKIM signature of
// example.org passes DMARC (also over BDAT, and larger than the part
// held in memory) and is delivered.
func TestMsgAuthEnforceRejectsDMARCFailure(t *testing.T) {
	t.Parallel()
	ts, key := msgAuthServer(t, true)
	c := dial(t, ts.addr["mx"])
	c.cmd("EHLO client.example", "250")
	if r := sendMessage(c, "ceo@example.org", "demo@localhost", unsignedFromExampleOrg); !strings.HasPrefix(r, "550 5.7.1") {
		t.Fatalf("DMARC failure with p=reject: %s", r)
	}
	body := "From: ceo@example.org\r\nTo: demo@localhost\r\nSubject: big\r\n\r\n" + strings.Repeat("a line of the body, long enough\r\n", 40000)
	sig, err := msgauth.SignWith(key, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	msg := sig + body
	c.cmd("MAIL FROM:<ceo@example.org>", "250")
	c.cmd("RCPT TO:<demo@localhost>", "250")
	c.send("BDAT " + itoa(len(msg)) + " LAST\r\n" + msg)
	if r := c.reply(); !strings.HasPrefix(r, "250") {
		t.Fatalf("signed message over BDAT: %s", r)
	}
	m := ts.waitMessage(t)
	if !strings.Contains(m.body, "dkim=pass header.d=example.org") || !strings.Contains(m.body, "dmarc=pass") || !strings.HasSuffix(m.body, msg) {
		t.Fatalf("signed message: header %q", m.body[:min(len(m.body), 600)])
	}
	if ts.rec.count() != 1 {
		t.Fatalf("%d messages delivered, want 1", ts.rec.count())
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
