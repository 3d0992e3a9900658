package remote

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// startTLSPostfix starts a private Postfix offering STARTTLS with a
// certificate for 127.0.0.1 and relaying for loopback clients.
func startTLSPostfix(t *testing.T) (*testpeer.Postfix, *x509.CertPool) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pool := testpeer.LoopbackCert(t, dir)
	pf := testpeer.StartPostfix(t,
		"smtpd_tls_chain_files = "+filepath.Join(dir, "pf.key")+", "+filepath.Join(dir, "pf.pem"),
		"smtpd_tls_security_level = may",
		"smtpd_tls_loglevel = 1",
		"defer_transports = smtp", // what it accepts stays in its queue
	)
	return pf, pool
}

// deliverOne delivers one message to rcpt and returns its outcome.
func deliverOne(t *testing.T, d *Deliverer, rcpt, subject string) queue.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := &queue.Envelope{From: "a@client.test", Recipients: []queue.Recipient{{Addr: rcpt}}}
	open := func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Subject: " + subject + "\r\n\r\nhello\r\n")), nil
	}
	outs := d.Deliver(ctx, env, []int{0}, open)
	if len(outs) != 1 {
		t.Fatalf("outcomes: %+v", outs)
	}
	return outs[0]
}

func attrOf(o queue.Outcome, key string) any {
	for i := 0; i+1 < len(o.Attrs); i += 2 {
		if o.Attrs[i] == key {
			return o.Attrs[i+1]
		}
	}
	return nil
}

// dropCached closes the idle cached connections, so that the next
// delivery dials anew.
func dropCached(d *Deliverer) {
	d.cache.mu.Lock()
	var all []*cachedConn
	for k, list := range d.cache.m {
		all = append(all, list...)
		delete(d.cache.m, k)
	}
	d.cache.mu.Unlock()
	for _, x := range all {
		if x.timer.Stop() {
			_ = x.c.Quit()
		}
	}
}

func metricsText(reg *metrics.Registry) string {
	var b bytes.Buffer
	reg.Write(&b)
	return b.String()
}

