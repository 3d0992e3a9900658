package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

func logConfig(format, output string) *config.Config {
	c := config.Dev(os.TempDir())
	c.LogFormat, c.LogOutput = format, output
	return c
}

func TestJSONLogLinesParse(t *testing.T) {
	var buf bytes.Buffer
	log, closer, err := NewLogger(logConfig("json", "stderr"), &buf, LogTargets{})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	log.Info("session", "listener", "mx", "client", "192.0.2.7", "messages", 2)
	log.With("id", "1A2B").Warn("delivery", "status", "deferred", "reply", "451 4.7.5 \"quoted\"\nsecond line")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["msg"] != "session" || first["client"] != "192.0.2.7" || first["messages"] != 2.0 || first["level"] != "INFO" {
		t.Errorf("line 1 %q: %v %v", lines[0], err, first)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil || second["id"] != "1A2B" || second["reply"] != "451 4.7.5 \"quoted\"\nsecond line" || second["level"] != "WARN" {
		t.Errorf("line 2 %q: %v %v", lines[1], err, second)
	}
}

// listenDgram listens on a Unix datagram socket in a temporary directory,
// as syslogd and journald do.
func listenDgram(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	return c, path
}

func TestSyslogGetsOneLinePerRecordWithPriority(t *testing.T) {
	conn, path := listenDgram(t)
	log, closer, err := NewLogger(logConfig("text", "syslog"), io.Discard, LogTargets{Syslog: path})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	log.Info("message accepted", "id", "1A2B", "client", "192.0.2.7")
	log.Error("listener stopped", "listener", "mx")
	log.Debug("not at info level")
	buf := make([]byte, 65536)
	for _, want := range []string{
		// facility mail (2) * 8 + info (6) = 22; + err (3) = 19
		"<22>",
		"<19>",
	} {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:n])
		if !strings.HasPrefix(got, want) || !strings.Contains(got, fmt.Sprintf(" tlsmail[%d]: ", os.Getpid())) {
			t.Errorf("syslog datagram %q: want priority %s and tag tlsmail[PID]", got, want)
		}
		if want == "<22>" && !strings.HasSuffix(strings.TrimSpace(got), `: msg="message accepted" id=1A2B client=192.0.2.7`) {
			t.Errorf("syslog line %q: want the text line without time and level", got)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := conn.Read(buf); err == nil {
		t.Errorf("a debug record reached syslog at level info: %q", buf[:n])
	}
}

// parseJournal decodes one native-protocol entry.
func parseJournal(t *testing.T, p []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	r := bufio.NewReader(bytes.NewReader(p))
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return out
		}
		if err != nil {
			t.Fatalf("journal entry %q: %v", p, err)
		}
		line = strings.TrimSuffix(line, "\n")
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
			continue
		}
		var n uint64
		if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
			t.Fatal(err)
		}
		v := make([]byte, n+1)
		if _, err := io.ReadFull(r, v); err != nil || v[n] != '\n' {
			t.Fatalf("binary field %s: %v %q", line, err, v)
		}
		out[line] = string(v[:n])
	}
}

func TestJournaldNativeProtocolWithFields(t *testing.T) {
	conn, path := listenDgram(t)
	log, closer, err := NewLogger(logConfig("text", "journald"), io.Discard, LogTargets{Journal: path})
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	log.With("listener", "submission").Warn("session", "client", "192.0.2.7", "tls-version", "TLSv1.3", "reply", "line one\nline two",
		slog.Group("peer", "cn", "mx.example.net"))
	buf, oob := make([]byte, 1<<16), make([]byte, 1024)
	n, _, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	e := parseJournal(t, buf[:n])
	want := map[string]string{
		"MESSAGE":           `msg=session listener=submission client=192.0.2.7 tls-version=TLSv1.3 reply="line one\nline two" peer.cn=mx.example.net`,
		"PRIORITY":          "4",
		"SYSLOG_IDENTIFIER": "tlsmail",
		"SYSLOG_FACILITY":   "2",
		"LISTENER":          "submission",
		"CLIENT":            "192.0.2.7",
		"TLS_VERSION":       "TLSv1.3",
		"REPLY":             "line one\nline two", // binary-safe form
		"PEER_CN":           "mx.example.net",
	}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("journal field %s = %q, want %q", k, e[k], v)
		}
	}
	// An entry too big for one datagram arrives as a sealed memfd.
	big := strings.Repeat("x", 4<<20)
	log.Info("big", "data", big)
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || oobn == 0 {
		t.Fatalf("a 4 MB entry came as %d bytes and %d control bytes; want a file descriptor", n, oobn)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatal(err)
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "memfd")
	defer f.Close()
	content, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<30)) // journald reads from the start, as here
	if e := parseJournal(t, content); e["DATA"] != big || e["PRIORITY"] != "6" {
		t.Errorf("memfd entry: DATA %d bytes, PRIORITY %q", len(e["DATA"]), e["PRIORITY"])
	}
}

