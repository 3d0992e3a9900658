package server

import (
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// TestTLSMetricsLabels: every record is counted with its direction,
// service, TLS protocol, group, level and verification, so Prometheus can
// sum instances by any of them; the store being off does not stop it.
func TestTLSMetricsLabels(t *testing.T) {
	reg := metrics.New()
	off := false
	s, err := openRecords(&config.Config{Records: config.Records{Enabled: &off}}, reg, nil) // the store off
	if err != nil {
		t.Fatal(err)
	}
	pq := tlsinfo.State{TLS: true, Protocol: "TLSv1.3", Group: "X25519MLKEM768"}
	pq.Verified = true
	s.Add(records.Record{Direction: records.Out, Service: "smtp", Level: "dane", TLS: pq, Outcome: records.Delivered})
	s.Add(records.Record{Direction: records.Out, Service: "smtp", Level: "dane", TLS: pq, Outcome: records.Delivered})
	s.Add(records.Record{Direction: records.In, Service: "pop3", Outcome: records.OK})
	var b strings.Builder
	reg.Write(&b)
	out := b.String()
	for _, want := range []string{
		`tlsmail_tls_sessions_total{direction="out",service="smtp",protocol="TLSv1.3",group="X25519MLKEM768",level="dane",verified="true",outcome="delivered"} 2`,
		`tlsmail_tls_sessions_total{direction="in",service="pop3",protocol="none",group="none",level="none",verified="false",outcome="ok"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack\n%s\nin\n%s", want, out)
		}
	}
}
