package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestIDNRoutesByALabels: python's smtplib sends SMTPUTF8 mail with
// U-label domains. To a local IDN domain (configured as "münchen.test",
// addressed as "MÜNCHEN.test") it lands in the user's Maildir; to
// user@bücher.example (a policy keyed "bücher.example" = "secure") it goes
// by the MX record of xn--bcher-kva.example in the test DNS server to a
// real Postfix whose certificate names only xn--bcher-kva.example, and is
// verified; a mixed-script domain gets 553 5.1.3.
func TestIDNRoutesByALabels(t *testing.T) {
	python := testpeer.Require(t, "python3")
	work := t.TempDir()
	os.Chmod(work, 0o755)
	os.Chmod(filepath.Dir(work), 0o755)
	vmail := filepath.Join(work, "vmail")
	os.MkdirAll(vmail, 0o755)
	os.Chown(vmail, 65534, 65534)
	caDir := filepath.Join(work, "ca")
	tlsmail(t, "cert", "new-ca", "--out", caDir, "--cn", "idn test CA")
	tlsmail(t, "cert", "issue", "--ca", caDir, "--host", "xn--bcher-kva.example", "--out", filepath.Join(work, "pf"))
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(work, "pf.key")+", "+filepath.Join(work, "pf.pem"),
		"smtpd_tls_security_level = may",
		"smtputf8_enable = yes",
		"smtpd_relay_restrictions = reject_unauth_destination",
		"virtual_mailbox_domains = xn--bcher-kva.example",
		"virtual_mailbox_base = "+vmail,
		"virtual_mailbox_maps = static:box/",
		"virtual_uid_maps = static:65534",
		"virtual_gid_maps = static:65534",
	)
	_, pfPort, _ := net.SplitHostPort(pf.Addr)
	dns := testpeer.StartDNS(t,
		"xn--bcher-kva.example. 300 IN MX 10 xn--bcher-kva.example.",
		"xn--bcher-kva.example. 300 IN A 127.0.0.1")
	m := newMailServerFor(t, `"localhost", "münchen.test"`, fmt.Sprintf(`
[outbound]
ca_file = %q
dns_server = %q
port = %s
mta_sts = false
[outbound.policy]
"bücher.example" = "secure"
`, filepath.Join(caDir, "ca.pem"), dns.Addr, pfPort))
	m.start(t)

	script := filepath.Join(t.TempDir(), "idn.py")
	err := os.WriteFile(script, []byte(`import smtplib, ssl, sys
mx, sub, ca, pw = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
def connect(addr):
    host, port = addr.split(":")
    s = smtplib.SMTP(host, int(port))
    s.ehlo("py.example")
    s.starttls(context=ctx)
    s.ehlo("py.example")
    if not s.has_extn("smtputf8"):
        sys.exit("no SMTPUTF8 offered")
    return s
s = connect(mx)
s.sendmail("a@example.org", ["demo@MÜNCHEN.test"], "Subject: idn-local\r\n\r\nHallo München\r\n".encode(), mail_options=["SMTPUTF8"])
try:
    s.sendmail("a@example.org", ["demo@p\u0430ypal.example"], b"Subject: mixed\r\n\r\nx\r\n", mail_options=["SMTPUTF8"])
    sys.exit("a mixed-script domain was accepted")
except smtplib.SMTPRecipientsRefused as e:
    code, msg = list(e.recipients.values())[0]
    print("mixed", code, msg.decode().split(" ")[0])
s.quit()
s = connect(sub)
s.login("demo", pw)
s.sendmail("demo@localhost", ["user@bücher.example"], "Subject: idn-remote\r\n\r\nHallo Bücher\r\n".encode(), mail_options=["SMTPUTF8"])
s.quit()
print("ok")
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out := testpeer.Output(t, python, script, m.addr["mx"], m.addr["submission"], m.ca, demoPassword)
	if !strings.Contains(out, "mixed 553 5.1.3") || !strings.HasSuffix(out, "ok") {
		t.Fatalf("python: %s", out)
	}
	m.findMail(t, "demo", "Subject: idn-local")
	waitForFile(t, filepath.Join(vmail, "box"), "Subject: idn-remote")
	m.waitLog(t, "to=user@xn--bcher-kva.example delay=")
	line := logLine(m.log(), "to=user@xn--bcher-kva.example ")
	for _, want := range []string{"status=sent", "domain=xn--bcher-kva.example", "mx=xn--bcher-kva.example", "policy=secure", "effective=secure", "verified=true"} {
		if !strings.Contains(line, want) {
			t.Errorf("delivery log line lacks %q:\n%s", want, line)
		}
	}
}