func TestLogOutputWithoutItsSocketIsAConfigError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nothing")
	for _, out := range []string{"syslog", "journald"} {
		_, _, err := NewLogger(logConfig("text", out), io.Discard, LogTargets{Syslog: missing, Journal: missing})
		if _, ok := err.(*config.Error); !ok || !strings.Contains(err.Error(), "log_output "+out) {
			t.Errorf("%s to a missing socket: %v; want a config error naming log_output", out, err)
		}
	}
}

// TestRealJournald runs systemd-journald itself in a namespace of its own
// (no systemd as PID 1 needed), logs to its native socket and to its
// syslog socket, and reads both entries back with journalctl.
func TestRealJournald(t *testing.T) {
	testpeer.RequireRoot(t, "systemd-journald writes its journal under /run and /var")
	jd := "/lib/systemd/systemd-journald"
	if _, err := os.Stat(jd); err != nil {
		testpeer.Unavailable(t, "systemd-journald: %v", err)
	}
	journalctl := testpeer.Require(t, "journalctl")
	ns := fmt.Sprintf("tlsmailtest%d", os.Getpid())
	t.Cleanup(func() {
		os.RemoveAll("/run/systemd/journal." + ns)
		for _, pat := range []string{"/run/log/journal/*." + ns, "/var/log/journal/*." + ns} {
			m, _ := filepath.Glob(pat)
			for _, d := range m {
				os.RemoveAll(d)
			}
		}
	})
	testpeer.Start(t, testpeer.Cmd{Path: jd, Args: []string{ns}})
	sock := "/run/systemd/journal." + ns + "/socket"
	devlog := "/run/systemd/journal." + ns + "/dev-log"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling for a file, bounded
		_, e1 := os.Stat(sock)
		_, e2 := os.Stat(devlog)
		if e1 == nil && e2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd-journald made no %s", sock)
		}
	}
	native, c1, err := NewLogger(logConfig("text", "journald"), io.Discard, LogTargets{Journal: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	viaSyslog, c2, err := NewLogger(logConfig("json", "syslog"), io.Discard, LogTargets{Syslog: devlog})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	native.Info("session", "listener", "mx", "client", "192.0.2.77")
	viaSyslog.Warn("syslog session", "client", "192.0.2.78")
	var entries []map[string]any
	for deadline := time.Now().Add(30 * time.Second); len(entries) < 2; time.Sleep(50 * time.Millisecond) { // journald writes behind; bounded
		if time.Now().After(deadline) {
			t.Fatalf("journalctl --namespace=%s shows %d of 2 entries: %v", ns, len(entries), entries)
		}
		out, err := exec.Command(journalctl, "--namespace="+ns, "-o", "json", "--no-pager", "SYSLOG_IDENTIFIER=tlsmail").Output()
		if err != nil {
			continue
		}
		entries = nil
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			var e map[string]any
			if json.Unmarshal([]byte(l), &e) == nil {
				entries = append(entries, e)
			}
		}
	}
	if e := entries[0]; e["MESSAGE"] != "msg=session listener=mx client=192.0.2.77" || e["CLIENT"] != "192.0.2.77" || e["PRIORITY"] != "6" {
		t.Errorf("native entry: %v", e)
	}
	if e := entries[1]; e["MESSAGE"] != `{"msg":"syslog session","client":"192.0.2.78"}` || e["PRIORITY"] != "4" || e["SYSLOG_FACILITY"] != "2" {
		t.Errorf("syslog entry: %v", e)
	}
}
