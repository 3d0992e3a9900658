package probe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestProbeReportsHybridHelloRefused: a real Postfix with STARTTLS behind
// a proxy that resets ClientHellos over 1,400 bytes (X25519MLKEM768 makes
// Go's about 1,600). The probe reaches it with the classical retry and
// says so in text and JSON; without the proxy it says nothing of the kind
// and negotiates as usual.
func TestProbeReportsHybridHelloRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testpeer.LoopbackCert(t, dir)
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(dir, "pf.key")+", "+filepath.Join(dir, "pf.pem"),
		"smtpd_tls_security_level = may",
	)
	proxy := testpeer.StartHelloProxy(t, pf.Addr, 1400)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rep, err := Run(ctx, proxy.Addr, Options{Timeout: time.Minute})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	h := rep.Hosts[0]
	if h.TLS == nil || !h.TLS.HybridRefused || h.TLS.PostQuantum {
		t.Fatalf("host report: %+v tls %+v", h, h.TLS)
	}
	if proxy.Resets() != 1 {
		t.Errorf("proxy resets %d, want 1 (the hybrid ClientHello)", proxy.Resets())
	}
	var b bytes.Buffer
	rep.WriteText(&b)
	if !strings.Contains(b.String(), "hybrid ClientHello refused; classical works") {
		t.Errorf("text report:\n%s", b.String())
	}

	direct, err := Run(ctx, pf.Addr, Options{Timeout: time.Minute})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	if tl := direct.Hosts[0].TLS; tl == nil || tl.HybridRefused {
		t.Errorf("direct to Postfix: %+v", tl)
	}
}
