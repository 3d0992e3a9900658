package testpeer

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"testing"
	"time"
)

// Rspamd is a private rspamd whose proxy worker speaks the milter
// protocol (self-scanning, no separate normal worker, no redis).
type Rspamd struct {
	// Milter is the proxy's loopback address, host:port.
	Milter string
	// Proc is the running rspamd; Stop ends it by PID.
	Proc *Proc
}

// StartRspamd runs the Debian rspamd from a private configuration (the
// stock rules under /etc/rspamd, our own rspamd.conf: logging to the
// console, the proxy worker in milter mode on a free loopback port,
// extended spam headers on every message, DNS pointed at a closed
// loopback port so nothing leaves the machine, no hyperscan and a short
// public-suffix list, so it starts in seconds). It is ready when the
// proxy worker has started and its port accepts connections, and stopped by PID when the test ends.
func StartRspamd(t testing.TB) *Rspamd {
	t.Helper()
	bin := Require(t, "rspamd")
	dir := t.TempDir()
	for _, d := range []string{"local.d", "override.d", "run", "db", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	conf := fmt.Sprintf(`.include "$CONFDIR/common.conf"
options {
    pidfile = "$RUNDIR/rspamd.pid";
    filters = "chartable,dkim,regexp";
    cache_file = "$DBDIR/symbols.cache";
    dynamic_conf = "$DBDIR/rspamd_dynamic";
    history_file = "$DBDIR/rspamd.history";
    control_socket = "$DBDIR/rspamd.sock mode=0600";
    hs_cache_dir = "$DBDIR/";
    tempdir = "$DBDIR";
    url_tld = "$DBDIR/tld.dat";
    disable_hyperscan = true;
    task_timeout = 20s;
    dns { nameserver = ["127.0.0.1:1"]; timeout = 1s; retransmits = 1; }
}
logging { type = "console"; level = "info"; }
worker "rspamd_proxy" {
    bind_socket = %q;
    milter = yes;
    timeout = 120s;
    upstream "local" { default = yes; self_scan = yes; }
    count = 1;
    spam_header = "X-Spam";
}
`, addr)
	files := map[string]string{
		"rspamd.conf": conf,
		// The public-suffix list, cut to what the tests use: compiling
		// the whole one takes minutes on a loaded machine.
		"db/tld.dat": "com\norg\nnet\ntest\nexample\n",
		// X-Spamd-Result, X-Rspamd-Server, X-Rspamd-Queue-Id and the
		// X-Spam-* headers on every message, spam or not.
		// (mail from loopback is "local": not skipped here).
		"override.d/milter_headers.conf": "extended_spam_headers = true;\nskip_local = false;\nskip_authenticated = false;\nuse = [\"x-spam-status\", \"x-rspamd-queue-id\", \"x-rspamd-server\"];\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	p := Start(t, Cmd{Path: bin, Args: []string{"-f", "-u", u.Username, "-g", g.Name, "-c", filepath.Join(dir, "rspamd.conf"),
		"--var=LOCAL_CONFDIR=" + dir, "--var=RUNDIR=" + filepath.Join(dir, "run"), "--var=DBDIR=" + filepath.Join(dir, "db"),
		"--var=LOGDIR=" + filepath.Join(dir, "log")},
		ReadyLine: `starting rspamd_proxy process`, ReadyAddr: addr, Timeout: 90 * time.Second})
	return &Rspamd{Milter: addr, Proc: p}
}
