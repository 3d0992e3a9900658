package probe

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestProbeDANEFollowsCNAMELikeDelivery: the MX host is a CNAME whose
// target has the TLSA record (RFC 7672 §2.2.2). Delivery's plan uses it;
// the probe, which used to look only at the MX name and say "none", must
// report the same records and a match against a real Postfix.
func TestProbeDANEFollowsCNAMELikeDelivery(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testpeer.LoopbackCert(t, dir)
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(dir, "pf.key")+", "+filepath.Join(dir, "pf.pem"),
		"smtpd_tls_security_level = may",
	)
	raw, err := os.ReadFile(filepath.Join(dir, "pf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(raw)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	_, portStr, _ := net.SplitHostPort(pf.Addr)
	var port int
	fmt.Sscan(portStr, &port)
	tlsa := fmt.Sprintf("_%d._tcp.real.host.test", port)
	dns := testpeer.StartDNS(t,
		"alias.test. 300 IN MX 10 mx.alias.test.",
		"mx.alias.test. 300 IN CNAME real.host.test.",
		"real.host.test. 300 IN A 127.0.0.1",
		tlsa+". 300 IN TLSA 3 1 1 "+hex.EncodeToString(spki[:]),
	)
	for _, n := range []string{"alias.test", "mx.alias.test", "real.host.test", tlsa} {
		dns.Secure(n)
	}
	r, err := dnsx.New(dns.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Delivery's decision.
	a, err := r.LookupAddrs(ctx, "mx.alias.test")
	if err != nil {
		t.Fatal(err)
	}
	pl, err := (&policy.Table{}).Plan(ctx, r, policy.Policy{Level: policy.DANE}, policy.Target{Domain: "alias.test", MXHost: "mx.alias.test", Canonical: a.Canonical, Port: port, AddrSecure: a.Secure})
	if err != nil || pl.Effective != policy.DANE || len(pl.TLSA) != 1 {
		t.Fatalf("delivery's plan: %+v %v", pl, err)
	}

	// The probe's.
	rep, err := Run(ctx, "alias.test", Options{Port: port, Resolver: r, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	h := rep.Hosts[0]
	if h.Canonical != "real.host.test" || h.DANE == nil || h.DANE.Lookup != "secure" || len(h.DANE.Records) != 1 || h.DANE.Match == nil || !h.DANE.Match.OK {
		t.Fatalf("probe disagrees with delivery: canonical %q dane %+v", h.Canonical, h.DANE)
	}
	if rep.Verdict.Level != "dane-only" {
		t.Errorf("verdict %+v", rep.Verdict)
	}
}
