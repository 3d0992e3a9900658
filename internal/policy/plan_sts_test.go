package policy

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestPlanRefusesMXOutsideMTASTSPolicy is the fast guard of RFC 8461 §4.1:
// under an enforced MTA-STS policy (here from the cache, as WithSTS gets
// it), Plan refuses an MX host its mx patterns do not match, before any
// connection — also at the DANE level WithSTS sets — and accepts one that
// matches, including a single-label wildcard.
func TestPlanRefusesMXOutsideMTASTSPolicy(t *testing.T) {
	dns := testpeer.StartDNS(t) // no TXT: the cached policy holds
	r, err := dnsx.New(dns.Addr, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cached, _ := json.Marshal(STSPolicy{Domain: "sts.test", ID: "1", Mode: "enforce", MX: []string{"mx1.sts.test", "*.mail.sts.test"}, MaxAge: 86400, Fetched: time.Now()})
	if err := os.WriteFile(filepath.Join(dir, "sts.test.json"), cached, 0o600); err != nil {
		t.Fatal(err)
	}
	tb := &Table{STS: &STS{Resolver: r, Dir: dir}}
	ctx := context.Background()
	p, note := tb.WithSTS(ctx, Policy{Level: May}, "sts.test")
	if p.STS == nil || p.Level != DANE || !p.FallbackVerify {
		t.Fatalf("WithSTS: %+v (%s), want the enforced policy at dane falling back to verify", p, note)
	}
	for host, ok := range map[string]bool{
		"mx1.sts.test":        true,
		"MX1.STS.TEST.":       true,
		"a.mail.sts.test":     true,
		"mx2.sts.test":        false,
		"mail.sts.test":       false,
		"b.a.mail.sts.test":   false,
		"mx1.sts.test.evil":   false,
		"mx.attacker.example": false,
	} {
		pl, err := tb.Plan(ctx, r, p, Target{Domain: "sts.test", MXHost: host, Port: 25})
		switch {
		case ok && err != nil:
			t.Errorf("%s matches the policy, but Plan failed: %v", host, err)
		case ok && pl.Effective != Verify:
			t.Errorf("%s: effective %s, want verify (no DNSSEC addresses)", host, pl.Effective)
		case !ok && !errors.Is(err, ErrPolicy):
			t.Errorf("%s does not match the MTA-STS mx patterns, but Plan allowed it (effective %s, err %v)", host, pl.Effective, err)
		}
	}
}
