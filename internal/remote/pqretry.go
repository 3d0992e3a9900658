package remote

import (
	"log/slog"
	"sync"
	"time"
)

// Some MX hosts (or middleboxes before them) break on the large
// ClientHello that offers the hybrid post-quantum group X25519MLKEM768:
// they reset or hang (OpenSSL issue 27557). A handshake that fails that
// way is retried once on the same address offering classical groups only
// (smtpclient.Options.RetryClassical), under the same policy; the address
// is then remembered for classicalTTL and dialed classical at once.
const (
	classicalTTL   = 24 * time.Hour
	classicalHosts = 10000 // addresses remembered at most
)

// Values of the pq_fallback log attribute and the reason prefix in the
// TLS record of an attempt made with classical groups only.
const (
	pqRetried    = "retried"    // this attempt's hybrid ClientHello went unanswered; the classical retry carried it
	pqRemembered = "remembered" // the address left a hybrid ClientHello unanswered before
)

// pqNote is the TLS record's reason for an attempt with classical groups only.
func pqNote(how string) string {
	if how == pqRetried {
		return "hybrid post-quantum ClientHello unanswered (reset, EOF or timeout before ServerHello); classical groups only: retried"
	}
	return "classical groups only: the server left a hybrid post-quantum ClientHello unanswered within 24h"
}

// classicalMemory remembers the addresses (IP:port) that left a hybrid
// ClientHello unanswered, each for classicalTTL, at most classicalHosts.
type classicalMemory struct {
	mu sync.Mutex
	m  map[string]time.Time // address -> until
}

// has reports whether addr is to be dialed with classical groups only.
func (cm *classicalMemory) has(addr string, now time.Time) bool {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	until, ok := cm.m[addr]
	if ok && !now.Before(until) {
		delete(cm.m, addr)
		return false
	}
	return ok
}

// add remembers addr until now+classicalTTL. When full, expired entries go
// first, then the one closest to expiry.
func (cm *classicalMemory) add(addr string, now time.Time) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.m == nil {
		cm.m = map[string]time.Time{}
	}
	if _, ok := cm.m[addr]; !ok && len(cm.m) >= classicalHosts {
		oldest, first := "", time.Time{}
		for a, u := range cm.m {
			if !now.Before(u) {
				delete(cm.m, a)
				continue
			}
			if oldest == "" || u.Before(first) {
				oldest, first = a, u
			}
		}
		if len(cm.m) >= classicalHosts {
			delete(cm.m, oldest)
		}
	}
	cm.m[addr] = now.Add(classicalTTL)
}

// pqMetric counts an attempt made with classical groups only: "retried"
// (the classical retry worked), "retry_failed", "remembered".
func (d *Deliverer) pqMetric(result string) {
	if d.Metrics == nil {
		return
	}
	d.describe.Do(func() {
		d.Metrics.Describe("tlsmail_outbound_pq_fallback_total", "counter",
			"outbound connections offering classical key-exchange groups only because the host left a hybrid post-quantum ClientHello unanswered, by result (retried, retry_failed, remembered)")
	})
	d.Metrics.Inc("tlsmail_outbound_pq_fallback_total", "result", result)
}

func (d *Deliverer) logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}
