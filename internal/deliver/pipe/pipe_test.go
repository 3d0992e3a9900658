package pipe

import (
	"context"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

const message = "Subject: hello\r\nFrom: <a@example.net>\r\n\r\nbody line\r\n"

func envelope() *queue.Envelope {
	return &queue.Envelope{ID: "1A2B", From: "a@example.net", Received: time.Now(),
		Recipients: []queue.Recipient{{Addr: "bob+lists@example.org", Local: "bob", ORcpt: "rfc822;Bob+2BLists@example.org"}}}
}

func open() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(message)), nil }

// workDir is a temp dir the command's user can write: as root the
// commands run as nobody.
func workDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// agent runs cmd as nobody when the test runs as root.
func agent(t *testing.T, cmd string) *Agent {
	t.Helper()
	a := &Agent{Command: cmd, Hostname: "mx.example.org", Timeout: time.Minute}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		a.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return a
}

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func deliver(t *testing.T, a *Agent) queue.Outcome {
	t.Helper()
	out := a.Deliver(context.Background(), envelope(), []int{0}, open)
	if len(out) != 1 || out[0].Rcpt != 0 {
		t.Fatalf("outcomes %+v", out)
	}
	return out[0]
}

func TestArgv(t *testing.T) {
	for cmd, want := range map[string][]string{
		"/usr/bin/procmail -m /etc/procmailrc": {"/usr/bin/procmail", "-m", "/etc/procmailrc"},
		"/usr/bin/maildrop  -d bob":            {"/usr/bin/maildrop", "-d", "bob"},
		"cat > /tmp/x":                         {"/bin/sh", "-c", "cat > /tmp/x"},
		"/bin/x $RECIPIENT":                    {"/bin/sh", "-c", "/bin/x $RECIPIENT"},
	} {
		if got := (&Agent{Command: cmd}).Argv(); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: argv %q, want %q", cmd, got, want)
		}
	}
}

