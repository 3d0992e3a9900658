package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSendmailPickupSurvivesStoppedServer: with the server stopped,
// `sendmail -t` (no accounts file: the local mail drop) and a sendmail
// whose account's server is down (the fallback) both exit 0 and leave the
// message in DATA/pickup; `sendmail -bp` lists them; started again, the
// server collects both into the Maildir and removes the files.
func TestSendmailPickupSurvivesStoppedServer(t *testing.T) {
	m := newMailServer(t, "")
	m.start(t) // makes DATA/pickup (1733)
	drop := filepath.Join(m.dir, "pickup")
	if st, err := os.Stat(drop); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o733 {
		t.Fatalf("mail drop %s: %v %v, want drwx-wx-wt", drop, st.Mode(), err)
	}
	m.proc.Stop()

	home := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "HOME=" + home, "TLSMAIL_ACCOUNT="}
	// 1. No accounts file: the mail drop, found through $TLSMAIL_CONFIG.
	out, errs, code := runTlsmail(t, append(env, "TLSMAIL_CONFIG="+m.config), "To: demo@localhost\nSubject: pickup-cron\n\ncron output\n", "sendmail", "-t")
	if code != 0 || out != "" || errs != "" {
		t.Fatalf("sendmail -t into the mail drop: exit %d %q %q (must be silent on success)", code, out, errs)
	}
	// 2. An account whose server is down: SMTP fails (75), the drop takes it.
	cfgDir := filepath.Join(home, "config", "tlsmail")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "send.toml"), []byte(fmt.Sprintf(`default = "local"
[account.local]
server = %q
tls = "starttls"
from = "demo@localhost"
cafile = %q
`, m.addr["submission"], m.ca)), 0o600)
	_, errs, code = runTlsmail(t, env, "Subject: pickup-fallback\n\nafter a refused connection\n", "sendmail", "--config", m.config, "demo@localhost")
	if code != 0 || !strings.Contains(errs, "waits in the local mail drop") {
		t.Fatalf("sendmail with the server down: exit %d %q", code, errs)
	}
	// Without a local server to fall back to, that is still EX_TEMPFAIL.
	if _, errs, code := runTlsmail(t, env, "Subject: lost\n\nx\n", "sendmail", "demo@localhost"); code != 75 {
		t.Errorf("no mail drop, server down: exit %d %q, want 75", code, errs)
	}
	out, errs, code = runTlsmail(t, env, "", "sendmail", "-bp", "--config", m.config)
	if code != 0 || strings.Count(out, "demo@localhost") < 2 || !strings.Contains(out, "Mail drop") {
		t.Fatalf("sendmail -bp: exit %d %s\n%s", code, errs, out)
	}

	m.start(t)
	cron := m.findMail(t, "demo", "Subject: pickup-cron")
	if uid := os.Getuid(); !strings.Contains(cron, fmt.Sprintf("(tlsmail, from userid %d)", uid)) || !strings.Contains(cron, "Return-Path: <") {
		t.Errorf("collected message lacks the Received header naming uid %d:\n%s", uid, cron)
	}
	m.findMail(t, "demo", "Subject: pickup-fallback")
	deadline := time.Now().Add(30 * time.Second)
	for {
		names, _ := filepath.Glob(filepath.Join(drop, "*"))
		if len(names) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mail drop still holds %v after delivery", names)
		}
		waitABit()
	}
	out, _, _ = runTlsmail(t, env, "", "sendmail", "-bp", "--config", m.config)
	if !strings.Contains(out, "  empty") {
		t.Errorf("sendmail -bp after collection:\n%s", out)
	}
}
