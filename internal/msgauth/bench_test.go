package msgauth

import (
	"context"
	"net"
	"strings"
	"testing"
)

func benchMsg(size int) string {
	line := "The quick brown fox jumps over the lazy dog, again and again.\r\n"
	body := strings.Repeat(line, size/len(line)+1)
	return strings.Replace(testMsg, "Hello Bob,\r\n\r\nthis is signed.\r\n", body[:size], 1)
}

func BenchmarkSign(b *testing.B) {
	for _, c := range []struct {
		name   string
		size   int
		useRSA bool
	}{{"ed25519/1KB", 1 << 10, false}, {"ed25519/100KB", 100 << 10, false}, {"rsa2048/1KB", 1 << 10, true}, {"rsa2048/100KB", 100 << 10, true}} {
		k, _ := testKey(b, c.useRSA)
		s := NewSigner([]Key{k})
		msg := []byte(benchMsg(c.size))
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if sig, err := s.Sign(msg); err != nil || sig == "" {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify is the DKIM, SPF and DMARC check of a signed message,
// DNS answered from memory (the cost of our side, not of the network).
func BenchmarkVerify(b *testing.B) {
	for _, c := range []struct {
		name   string
		size   int
		useRSA bool
	}{{"ed25519/1KB", 1 << 10, false}, {"ed25519/100KB", 100 << 10, false}, {"rsa2048/1KB", 1 << 10, true}, {"rsa2048/100KB", 100 << 10, true}} {
		k, _ := testKey(b, c.useRSA)
		msg := benchMsg(c.size)
		sig, err := SignWith(k, []byte(msg))
		if err != nil {
			b.Fatal(err)
		}
		txt, _ := TXTRecord(k.Signer)
		dns := staticDNS{"sel._domainkey.example.org": {txt}, "example.org": {"v=spf1 ip4:127.0.0.1 -all"}, "_dmarc.example.org": {"v=DMARC1; p=reject"}}
		v := &Verifier{Host: "mx.example.net", Resolver: dns}
		signed := sig + msg
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(signed)))
			for b.Loop() {
				r := v.Check(context.Background(), Envelope{IP: net.ParseIP("127.0.0.1"), Helo: "x", MailFrom: "alice@example.org"}, strings.NewReader(signed))
				if r.DMARC != "pass" || r.DKIM[0].Result != "pass" {
					b.Fatalf("%+v", r)
				}
			}
		})
	}
}
