package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestACMEPathToPassingDNSCheck is the README's ACME path with the real
// binary: `tlsmail serve` with [tls.acme] gets its certificates from
// Pebble, the records `tlsmail dns` prints are published (into a test DNS
// server), `tlsmail dns --check` passes (exit 0), and a drift (the
// _mta-sts id after a policy change) fails it, named.
func TestACMEPathToPassingDNSCheck(t *testing.T) {
	httpPort, webPort, smtpPort := testpeer.FreePort(t), testpeer.FreePort(t), testpeer.FreePort(t)
	dns := testpeer.StartDNS(t, "mx.example.test. 60 IN A 127.0.0.1", "mta-sts.example.test. 60 IN CNAME mx.example.test.")
	dns.Secure("_25._tcp.mx.example.test")
	pebble := testpeer.StartPebble(t, testpeer.PebbleOptions{HTTPPort: httpPort, TLSPort: webPort, DNS: dns.Addr})
	dir := t.TempDir()
	conf := filepath.Join(dir, "tlsmail.toml")
	text := fmt.Sprintf(`hostname = "mx.example.test"
data_dir = %q
local_domains = ["example.test"]
[[listener]]
name = "mx"
address = "127.0.0.1:%d"
[tls.acme]
email = "postmaster@example.test"
directory = %q
ca_file = %q
http_address = "127.0.0.1:%d"
tls_alpn_address = "127.0.0.1:%d"
[mta_sts]
mode = "enforce"
[web]
address = "127.0.0.1:%d"
`, dir, smtpPort, pebble.Directory, pebble.CAFile, httpPort, webPort, webPort)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	runToEnd(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"user", "add", "--config", conf, "bob"}, Stdin: strings.NewReader("bob's password\n")})
	srv := testpeer.Start(t, testpeer.Cmd{Path: tlsmailBin, Args: []string{"serve", "--config", conf}, ReadyLine: `msg=ready`})
	srv.WaitOutput(t, `msg="acme: certificate obtained" name=mx.example.test`, 3*time.Minute)
	srv.WaitOutput(t, `msg="acme: certificate obtained" name=mta-sts.example.test`, 3*time.Minute)

	out, err := exec.Command(tlsmailBin, "dns", "--json", "--config", conf, "example.test").Output()
	if err != nil {
		t.Fatalf("tlsmail dns --json: %v", err)
	}
	var plan struct {
		Records []struct{ Name, Type, Value, Kind string }
	}
	if err := json.Unmarshal(out, &plan); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	kinds := map[string]bool{}
	for _, r := range plan.Records {
		kinds[r.Kind] = true
		line := r.Name + " 60 IN " + r.Type + " " + r.Value
		if r.Type == "CNAME" || r.Kind == "mta-sts" {
			dns.Replace(t, line)
		} else {
			dns.Add(t, line)
		}
	}
	for _, k := range []string{"mx", "mta-sts", "tlsrpt", "tlsa-current", "tlsa-next", "caa", "spf", "dmarc"} {
		if !kinds[k] {
			t.Errorf("tlsmail dns printed no %s record:\n%s", k, out)
		}
	}
	check := func() (int, string) {
		cmd := exec.Command(tlsmailBin, "dns", "--check", "--config", conf, "--dns", dns.Addr, "example.test")
		b, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(b)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(b)
	}
	if code, out := check(); code != 0 || strings.Contains(out, "WRONG") || strings.Contains(out, "MISSING") {
		t.Fatalf("dns --check after publishing what dns printed: exit %d\n%s", code, out)
	}

	// Another tlsmail delivers to this one: it fetches the hosted
	// MTA-STS policy (enforce) and verifies the ACME certificate.
	issuers := filepath.Join(dir, "pebble-issuers.pem")
	if err := os.WriteFile(issuers, pebble.IssuerPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	sender := newMailServer(t, fmt.Sprintf(`
[outbound]
ca_file = %q
dns_server = %q
port = %d
mta_sts_port = %d
`, issuers, dns.Addr, smtpPort, webPort))
	sender.start(t)
	if out, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "over MTA-STS\n", "send", "--server", sender.addr["submission"],
		"--cafile", sender.ca, "--user", "demo", "--from", "demo@localhost", "--to", "bob@example.test", "--subject", "sts-enforce"); code != 0 {
		t.Fatalf("send: %d %s %s", code, out, errs)
	}
	waitForFile(t, filepath.Join(dir, "mail", "bob"), "Subject: sts-enforce")
	sender.waitLog(t, "to=bob@example.test delay=")
	line := logLine(sender.log(), "to=bob@example.test ")
	for _, want := range []string{`policy_source="mta-sts id=` + stsID(t, conf) + ` enforce"`, "effective=verify", "verified=true", "status=sent"} {
		if !strings.Contains(line, want) {
			t.Errorf("the sender's delivery line lacks %q:\n%s", want, line)
		}
	}

	dns.Replace(t, `_mta-sts.example.test. 60 IN TXT "v=STSv1; id=old"`)
	if code, out := check(); code != 1 || !strings.Contains(out, "WRONG    _mta-sts.example.test. TXT") || !strings.Contains(out, "id=old, but the policy served now has id=") {
		t.Fatalf("dns --check with an old _mta-sts id: exit %d\n%s", code, out)
	}
}

// stsID is the MTA-STS id `tlsmail dns` prints for the configuration.
func stsID(t *testing.T, conf string) string {
	t.Helper()
	out, err := exec.Command(tlsmailBin, "dns", "--config", conf, "example.test").Output()
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(out), `"v=STSv1; id=`)
	if !ok {
		t.Fatalf("no _mta-sts record:\n%s", out)
	}
	id, _, _ := strings.Cut(after, `"`)
	return id
}
