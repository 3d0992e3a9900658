package maildir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// dovecotQuotaScript appends messages of the given sizes through
// Dovecot's IMAP (STARTTLS) and prints each answer.
const dovecotQuotaScript = `
import imaplib, ssl, sys
addr, ca, user, pw = sys.argv[1:5]
host, port = addr.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
m = imaplib.IMAP4(host, int(port), timeout=60)
m.starttls(ssl_context=ctx)
m.login(user, pw)
for size in sys.argv[5:]:
    msg = b"Subject: from dovecot\r\n\r\n" + b"y" * (int(size) - 26) + b"\r\n"
    try:
        print("append", size, m.append("INBOX", None, None, msg))
    except imaplib.IMAP4.error as e:
        print("append", size, "refused", e)
m.logout()
`

// TestMaildirsizeSharedWithDovecot: a private Dovecot with the "maildir"
// quota backend enforces the usage in the maildirsize tlsmail keeps (one
// the files alone do not show: so it did not just count them), and
// tlsmail reads the line Dovecot appends after an APPEND. (The private
// Dovecot has no imap_quota plugin, so GETQUOTAROOT is not asked.)
func TestMaildirsizeSharedWithDovecot(t *testing.T) {
	py := testpeer.Require(t, "python3")
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"carol": {Password: "carol-pass", Quota: "10K"}})
	root := dc.Maildir("carol")
	d, err := Create(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Deliver(UniqueName(1, "a", "h"), strings.NewReader("Subject: one\n\nbody\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	q := Quota{Bytes: 10 * 1024}
	if u, err := ReadUsage(root, q); err != nil || u.Messages != 1 {
		t.Fatalf("ReadUsage = %+v, %v", u, err)
	}
	// As a delivery counted in the file whose message Dovecot cannot see
	// (9,000 bytes): only a reader of maildirsize knows the mailbox holds
	// more than 9 of its 10 KiB.
	if err := AddUsage(root, 9000, 1); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", filepath.Dir(root)).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	out, err := exec.Command(py, "-c", dovecotQuotaScript, dc.IMAPAddr, dc.CAFile, "carol", "carol-pass", "2048", "512").CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "append 2048 ('NO', [b'[OVERQUOTA]") ||
		!strings.Contains(string(out), "append 512 ('OK'") {
		t.Fatalf("Dovecot's APPEND over our maildirsize: want 2048 bytes refused (over quota), 512 stored:\n%s", out)
	}
	data, _ := os.ReadFile(filepath.Join(root, QuotaFile))
	u, err := ReadUsage(root, q)
	if err != nil || u.Messages != 3 || u.Bytes < 9000+512 {
		t.Errorf("after Dovecot's APPEND: ReadUsage = %+v, %v; maildirsize:\n%s", u, err, data)
	}
	t.Logf("maildirsize after both:\n%s", data)
}
