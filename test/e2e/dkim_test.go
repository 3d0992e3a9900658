package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestDKIMSignedSubmissionVerifiedByPeers: mail submitted to server A
// (with a [[dkim]] key from `tlsmail dkim keygen`) leaves for server B
// signed; B (with [msgauth] verify) records dkim=pass, spf=pass and
// dmarc=pass in its Authentication-Results, and OpenDKIM verifies the
// signature of the stored message too.
func TestDKIMSignedSubmissionVerifiedByPeers(t *testing.T) {
	odk := testpeer.Require(t, "opendkim")
	dns := testpeer.StartDNS(t,
		`example.org. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"`,
		`_dmarc.example.org. 300 IN TXT "v=DMARC1; p=reject"`)
	b := newMailServerFor(t, `"localhost", "remote.test"`, fmt.Sprintf("[msgauth]\nverify = true\n[outbound]\ndns_server = %q\n", dns.Addr))
	b.start(t)
	a := newMailServer(t, fmt.Sprintf(`[[dkim]]
domain = "example.org"
selector = "e2e"
key = "dkim/example.org.e2e.ed25519.key"
[outbound]
dns_server = %q
[transport]
"remote.test" = %q
`, dns.Addr, b.addr["mx"]))
	out := tlsmail(t, "dkim", "keygen", "--data", a.dir, "example.org", "e2e")
	rec := regexp.MustCompile(`(?m)^e2e\._domainkey\.example\.org\. 3600 IN TXT "(.*)"$`).FindStringSubmatch(out)
	if rec == nil {
		t.Fatalf("keygen printed no record:\n%s", out)
	}
	dns.Add(t, `e2e._domainkey.example.org. 300 IN TXT "`+rec[1]+`"`)
	a.start(t)

	if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "signed on the way out\n", "send",
		"--server", a.addr["submission"], "--tls", "starttls", "--cafile", a.ca, "--user", "demo",
		"--from", "demo@example.org", "--to", "demo@remote.test", "--subject", "dkim-e2e"); code != 0 {
		t.Fatalf("send: exit %d %s", code, errs)
	}
	msg := b.findMail(t, "demo", "Subject: dkim-e2e")
	for _, want := range []string{"Authentication-Results: mail.e2e.test;", "dkim=pass header.d=example.org", "spf=pass", "dmarc=pass (p=reject) header.from=example.org"} {
		if !strings.Contains(msg, want) {
			t.Errorf("B's copy lacks %q:\n%s", want, msg)
		}
	}
	dir := t.TempDir()
	keys, conf, file := filepath.Join(dir, "keys"), filepath.Join(dir, "opendkim.conf"), filepath.Join(dir, "msg.eml")
	os.WriteFile(keys, []byte("e2e._domainkey.example.org "+rec[1]+"\n"), 0o600)
	os.WriteFile(conf, []byte("Mode v\nSyslog no\nAlwaysAddARHeader yes\nTestPublicKeys "+keys+"\n"), 0o600)
	os.WriteFile(file, []byte(msg), 0o600)
	res, err := exec.Command(odk, "-x", conf, "-vv", "-t", file).CombinedOutput()
	if err != nil || !strings.Contains(string(res), "dkim=pass") || !strings.Contains(string(res), "header.a=ed25519-sha256") {
		t.Fatalf("OpenDKIM on B's copy: %v\n%s", err, res)
	}
}
