package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

func tlsmail(t *testing.T, args ...string) string {
	t.Helper()
	return testpeer.Output(t, tlsmailBin, args...)
}

// TestOpenSSLTrustsOurHashedCADir: certificates made by `tlsmail cert`,
// served by openssl s_server, verified by openssl s_client through a CA
// directory that `tlsmail cert rehash` built — OpenSSL itself finds the CA
// by our hash.
func TestOpenSSLTrustsOurHashedCADir(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	tlsmail(t, "cert", "new-ca", "--out", filepath.Join(dir, "ca"), "--cn", "E2E Root", "-o", "tlsmail e2e")
	tlsmail(t, "cert", "issue", "--ca", filepath.Join(dir, "ca"), "--host", "localhost,127.0.0.1", "--out", filepath.Join(dir, "server"))

	caDir := filepath.Join(dir, "cadir")
	if err := os.Mkdir(caDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, "ca", "ca.pem"))
	if err := os.WriteFile(filepath.Join(caDir, "root.pem"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	tlsmail(t, "cert", "rehash", caDir)
	hash := tlsmail(t, "cert", "hash", filepath.Join(caDir, "root.pem"))
	if want := testpeer.Output(t, openssl, "x509", "-noout", "-subject_hash", "-in", filepath.Join(caDir, "root.pem")); hash != want {
		t.Fatalf("tlsmail cert hash %s, openssl %s", hash, want)
	}
	if _, err := os.Lstat(filepath.Join(caDir, hash+".0")); err != nil {
		t.Fatalf("rehash made no %s.0 link: %v", hash, err)
	}

	port := testpeer.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	testpeer.Start(t, testpeer.Cmd{
		Path:      openssl,
		Args:      []string{"s_server", "-accept", addr, "-cert", filepath.Join(dir, "server.pem"), "-key", filepath.Join(dir, "server.key"), "-www", "-quiet"},
		ReadyAddr: addr,
	})
	cmd := exec.Command(openssl, "s_client", "-connect", addr, "-CApath", caDir, "-verify_return_error", "-verify_hostname", "localhost", "-brief")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl s_client with our CA dir: %v\n%s", err, out)
	}
}

// TestMultiCallLinks: a link named sslserver, sslclient or sendmail runs
// that command.
func TestMultiCallLinks(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"sslserver", "sslclient", "sendmail"} {
		link := filepath.Join(dir, name)
		if err := os.Symlink(tlsmailBin, link); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(link, "-h").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "usage: "+name+" ") {
			t.Errorf("%s -h: %v %q", name, err, out)
		}
	}
	out, err := exec.Command(tlsmailBin, "nosuchcommand").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || strings.Count(string(out), "\n") != 1 {
		t.Errorf("unknown command: %v %q", err, out)
	}
}
