package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStatusJSONWithoutAServer: `status --json` with no server prints one
// JSON object saying so (running false, the error, the data directory)
// and still exits 1 with the one line on stderr.
func TestStatusJSONWithoutAServer(t *testing.T) {
	data := t.TempDir()
	code, out, errs := runCLI(t, "tlsmail", "status", "--json", "--data", data)
	var st struct {
		Running *bool  `json:"running"`
		Error   string `json:"error"`
		DataDir string `json:"data_dir"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json printed no JSON object: %v\nstdout %q\nstderr %q", err, out, errs)
	}
	if code != 1 || st.Running == nil || *st.Running || !strings.Contains(st.Error, "no server is running") || st.DataDir != data {
		t.Errorf("exit %d, %+v\n%s", code, st, out)
	}
	if strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "no server is running") {
		t.Errorf("stderr %q", errs)
	}
}