// TestHybridClientHelloRefusedRetriesClassical: a real Postfix (STARTTLS,
// certificate from a test CA, policy verify) behind a proxy that resets
// connections whose ClientHello exceeds 1,400 bytes, as some MX hosts do
// with X25519MLKEM768. The delivery is retried once with classical groups
// and gets through under the same verify policy; the log attributes, the
// TLS record and the metric say so; the next connection to the host is
// classical at once (no second reset); and a host that resets every
// ClientHello defers (two connections, no plaintext transaction).
func TestHybridClientHelloRefusedRetriesClassical(t *testing.T) {
	pf, pool := startTLSPostfix(t)
	proxy := testpeer.StartHelloProxy(t, pf.Addr, 1400)
	wall := testpeer.StartHelloProxy(t, pf.Addr, 0)
	rec := &recorded{}
	reg := metrics.New()
	d := &Deliverer{
		Policy:    &policy.Table{Default: policy.Policy{Level: policy.Verify}, RootCAs: pool},
		Transport: map[string]string{"pq.test": proxy.Addr, "wall.test": wall.Addr},
		LocalName: "client.test",
		Records:   rec,
		Metrics:   reg,
	}

	o := deliverOne(t, d, "b@pq.test", "first")
	if !o.Delivered {
		t.Fatalf("first delivery: %+v", o)
	}
	if proxy.Resets() != 1 || proxy.Passed() != 1 {
		t.Fatalf("proxy: %d resets, %d ClientHellos passed; want the hybrid one reset and the classical one passed", proxy.Resets(), proxy.Passed())
	}
	if v := attrOf(o, "pq_fallback"); v != pqRetried {
		t.Errorf("log attribute pq_fallback = %v, want %q (attrs %v)", v, pqRetried, o.Attrs)
	}
	if v := attrOf(o, "effective"); v != "verify" {
		t.Errorf("effective level %v: the retry must keep the verify policy", v)
	}
	rec.mu.Lock()
	r := rec.recs[len(rec.recs)-1]
	rec.mu.Unlock()
	if r.Outcome != records.Delivered || !r.TLS.Verified || r.TLS.Group != "X25519" || !strings.Contains(r.Reason, "hybrid post-quantum ClientHello unanswered") {
		t.Errorf("record: outcome %s verified %v group %q reason %q", r.Outcome, r.TLS.Verified, r.TLS.Group, r.Reason)
	}
	if m := metricsText(reg); !strings.Contains(m, `tlsmail_outbound_pq_fallback_total{result="retried"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}

	// The host is remembered: a new connection offers classical groups
	// at once, so the proxy resets nothing more.
	dropCached(d)
	o = deliverOne(t, d, "b@pq.test", "second")
	if !o.Delivered || attrOf(o, "pq_fallback") != pqRemembered {
		t.Fatalf("second delivery: %+v", o)
	}
	if proxy.Resets() != 1 || proxy.Passed() != 2 || proxy.Conns() != 3 {
		t.Errorf("proxy after the second delivery: %d conns, %d resets, %d passed; want 3, 1, 2", proxy.Conns(), proxy.Resets(), proxy.Passed())
	}
	if m := metricsText(reg); !strings.Contains(m, `tlsmail_outbound_pq_fallback_total{result="remembered"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}

	// A host that resets every ClientHello: one retry, then deferred.
	o = deliverOne(t, d, "b@wall.test", "wall")
	if o.Delivered || !o.Status.Temporary || o.Status.Enhanced != "4.7.5" || attrOf(o, "pq_fallback") != "retry_failed" {
		t.Fatalf("always-resetting host: %+v", o)
	}
	if wall.Conns() != 2 || wall.Resets() != 2 || wall.Passed() != 0 {
		t.Errorf("always-resetting host: %d conns, %d resets; want 2 and 2 (hybrid, then classical once, never plaintext)", wall.Conns(), wall.Resets())
	}
	rec.mu.Lock()
	r = rec.recs[len(rec.recs)-1]
	rec.mu.Unlock()
	if r.Outcome != records.Deferred || !r.TLSFailure || !strings.Contains(r.Reason, "classical retry") {
		t.Errorf("record of the always-resetting host: %+v", r)
	}
	if m := metricsText(reg); !strings.Contains(m, `tlsmail_outbound_pq_fallback_total{result="retry_failed"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}
}

// TestOpportunisticGetsClassicalTLSNotPlaintext: at level may a failed
// handshake falls back to plaintext (Postfix's may does the same), but a
// hybrid ClientHello left unanswered is first retried classical: the
// message goes encrypted.
func TestOpportunisticGetsClassicalTLSNotPlaintext(t *testing.T) {
	pf, _ := startTLSPostfix(t)
	proxy := testpeer.StartHelloProxy(t, pf.Addr, 1400)
	rec := &recorded{}
	d := &Deliverer{
		Policy:    &policy.Table{Default: policy.Policy{Level: policy.May}},
		Transport: map[string]string{"pq.test": proxy.Addr},
		LocalName: "client.test",
		Records:   rec,
	}
	o := deliverOne(t, d, "b@pq.test", "may")
	if !o.Delivered || attrOf(o, "pq_fallback") != pqRetried {
		t.Fatalf("outcome: %+v", o)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if r := rec.recs[0]; !r.TLS.TLS || r.TLS.Group != "X25519" {
		t.Errorf("record: TLS %v group %q: want classical TLS, not plaintext", r.TLS.TLS, r.TLS.Group)
	}
}

// TestCertificateFailureIsNotRetriedClassical: a handshake that fails on
// the certificate (the CA is not trusted) is not taken for a
// post-quantum problem: one connection, no classical retry.
func TestCertificateFailureIsNotRetriedClassical(t *testing.T) {
	pf, _ := startTLSPostfix(t)
	proxy := testpeer.StartHelloProxy(t, pf.Addr, 1<<16)
	reg := metrics.New()
	d := &Deliverer{
		Policy:    &policy.Table{Default: policy.Policy{Level: policy.Verify}, RootCAs: x509.NewCertPool()},
		Transport: map[string]string{"pq.test": proxy.Addr},
		LocalName: "client.test",
		Metrics:   reg,
	}
	o := deliverOne(t, d, "b@pq.test", "untrusted")
	if o.Delivered || o.Status.Enhanced != "4.7.5" || !strings.Contains(o.Status.Text, "not verified") {
		t.Fatalf("outcome: %+v", o)
	}
	if proxy.Conns() != 1 || attrOf(o, "pq_fallback") != nil {
		t.Errorf("%d connections, pq_fallback %v: a certificate failure must not be retried", proxy.Conns(), attrOf(o, "pq_fallback"))
	}
	if m := metricsText(reg); strings.Contains(m, "pq_fallback") {
		t.Errorf("metrics:\n%s", m)
	}
}

// TestClassicalMemoryExpiresAndIsBounded: an address is remembered for
// classicalTTL, and the memory never holds more than classicalHosts.
func TestClassicalMemoryExpiresAndIsBounded(t *testing.T) {
	var cm classicalMemory
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	cm.add("192.0.2.1:25", now)
	if !cm.has("192.0.2.1:25", now.Add(classicalTTL-time.Second)) || cm.has("192.0.2.2:25", now) {
		t.Fatal("remembered the wrong addresses")
	}
	if cm.has("192.0.2.1:25", now.Add(classicalTTL)) {
		t.Fatal("still remembered after classicalTTL")
	}
	for i := range classicalHosts + 10 {
		cm.add(fmt.Sprintf("198.51.100.%d:%d", i%256, 1000+i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(cm.m); n != classicalHosts {
		t.Fatalf("%d addresses remembered, want at most %d", n, classicalHosts)
	}
	if cm.has("198.51.100.0:1000", now) || !cm.has(fmt.Sprintf("198.51.100.%d:%d", (classicalHosts+9)%256, 1000+classicalHosts+9), now) {
		t.Error("the oldest entries should go first")
	}
}
