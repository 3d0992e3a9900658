package smtpd

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReceivingServersDoNotLinkConfigOrOutbound: smtpd and pop3d take
// settings structs built by internal/server, and routing comes from
// internal/route, so neither links the config schema nor the outbound
// engine (DNS, TLS policy, the SMTP client). An import that brings one
// of them back fails here.
func TestReceivingServersDoNotLinkConfigOrOutbound(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	forbidden := []string{"internal/config", "internal/dnsx", "internal/policy", "internal/remote", "smtpclient"}
	for _, pkg := range []string{".", "../pop3d"} {
		out, err := exec.Command(goBin, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == "github.com/tlsmail/tlsmail/"+f {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
