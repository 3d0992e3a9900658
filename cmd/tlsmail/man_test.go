package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestManPagesLintCleanAndFollowTheHelp writes the five pages, lints
// them with mandoc -T lint (warnings count as failures) and checks that
// they carry what the help and the schema say today.
func TestManPagesLintCleanAndFollowTheHelp(t *testing.T) {
	mandoc := testpeer.Require(t, "mandoc")
	dir := t.TempDir()
	if code, _, errs := runCLI(t, "tlsmail", "man", "--out", dir); code != 0 {
		t.Fatalf("man --out: %d %s", code, errs)
	}
	pages := map[string]string{}
	for _, p := range []string{"man8/tlsmail.8", "man5/tlsmail.toml.5", "man1/tlsmail-send.1", "man1/sslserver.1", "man1/sslclient.1"} {
		path := filepath.Join(dir, p)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pages[filepath.Base(p)] = string(b)
		out, err := exec.Command(mandoc, "-T", "lint", "-W", "warning", path).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("mandoc -T lint %s: %v\n%s", p, err, out)
		}
	}
	// Every command is in tlsmail(8), with the flags its -h lists.
	for name := range commands() {
		if !strings.Contains(pages["tlsmail.8"], ".Ss "+name+"\n") {
			t.Errorf("tlsmail(8) has no section for %s", name)
		}
	}
	for _, want := range []string{".It Fl all\n", ".It Fl data Ar string\n"} {
		if !strings.Contains(pages["tlsmail.8"], want) {
			t.Errorf("tlsmail(8) lacks %q", want)
		}
	}
	if !strings.Contains(pages["tlsmail-send.1"], ".It Fl attach Ar value\n") || !strings.Contains(pages["sslserver.1"], "SSLCTLFD=3") {
		t.Errorf("tlsmail-send(1) or sslserver(1) do not carry their -h text")
	}
	// Every setting of the schema is in tlsmail.toml(5).
	for _, s := range config.Schema() {
		leaf := s.Key[strings.LastIndexByte(s.Key, '.')+1:]
		if s.Kind != "array of tables" && !strings.Contains(pages["tlsmail.toml.5"], ".It Cm "+leaf+"\n") {
			t.Errorf("tlsmail.toml(5) lacks %s", s.Key)
		}
	}
}