// Procmail from a tiny rc file stores the message in a Maildir, with our
// Return-Path and Delivered-To on top.
func TestProcmailIntoMaildir(t *testing.T) {
	procmail := testpeer.Require(t, "procmail")
	dir := workDir(t)
	// procmail refuses an rc file in a world-writable directory.
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(etc, "procmailrc")
	md := filepath.Join(dir, "Maildir") + "/"
	if err := os.WriteFile(rc, []byte("LOGFILE="+dir+"/procmail.log\n:0\n"+md+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := deliver(t, agent(t, procmail+" -m "+rc))
	if !o.Delivered || o.Status.Permanent() {
		t.Fatalf("outcome %+v", o)
	}
	files, _ := filepath.Glob(md + "new/*")
	if len(files) != 1 {
		t.Fatalf("Maildir new/ has %q", files)
	}
	b, _ := os.ReadFile(files[0])
	got := string(b)
	for _, want := range []string{"Return-Path: <a@example.net>\n", "Delivered-To: bob+lists@example.org\n", "Subject: hello\n", "\nbody line\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("stored message lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\r") {
		t.Errorf("stored message has CR:\n%q", got)
	}
}

// maildrop with a filter file stores the message in a Maildir; its
// "owned by the wrong user" refusal is EX_TEMPFAIL, tried again.
func TestMaildropIntoMaildir(t *testing.T) {
	maildrop := testpeer.Require(t, "maildrop")
	dir := workDir(t)
	a := agent(t, maildrop+" "+filepath.Join(dir, "filter"))
	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "filter"), []byte("to \""+md+"/\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if a.Credential != nil { // the filter file is owned by someone else: maildrop says 75
		o := deliver(t, a)
		if o.Delivered || !o.Status.Temporary || o.Status.Reply() != "451 4.3.0 temporary failure" || !strings.Contains(o.Status.Detail, "mailfilter file is owned by the wrong user") {
			t.Fatalf("filter owned by root: %+v", o)
		}
		for _, p := range []string{filepath.Join(dir, "filter"), md, filepath.Join(md, "cur"), filepath.Join(md, "new"), filepath.Join(md, "tmp")} {
			if err := os.Chown(p, int(a.Credential.Uid), int(a.Credential.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if o := deliver(t, a); !o.Delivered {
		t.Fatalf("outcome %+v", o)
	}
	files, _ := filepath.Glob(filepath.Join(md, "new", "*"))
	if len(files) != 1 {
		t.Fatalf("Maildir new/ has %q", files)
	}
	b, _ := os.ReadFile(files[0])
	if got := string(b); !strings.HasPrefix(got, "Return-Path: <a@example.net>\nDelivered-To: bob+lists@example.org\n") || !strings.Contains(got, "\nbody line\n") {
		t.Errorf("stored message:\n%s", got)
	}
}

// The envelope reaches the command in Postfix's and qmail's variables,
// and nothing of tlsmail's own environment does.
func TestEnvironment(t *testing.T) {
	t.Setenv("TLSMAIL_SECRET", "do-not-leak")
	dir := workDir(t)
	out := filepath.Join(dir, "env")
	s := script(t, dir, "env.sh", "cat > /dev/null; env > "+out+"\nid -u >> "+out+"\n")
	if o := deliver(t, agent(t, s)); !o.Delivered {
		t.Fatalf("outcome %+v", o)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"SENDER=a@example.net", "RECIPIENT=bob+lists@example.org", "USER=bob", "EXTENSION=lists",
		"DOMAIN=example.org", "LOCAL=bob+lists", "ORIGINAL_RECIPIENT=Bob+Lists@example.org",
		"HOST=example.org", "EXT=lists", "RPLINE=Return-Path: <a@example.net>", "DTLINE=Delivered-To: bob+lists@example.org",
	} {
		if !strings.Contains(got, "\n"+want+"\n") && !strings.HasPrefix(got, want+"\n") {
			t.Errorf("environment lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "do-not-leak") {
		t.Errorf("tlsmail's environment leaked:\n%s", got)
	}
	if os.Geteuid() == 0 && strings.HasSuffix(got, "\n0\n") {
		t.Errorf("the command ran as root:\n%s", got)
	}
}

// Exit 75 defers; the same command delivers on the retry.
func TestTempfailThenDelivered(t *testing.T) {
	dir := workDir(t)
	mark := filepath.Join(dir, "tried")
	s := script(t, dir, "flaky.sh", "cat > /dev/null\nif [ ! -e "+mark+" ]; then touch "+mark+"; echo 'mailbox locked, try later' >&2; exit 75; fi\nexit 0\n")
	a := agent(t, s)
	o := deliver(t, a)
	if o.Delivered || !o.Status.Temporary || o.Status.Reply() != "451 4.3.0 temporary failure" || o.Status.Detail != "mailbox locked, try later" {
		t.Fatalf("first try: %+v", o)
	}
	if o = deliver(t, a); !o.Delivered {
		t.Fatalf("retry: %+v", o)
	}
}

// Exit 67 (EX_NOUSER) fails for good with 5.1.1; 77 gives 5.7.1; 1
// gives 5.3.0. The command's first line is the status's Detail only: the
// public reply names no path, absolute (/etc/secret/…), home-relative
// (~/…) or relative (lists/…).
func TestPermanentFailures(t *testing.T) {
	dir := workDir(t)
	for _, c := range []struct {
		code int
		want string
	}{{67, "550 5.1.1 user unknown"}, {77, "550 5.7.1 permission denied"}, {1, "554 5.3.0 command died with status 1"}} {
		const line = "no such list: /etc/secret/lists.rc is missing, nor ~/lists/x.rc or lists/y.rc"
		s := script(t, dir, "fail"+strconv.Itoa(c.code)+".sh", "cat > /dev/null\necho\necho '"+line+"'\necho second line\nexit "+strconv.Itoa(c.code)+"\n")
		o := deliver(t, agent(t, s))
		if o.Delivered || !o.Status.Permanent() || o.Status.Reply() != c.want || o.Status.Detail != line {
			t.Errorf("exit %d: %+v, want %q", c.code, o, c.want)
		}
		if pub := o.Status.Reply(); strings.Contains(pub, "/") {
			t.Errorf("exit %d: public reply names a path: %q", c.code, pub)
		}
	}
}

// A command killed by a signal is tried again.
func TestSignal(t *testing.T) {
	dir := workDir(t)
	s := script(t, dir, "sig.sh", "kill -TERM $$\n")
	o := deliver(t, agent(t, s))
	if o.Delivered || !o.Status.Temporary || o.Status.Reply() != "451 4.3.0 command died with signal 15" {
		t.Fatalf("%+v", o)
	}
}

// A command that hangs is killed at the time limit, with its children,
// and tried again later.
func TestTimeoutKillsGroup(t *testing.T) {
	dir := workDir(t)
	pidFile := filepath.Join(dir, "child")
	s := script(t, dir, "hang.sh", "sleep 3600 &\necho $! > "+pidFile+"\nwait\n")
	a := agent(t, s)
	a.Timeout = time.Second
	start := time.Now()
	o := deliver(t, a)
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %s with a 1s limit", el)
	}
	if o.Delivered || !o.Status.Temporary || o.Status.Reply() != "451 4.3.0 command time limit exceeded" {
		t.Fatalf("%+v", o)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The child is gone, or a zombie waiting for init to reap it:
	// either way, dead. Bounded wait: SIGKILL is delivered at once but
	// the state shows up asynchronously.
	for i := 0; ; i++ {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if i == 200 {
			t.Fatalf("the command's child %d still runs: %s", pid, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// As root with no user for commands, nothing runs.
func TestRefusesRoot(t *testing.T) {
	testpeer.RequireRoot(t, "the refusal is about root")
	dir := workDir(t)
	mark := filepath.Join(dir, "ran")
	a := &Agent{Command: script(t, dir, "ran.sh", "touch "+mark+"\n")}
	o := deliver(t, a)
	if o.Delivered || !o.Status.Temporary || o.Status.Enhanced != "4.3.5" {
		t.Fatalf("%+v", o)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("the command ran as root")
	}
}

// A command with shell metacharacters runs through /bin/sh -c, so a
// redirection works as written.
func TestShellCommand(t *testing.T) {
	dir := workDir(t)
	out := filepath.Join(dir, "copy")
	if o := deliver(t, agent(t, "/bin/cat > "+out+" && echo ok")); !o.Delivered {
		t.Fatalf("%+v", o)
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.HasPrefix(string(b), "Return-Path: <a@example.net>\nDelivered-To: bob+lists@example.org\nSubject: hello\n") {
		t.Fatalf("copy %q %v", b, err)
	}
}
