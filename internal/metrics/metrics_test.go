package metrics

import (
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := New()
	r.Describe("tlsmail_x_total", "counter", "things")
	r.Inc("tlsmail_x_total", "tls", "TLSv1.3", "group", `X"25519`)
	r.Inc("tlsmail_x_total", "tls", "TLSv1.3", "group", `X"25519`)
	r.Inc("tlsmail_x_total", "tls", "none")
	r.Gauge("tlsmail_queue_messages", "queued", func() float64 { return 7 })
	var b strings.Builder
	r.Write(&b)
	want := "# HELP tlsmail_queue_messages queued\n# TYPE tlsmail_queue_messages gauge\ntlsmail_queue_messages 7\n" +
		"# HELP tlsmail_x_total things\n# TYPE tlsmail_x_total counter\n" +
		"tlsmail_x_total{tls=\"TLSv1.3\",group=\"X\\\"25519\"} 2\ntlsmail_x_total{tls=\"none\"} 1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	var nilReg *Registry
	nilReg.Inc("x") // a nil registry counts nothing and does not panic
}
