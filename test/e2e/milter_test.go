package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

const gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// milterConf is a [[milter]] table.
func milterConf(name, address, def string) string {
	return fmt.Sprintf("[[milter]]\nname = %q\naddress = %q\ndefault_action = %q\ncommand_timeout = \"120s\"\n", name, address, def)
}

// TestRspamdMilter: rspamd (its proxy in milter mode) on the MX port: a
// GTUBE message is refused at the end of DATA with rspamd's reply; a
// clean message is delivered with rspamd's headers; with rspamd stopped,
// default_action tempfail gives 451 and queues nothing, accept delivers.
func TestRspamdMilter(t *testing.T) {
	r := testpeer.StartRspamd(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	m := newMailServer(t, fmt.Sprintf("metrics_address = %q\n", metricsAddr)+milterConf("rspamd", "inet:"+r.Milter, "tempfail"))
	m.start(t)
	acc := newMailServer(t, milterConf("rspamd", "inet:"+r.Milter, "accept"))
	acc.start(t)

	out := swaks(t, false, "--server", m.addr["mx"], "--from", "a@example.org", "--to", "demo@localhost",
		"--header", "Subject: gtube", "--body", gtube)
	if !regexp.MustCompile(`<\*\* 554 5\.7\.1 Gtube pattern`).MatchString(out) {
		t.Fatalf("GTUBE not refused with rspamd's reply:\n%s\nserver log:\n%s", out, m.log())
	}
	if !strings.Contains(m.log(), "milter=rspamd:reject") {
		t.Errorf("the refusal is not logged with the milter:\n%s", m.log())
	}

	swaks(t, true, "--server", m.addr["mx"], "--from", "a@example.org", "--to", "demo@localhost",
		"--header", "Subject: rspamd-clean", "--body", "An ordinary message.")
	msg := m.findMail(t, "demo", "Subject: rspamd-clean")
	for _, want := range []string{"X-Spamd-Result: default: False", "X-Rspamd-Server: ", "X-Rspamd-Queue-Id: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("delivered message lacks %q:\n%s", want, msg)
		}
	}
	if !strings.Contains(m.log(), "milter=rspamd:") || !strings.Contains(m.log(), "rspamd:add_header") {
		t.Errorf("accepted line lacks the milter actions:\n%s", m.log())
	}

	r.Proc.Stop()
	out = swaks(t, false, "--server", m.addr["mx"], "--from", "a@example.org", "--to", "demo@localhost",
		"--header", "Subject: rspamd-down", "--body", "kept by the client")
	if !strings.Contains(out, "<** 451 4.7.1") {
		t.Fatalf("rspamd down, tempfail: want 451 4.7.1:\n%s", out)
	}
	if q := tlsmail(t, "queue", "list", "--config", m.config); strings.Contains(q, "rspamd-down") || strings.Contains(q, "a@example.org") {
		t.Errorf("something was queued:\n%s", q)
	}
	if !strings.Contains(m.log(), `msg="milter failed" milter=rspamd`) {
		t.Errorf("the failure is not logged with the milter's name:\n%s", m.log())
	}
	swaks(t, true, "--server", acc.addr["mx"], "--from", "a@example.org", "--to", "demo@localhost",
		"--header", "Subject: rspamd-down-accept", "--body", "delivered without rspamd")
	if msg := acc.findMail(t, "demo", "Subject: rspamd-down-accept"); strings.Contains(msg, "X-Rspamd-Server") {
		t.Errorf("rspamd headers on a message rspamd never saw:\n%s", msg)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tlsmail_milter_actions_total{milter="rspamd",action="reject"} 1`,
		`tlsmail_milter_actions_total{milter="rspamd",action="add_header"}`, `tlsmail_milter_actions_total{milter="rspamd",action="error"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	for _, s := range []*mailServer{m, acc} {
		if strings.Count(s.log(), "msg=\"milter failed\"") != 1 {
			t.Errorf("want one failure line per session:\n%s", s.log())
		}
	}
}

// TestOpenDKIMMilterSigns: OpenDKIM as a signing milter on the submission
// port: the delivered message carries its DKIM-Signature, which OpenDKIM
// (verifying, with the public key given as a test key) finds valid.
func TestOpenDKIMMilterSigns(t *testing.T) {
	odk := testpeer.Require(t, "opendkim")
	genkey := testpeer.Require(t, "opendkim-genkey")
	dir := t.TempDir()
	testpeer.Output(t, genkey, "-D", dir, "-d", "example.org", "-s", "odk", "-b", "2048")
	txt, err := os.ReadFile(filepath.Join(dir, "odk.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// odk._domainkey IN TXT ( "v=DKIM1; h=sha256; k=rsa; " "p=..." ) ; comment
	var rec strings.Builder
	for _, q := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(string(txt), -1) {
		rec.WriteString(q[1])
	}
	port := testpeer.FreePort(t)
	conf := filepath.Join(dir, "opendkim.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`Mode s
Syslog no
LogWhy yes
Background no
Domain example.org
Selector odk
KeyFile %s
Socket inet:%d@127.0.0.1
PidFile %s
Canonicalization relaxed/simple
InternalHosts 127.0.0.1
RequireSafeKeys false
`, filepath.Join(dir, "odk.private"), port, filepath.Join(dir, "opendkim.pid"))), 0o600)
	testpeer.Start(t, testpeer.Cmd{Path: odk, Args: []string{"-f", "-x", conf}, ReadyAddr: fmt.Sprintf("127.0.0.1:%d", port)})

	m := newMailServer(t, milterConf("opendkim", fmt.Sprintf("inet:127.0.0.1:%d", port), "tempfail")+"listeners = [\"submission\"]\n")
	m.start(t)
	if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "signed by OpenDKIM\n", "send",
		"--server", m.addr["submission"], "--tls", "starttls", "--cafile", m.ca, "--user", "demo",
		"--from", "demo@example.org", "--to", "demo@localhost", "--subject", "opendkim-milter"); code != 0 {
		t.Fatalf("send: exit %d %s", code, errs)
	}
	msg := m.findMail(t, "demo", "Subject: opendkim-milter")
	if !strings.Contains(msg, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=example.org;") {
		t.Fatalf("no OpenDKIM signature:\n%s\nserver log:\n%s", msg, m.log())
	}
	if !strings.Contains(m.log(), "opendkim:insert_header") && !strings.Contains(m.log(), "opendkim:add_header") {
		t.Errorf("the signature is not logged as a milter action:\n%s", m.log())
	}
	keys, vconf, file := filepath.Join(dir, "keys"), filepath.Join(dir, "verify.conf"), filepath.Join(dir, "msg.eml")
	os.WriteFile(keys, []byte("odk._domainkey.example.org "+rec.String()+"\n"), 0o600)
	os.WriteFile(vconf, []byte("Mode v\nSyslog no\nAlwaysAddARHeader yes\nTestPublicKeys "+keys+"\n"), 0o600)
	os.WriteFile(file, []byte(msg), 0o600)
	res, err := exec.Command(odk, "-x", vconf, "-vv", "-t", file).CombinedOutput()
	if err != nil || !strings.Contains(string(res), "dkim=pass") {
		t.Fatalf("OpenDKIM verifying the delivered copy: %v\n%s\n%s", err, res, msg)
	}
}
