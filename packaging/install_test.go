package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestREADMESetUpInstallsTlsmail: the README's set-up has exactly two
// commands, and the first one's `make install` puts tlsmail (and its man
// pages) where a PATH and MANPATH find them.
func TestREADMESetUpInstallsTlsmail(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, setup, _ := strings.Cut(string(readme), "## Set up")
	setup, _, _ = strings.Cut(setup, "\n## ")
	cmds := regexp.MustCompile(`(?m)^    (\S.*)$`).FindAllStringSubmatch(setup, -1)
	if len(cmds) != 2 || cmds[0][1] != "make install && tlsmail serve" || cmds[1][1] != "make test" {
		t.Fatalf("README set-up commands %q, want exactly `make install && tlsmail serve` and `make test`", cmds)
	}
	mk := testpeer.Require(t, "make")
	prefix := t.TempDir()
	if out, err := exec.Command(mk, "-C", "..", "install", "PREFIX="+prefix).CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", "-c", "command -v tlsmail && tlsmail version")
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(prefix, "bin")+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), filepath.Join(prefix, "bin", "tlsmail")+"\n") || !strings.Contains(string(out), "tls groups ") {
		t.Errorf("tlsmail on the PATH after make install: %v\n%s", err, out)
	}
	// Built from a git clone, the binary names its commit (Go does not
	// stamp builds in a linked worktree, whose .git is a file).
	if st, err := os.Stat("../.git"); err == nil && st.IsDir() {
		head, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := "commit     " + strings.TrimSpace(string(head)); !strings.Contains(string(out), want) {
			t.Errorf("tlsmail version after make install lacks %q:\n%s", want, out)
		}
	} else {
		t.Logf("not a plain git clone: the commit stamp is not checked")
	}
	for _, p := range []string{"man8/tlsmail.8", "man5/tlsmail.toml.5", "man1/tlsmail-send.1", "man1/sslserver.1", "man1/sslclient.1"} {
		if _, err := os.Stat(filepath.Join(prefix, "share", "man", p)); err != nil {
			t.Errorf("make install did not install %s: %v", p, err)
		}
	}
}
