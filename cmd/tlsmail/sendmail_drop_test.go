package main

import (
	"bytes"
	"github.com/tlsmail/tlsmail/internal/testpeer"
	"net/mail"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/tlsmail/tlsmail/internal/pickup"
)

// sendmailAsNobody runs sendmail in-process on a thread whose
// file-system uid is 65534, as a local user would (the thread ends with
// the goroutine).
func sendmailAsNobody(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	testpeer.RequireRoot(t, "acting as uid 65534")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no default accounts file
	var out, errb bytes.Buffer
	env := &cliEnv{name: "sendmail", stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		if err := syscall.Setfsuid(65534); err != nil {
			t.Error(err)
			done <- -1
			return
		}
		done <- runSendmail(env, args)
	}()
	return <-done, errb.String()
}

// serverConfig writes a server configuration (mode given) for a data
// directory (mode given) holding a mail drop.
func serverConfig(t *testing.T, cfgMode, dataMode os.FileMode) (file, data string) {
	t.Helper()
	top := t.TempDir()
	os.Chmod(filepath.Dir(top), 0o711)
	os.Chmod(top, 0o711)
	data = filepath.Join(top, "data")
	if err := os.MkdirAll(filepath.Join(data, "pickup"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(data, "pickup"), pickup.DirMode)
	os.Chmod(data, dataMode)
	file = filepath.Join(top, "tlsmail.toml")
	if err := os.WriteFile(file, []byte("hostname = \"mx.test\"\ndata_dir = \""+data+"\"\nlocal_domains = [\"mx.test\"]\n[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:2525\"\nmode = \"plain\"\nauth = \"none\"\n"), cfgMode); err != nil {
		t.Fatal(err)
	}
	return file, data
}

// TestSendmailAccountDoesNotNeedTheServerConfig: a user who cannot read
// the server's configuration still sends through an explicit accounts
// file (here one whose server is down: exit 75, the SMTP error), instead
// of failing with EX_CONFIG on the configuration before trying.
func TestSendmailAccountDoesNotNeedTheServerConfig(t *testing.T) {
	file, _ := serverConfig(t, 0o600, 0o711)
	accounts := filepath.Join(filepath.Dir(file), "send.toml")
	os.WriteFile(accounts, []byte("default = \"a\"\n[account.a]\nserver = \"127.0.0.1:1\"\ntls = \"starttls\"\nfrom = \"a@mx.test\"\n"), 0o644)
	code, errs := sendmailAsNobody(t, "Subject: x\n\nx\n", "-C", accounts, "--config", file, "b@mx.test")
	if code != exTempFail {
		t.Errorf("exit %d %q, want 75 from the unreachable server", code, errs)
	}
	if !strings.Contains(errs, "127.0.0.1:1") {
		t.Errorf("SMTP was not tried: %q", errs)
	}
}

// TestSendmailExplainsAnUnreachableDrop: without an account, a data
// directory that is not searchable (the default 0700) or a configuration
// this user cannot read is explained with the fix, not as "start tlsmail
// serve once".
func TestSendmailExplainsAnUnreachableDrop(t *testing.T) {
	file, _ := serverConfig(t, 0o644, 0o700)
	code, errs := sendmailAsNobody(t, "Subject: x\n\nx\n", "--config", file, "root")
	if code != exTempFail || !strings.Contains(errs, "chmod 711") || strings.Contains(errs, "start `tlsmail serve`") {
		t.Errorf("data directory 0700: exit %d %q, want 75 and the chmod 711 hint", code, errs)
	}
	file, _ = serverConfig(t, 0o600, 0o711)
	code, errs = sendmailAsNobody(t, "Subject: x\n\nx\n", "--config", file, "root")
	if code == exitOK || !strings.Contains(errs, "no local mail drop") || !strings.Contains(errs, "chmod 644") {
		t.Errorf("config 0600: exit %d %q, want the hint", code, errs)
	}
	// The summary names the configuration given, not the default one.
	if !strings.Contains(errs, "nowhere to send: no local mail drop ("+file+")") || strings.Contains(errs, defaultServerConfig) {
		t.Errorf("config 0600: %q, want the summary to name %s", errs, file)
	}
	// Readable and searchable: the drop takes it.
	file, data := serverConfig(t, 0o644, 0o711)
	if code, errs = sendmailAsNobody(t, "Subject: x\n\nx\n", "--config", file, "root"); code != exitOK {
		t.Errorf("reachable drop: exit %d %q", code, errs)
	}
	if names, _ := pickup.Names(filepath.Join(data, "pickup")); len(names) != 1 {
		t.Errorf("drop holds %v", names)
	}
}

// TestHeaderRecipientsTakesBareLocalNames: -t reads "To: root" and
// "To: Admin <root>" (cron, logwatch) as the local name, RFC 5322
// addresses as usual, and refuses what is neither instead of dropping it.
func TestHeaderRecipientsTakesBareLocalNames(t *testing.T) {
	for _, tc := range []struct {
		to   string
		want string
		bad  bool
	}{
		{"root", "root", false},
		{"Cron Daemon <root>", "root", false},
		{"root, alice@example.org", "root alice@example.org", false},
		{"Alice <alice@example.org>, bob@example.org", "alice@example.org bob@example.org", false},
		{"", "", false},
		{"root; DROP", "", true},
		{"two words", "", true},
	} {
		got, err := headerRecipients(mail.Header{"To": {tc.to}}, "To")
		if tc.bad {
			if err == nil {
				t.Errorf("To: %q: got %q, want an error", tc.to, got)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("To: %q: got %q, %v; want %q", tc.to, got, err, tc.want)
		}
	}
}
