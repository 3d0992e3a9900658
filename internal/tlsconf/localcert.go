package tlsconf

import (
	"crypto/x509"
	"sync"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// localCerts remembers the description (tlsinfo.Cert) of each of our own
// certificates. State describes the local certificate of every handshake,
// and building it anew each time (two names parsed, two SHA-256 sums, some
// ninety allocations) was a tenth of a STARTTLS session's allocations and
// of sslserver's per-connection ones. The key is the parsed certificate,
// which a reload replaces, so a renewed certificate gets a new entry; the
// map starts over when it is full, so reloads cannot grow it for ever.
// The descriptions are shared by all connections and never modified.
type localCerts struct {
	mu sync.Mutex
	m  map[*x509.Certificate]*tlsinfo.Cert
}

// maxLocalCerts bounds localCerts: more than any SNI setup has at once.
const maxLocalCerts = 64

func (l *localCerts) get(c *x509.Certificate) *tlsinfo.Cert {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ci, ok := l.m[c]; ok {
		return ci
	}
	if l.m == nil || len(l.m) >= maxLocalCerts {
		l.m = make(map[*x509.Certificate]*tlsinfo.Cert)
	}
	ci := tlsinfo.NewCert(c)
	l.m[c] = ci
	return ci
}
