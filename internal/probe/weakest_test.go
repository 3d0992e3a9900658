package probe

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestProbeWeakestProtocol: a real Postfix that takes TLS 1.2 and 1.3 is
// reported with TLSv1.2 as the weakest version it accepts (it said
// TLSv1.3 before: only 1.1 and 1.0 were tried after a 1.3 connection),
// and one limited to TLS 1.3 with TLSv1.3; both refuse 1.1 and 1.0 (one
// that takes them, ">=TLSv1", is reported so by the legacy checks).
func TestProbeWeakestProtocol(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testpeer.LoopbackCert(t, dir)
	chain := "smtpd_tls_chain_files = " + filepath.Join(dir, "pf.key") + ", " + filepath.Join(dir, "pf.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range []struct {
		protocols, weakest string
	}{
		{">=TLSv1.2", "TLSv1.2"},
		{">=TLSv1.3", "TLSv1.3"},
	} {
		pf := testpeer.StartPostfix(t, chain, "smtpd_tls_security_level = may", "smtpd_tls_protocols = "+c.protocols)
		rep, err := Run(ctx, pf.Addr, Options{Timeout: time.Minute})
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		h := rep.Hosts[0]
		if h.TLS == nil || h.TLS.Protocol != "TLSv1.3" {
			t.Fatalf("smtpd_tls_protocols %s: tls %+v, want TLSv1.3 negotiated", c.protocols, h.TLS)
		}
		if h.Weakest != c.weakest {
			t.Errorf("smtpd_tls_protocols %s: weakest accepted %q, want %q", c.protocols, h.Weakest, c.weakest)
		}
		if len(h.Legacy) != 2 || h.Legacy[0].Accepted || h.Legacy[1].Accepted {
			t.Errorf("smtpd_tls_protocols %s: legacy %+v, want TLS 1.1 and 1.0 refused", c.protocols, h.Legacy)
		}
	}
}
