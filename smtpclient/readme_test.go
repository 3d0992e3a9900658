package smtpclient_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEGoExampleCompiles builds the README's "From Go" snippet as
// written, inside a function, so the README cannot drift from the API.
func TestREADMEGoExampleCompiles(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "From Go:\n\n```go\n")
	block, _, ok2 := strings.Cut(after, "```\n")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```go block after \"From Go:\"")
	}
	src := "package main\n\nimport (\n\t\"context\"\n\t\"fmt\"\n\n\t\"github.com/tlsmail/tlsmail/smtpclient\"\n)\n\n" +
		"func send(ctx context.Context, pw string) error {\n" + block + "\treturn nil\n}\n\nfunc main() { _ = send(context.Background(), \"\") }\n"
	// A directory inside the module (so the import resolves) whose name
	// starts with "." (so ./... never sees it).
	dir, err := os.MkdirTemp("..", ".readme-example-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "./"+filepath.Base(dir))
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's Go example does not compile: %v\n%s\n%s", err, out, src)
	}
}
