package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestStatusCommand: `tlsmail status` asks the running server over its
// control socket: version, listeners with their modes, the certificate in
// use with its days left, the queue (one deferred message) and the record
// store, in text and JSON; exit 1 with one line when no server runs (and
// with --json one object saying "running": false), exit 2 when a
// certificate has less than 7 days left.
func TestStatusCommand(t *testing.T) {
	deadPort := testpeer.FreePort(t)
	m := newMailServer(t, fmt.Sprintf("[queue]\nfirst_retry = \"1h\"\n[transport]\n\"dead.test\" = \"127.0.0.1:%d\"\n", deadPort))

	out, errs, code := runTlsmail(t, nil, "", "status", "--config", m.config)
	if code != 1 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "no server is running") || out != "" {
		t.Fatalf("status without a server: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	out, _, code = runTlsmail(t, nil, "", "status", "--json", "--config", m.config)
	var down struct {
		Running *bool  `json:"running"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &down); err != nil || code != 1 || down.Running == nil || *down.Running || !strings.Contains(down.Error, "no server is running") {
		t.Fatalf("status --json without a server: exit %d, %v, %+v\n%s", code, err, down, out)
	}

	m.start(t)
	if _, errs, code := runTlsmail(t, []string{"TLSMAIL_PASSWORD=" + demoPassword}, "hello\n", "send", "--server", m.addr["submission"],
		"--cafile", m.ca, "--user", "demo", "--from", "demo@localhost", "--to", "user@dead.test", "--subject", "status-e2e"); code != 0 {
		t.Fatalf("send: %d %s", code, errs)
	}
	m.waitLog(t, "to=user@dead.test delay=")

	out, errs, code = runTlsmail(t, nil, "", "status", "--config", m.config)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errs)
	}
	for _, re := range []string{`(?m)^tlsmail \S.*, pid \d+, up \S+ \(since \d{4}-`,
		`(?m)^  mx +` + regexp.QuoteMeta(m.addr["mx"]) + ` +smtp +starttls$`,
		`(?m)^  smtps +` + regexp.QuoteMeta(m.addr["smtps"]) + ` +smtp +implicit$`,
		`(?m)^  pop3s +` + regexp.QuoteMeta(m.addr["pop3s"]) + ` +pop3 +implicit$`,
		`(?m)^  localhost +82[45] days left +\(until \d{4}-\d\d-\d\d\) +file /\S+/tls/server\.pem$`,
		`(?m)^queue: 0 active, 1 deferred, 0 held, 0 corrupt; oldest \S+ old$`,
		`(?m)^records: on, /\S+/records\.db \(\d+ written, 0 dropped since start\)$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status lacks %s:\n%s", re, out)
		}
	}
	t.Logf("tlsmail status:\n%s", out)

	out, _, code = runTlsmail(t, nil, "", "status", "--json", "--config", m.config)
	var st struct {
		Running   bool   `json:"running"`
		Version   string `json:"version"`
		PID       int    `json:"pid"`
		Listeners []struct {
			Name, Address, Service, Mode string
		} `json:"listeners"`
		Certificates []struct {
			Name     string  `json:"name"`
			Source   string  `json:"source"`
			DaysLeft float64 `json:"days_left"`
		} `json:"certificates"`
		Queue struct {
			Active, Deferred, Held, Corrupt int
			OldestAgeSeconds                *int64 `json:"oldest_age_seconds"`
		} `json:"queue"`
		Records struct {
			Enabled bool   `json:"enabled"`
			Written uint64 `json:"written"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	if !st.Running || st.Version == "" || st.PID == 0 || len(st.Listeners) != 5 || st.Listeners[0].Name != "mx" || st.Listeners[0].Mode != "starttls" ||
		len(st.Certificates) != 1 || st.Certificates[0].Source != "file" || st.Certificates[0].DaysLeft < 800 ||
		st.Queue.Deferred != 1 || st.Queue.Active != 0 || st.Queue.OldestAgeSeconds == nil || !st.Records.Enabled {
		t.Errorf("status --json: %+v\n%s", st, out)
	}

	// A certificate with 3 days left: exit 2, and the line says so.
	m.proc.Stop()
	os.Remove(filepath.Join(m.dir, "tls", "server.pem"))
	os.Remove(filepath.Join(m.dir, "tls", "server.key"))
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(m.dir, "tls"), "--host", "localhost", "--days", "3", "--out", filepath.Join(m.dir, "tls", "server"))
	m.start(t)
	out, _, code = runTlsmail(t, nil, "", "status", "--config", m.config)
	if code != 2 || !regexp.MustCompile(`(?m)^  localhost +[23] days left .*EXPIRES SOON$`).MatchString(out) {
		t.Errorf("status with a 3-day certificate: exit %d\n%s", code, out)
	}
}
