package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserNamesFoldCase: `user add Alice` stores alice, and a second add
// in any case is refused as an existing user.
func TestUserNamesFoldCase(t *testing.T) {
	data := t.TempDir()
	user := func(stdin string, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &cliEnv{name: "tlsmail", stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := run(env, append([]string{"tlsmail", "user"}, append(args, "--data", data)...))
		return code, out.String(), errb.String()
	}
	if code, out, errs := user("a-long-password\n", "add", "Alice"); code != exitOK || !strings.Contains(out, "added alice") {
		t.Fatalf("add Alice: %d %q %q", code, out, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "users")); !strings.Contains(string(b), "\nalice:") {
		t.Errorf("users file:\n%s", b)
	}
	for _, name := range []string{"alice", "ALICE"} {
		if code, _, errs := user("another-password\n", "add", name); code != exitFail || !strings.Contains(errs, `user "alice" exists`) {
			t.Errorf("add %s after Alice: %d %q", name, code, errs)
		}
	}
	if code, out, _ := user("", "list"); code != exitOK || out != "alice\n" {
		t.Errorf("list: %d %q", code, out)
	}
	if code, out, errs := user("", "del", "ALICE"); code != exitOK || !strings.Contains(out, "removed alice") {
		t.Errorf("del ALICE: %d %q %q", code, out, errs)
	}
}
