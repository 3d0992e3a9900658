package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersionNamesGoAndTLSGroups(t *testing.T) {
	code, out, errs := runCLI(t, "tlsmail", "version")
	if code != 0 || !strings.HasPrefix(out, "tlsmail ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("version: %d %q %q", code, out, errs)
	}
	// The groups come from a real ClientHello: Go's default list, with
	// the post-quantum hybrid first.
	if !strings.Contains(out, "tls groups X25519MLKEM768 ") || !strings.Contains(out, " X25519 ") {
		t.Errorf("version does not list the TLS groups on offer:\n%s", out)
	}
	code, out, _ = runCLI(t, "tlsmail", "version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Module != "github.com/tlsmail/tlsmail" || v.Go != runtime.Version() || len(v.TLSGroups) < 3 {
		t.Errorf("version --json: %d %v %+v", code, err, v)
	}
}
