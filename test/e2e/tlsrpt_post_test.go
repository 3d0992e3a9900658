package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/internal/tlsrpt"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// buildReport makes a TLS-RPT report about domain with our own
// tlsrpt.Build, from a record store of its own (another sender's view:
// one good session and one failure at mx.<domain>).
func buildReport(t *testing.T, submitter, domain string) []byte {
	t.Helper()
	st, err := records.Open(filepath.Join(t.TempDir(), "records.db"), records.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	for i, r := range []records.Record{
		{TLS: tlsinfo.State{TLS: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Group: "X25519"}, Outcome: records.Delivered},
		{PeerName: "mx." + domain, PeerIP: "192.0.2.1", Outcome: records.Deferred, TLSFailure: true,
			Reason: "the server does not offer STARTTLS; refusing to continue in plaintext"},
	} {
		r.Time, r.Direction, r.Service, r.Domain, r.PolicyType = day.Add(time.Duration(10+i)*time.Hour), records.Out, "smtp", domain, "no-policy-found"
		if !st.Add(r) {
			t.Fatal("record dropped")
		}
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, ok, err := tlsrpt.Build(context.Background(), st, submitter, domain, records.Period{Since: day, Until: day.Add(24 * time.Hour)})
	if err != nil || !ok {
		t.Fatalf("Build: %v %v", ok, err)
	}
	gz, err := tlsrpt.Gzip(rep)
	if err != nil {
		t.Fatal(err)
	}
	return gz
}

// TestTLSRPTReceivedByHTTPSPost: with [tlsrpt] receive_path, the [web]
// listener takes reports by HTTPS POST (RFC 8460 §3): a gzip report made
// by our own tlsrpt.Build, posted by curl, and one posted by our own
// sender's HTTPS form (tlsrpt.Post) are stored and shown by `tlsmail
// report`; malformed ones get 400 and store nothing, a GET 405, a wrong
// type 415, a report about someone else's domain 400; `tlsmail dns`
// publishes the https: rua beside the mailto: one.
func TestTLSRPTReceivedByHTTPSPost(t *testing.T) {
	curl := testpeer.Require(t, "curl")
	webAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	m := newMailServer(t, fmt.Sprintf("[web]\naddress = %q\n[tlsrpt]\nreceive_path = \"/.well-known/tlsrpt\"\n", webAddr))
	m.start(t)
	url := "https://localhost:" + strings.Split(webAddr, ":")[1] + "/.well-known/tlsrpt"
	dir := t.TempDir()
	post := func(body []byte, ctype string, extra ...string) (code, text string) {
		t.Helper()
		f := filepath.Join(dir, "body")
		os.WriteFile(f, body, 0o644)
		args := append([]string{"-sS", "--cacert", m.ca, "--resolve", "localhost:" + strings.Split(webAddr, ":")[1] + ":127.0.0.1",
			"-H", "Content-Type: " + ctype, "--data-binary", "@" + f, "-w", "\n%{http_code}", url}, extra...)
		out, err := exec.Command(curl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		s := strings.TrimSpace(string(out))
		i := strings.LastIndexByte(s, '\n')
		return s[i+1:], s[:max(i, 0)]
	}

	if code, text := post(buildReport(t, "sender-one.test", "e2e.test"), "application/tlsrpt+gzip"); code != "200" || !strings.Contains(text, "report stored") {
		t.Fatalf("POST of a good report: %s %q", code, text)
	}
	for _, bad := range []struct{ body, ctype, want string }{
		{"not gzip at all", "application/tlsrpt+gzip", "400"},
		{`{"organization-name":"evil.test","report-id":"x"}`, "application/tlsrpt+json", "400"},
		{"{}", "text/plain", "415"},
	} {
		if code, text := post([]byte(bad.body), bad.ctype); code != bad.want {
			t.Errorf("POST %q as %s: %s %q, want %s", bad.body, bad.ctype, code, text, bad.want)
		}
	}
	if code, text := post(buildReport(t, "elsewhere.test", "not-ours.test"), "application/tlsrpt+gzip"); code != "400" {
		t.Errorf("a report about another domain: %s %q, want 400", code, text)
	}
	if code, _ := post(nil, "application/tlsrpt+gzip", "-X", "GET"); code != "405" {
		t.Errorf("GET: %s, want 405", code)
	}
	big := make([]byte, tlsrpt.MaxCompressed+10)
	if code, _ := post(big, "application/tlsrpt+gzip"); code != "413" {
		t.Errorf("an oversized report: %s, want 413", code)
	}

	// Our own sender's HTTPS POST form.
	pem, _ := os.ReadFile(m.ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	if err := tlsrpt.Post(context.Background(), "https://"+webAddr+"/.well-known/tlsrpt", buildReport(t, "sender-two.test", "e2e.test"), client); err != nil {
		t.Fatalf("tlsrpt.Post: %v", err)
	}

	out, errs, code := runTlsmail(t, nil, "", "report", "--days", "3", "--config", m.config)
	if code != 0 {
		t.Fatalf("report: %d %s", code, errs)
	}
	_, received, _ := strings.Cut(out, "TLS-RPT reports received")
	for _, org := range []string{"sender-one.test", "sender-two.test"} {
		if !regexp.MustCompile(org + `\s+e2e\.test no-policy-found\s+1 ok\s+1 failed`).MatchString(received) {
			t.Errorf("report lacks %s's report:\n%s", org, received)
		}
	}
	if strings.Contains(received, "evil.test") || strings.Contains(received, "elsewhere.test") {
		t.Errorf("a refused report was stored:\n%s", received)
	}
	m.waitLog(t, "tlsrpt: report received by HTTPS")

	out, _, _ = runTlsmail(t, nil, "", "dns", "--config", m.config, "e2e.test")
	if !strings.Contains(out, `"v=TLSRPTv1; rua=mailto:postmaster@e2e.test,https://mail.e2e.test/.well-known/tlsrpt"`) {
		t.Errorf("tlsmail dns does not publish the https rua:\n%s", out)
	}
}

// TestTLSRPTSenderPostsToSecondInstance: one tlsmail delivers to another
// (e2e.test, by the transport map), then `tlsmail queue tlsrpt` makes the
// day's report and, finding an https rua in _smtp._tls.e2e.test (a test
// DNS server), POSTs it to the second instance's [tlsrpt] receive_path,
// which stores it: `tlsmail report` there lists the sender's report.
func TestTLSRPTSenderPostsToSecondInstance(t *testing.T) {
	webAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	webPort := strings.Split(webAddr, ":")[1]
	recv := newMailServer(t, fmt.Sprintf("[web]\naddress = %q\n[tlsrpt]\nreceive_path = \"/.well-known/tlsrpt\"\n", webAddr))
	recv.start(t)
	dns := testpeer.StartDNS(t, `_smtp._tls.e2e.test. 60 IN TXT "v=TLSRPTv1; rua=https://localhost:`+webPort+`/.well-known/tlsrpt"`)
	send := newMailServerFor(t, `"sender.test"`, fmt.Sprintf("[outbound]\ndns_server = %q\nca_file = %q\n[transport]\n\"e2e.test\" = %q\n",
		dns.Addr, recv.ca, recv.addr["mx"]))
	send.start(t)
	if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "hello\n", "send", "--server", send.addr["submission"],
		"--cafile", send.ca, "--user", "demo", "--from", "demo@sender.test", "--to", "demo@e2e.test", "--subject", "tlsrpt-e2e"); code != 0 {
		t.Fatalf("send: %d %s", code, errs)
	}
	send.waitLog(t, "to=demo@e2e.test delay=")
	if line := logLine(send.log(), "to=demo@e2e.test "); !strings.Contains(line, "status=sent") {
		t.Fatalf("delivery to the second instance: %s", line)
	}
	out, errs, code := runTlsmail(t, nil, "", "queue", "tlsrpt", "--config", send.config)
	if code != 0 || !strings.Contains(out, "1 TLS reports sent") {
		t.Fatalf("queue tlsrpt: %d %q %q\nsender log:\n%s", code, out, errs, send.log())
	}
	recv.waitLog(t, "tlsrpt: report received by HTTPS")
	out, _, _ = runTlsmail(t, nil, "", "report", "--config", recv.config)
	_, received, _ := strings.Cut(out, "TLS-RPT reports received")
	if !regexp.MustCompile(`mail\.e2e\.test\s+e2e\.test no-policy-found\s+1 ok\s+0 failed`).MatchString(received) {
		t.Errorf("the receiving instance does not show the sender's report:\n%s", out)
	}
}
