package remote

import (
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/smtpclient"
)

// connIdle is how long an idle connection is kept for the next message
// to the same host when Deliverer.ConnIdle is not set (Postfix's
// smtp_connection_cache_time_limit is 2s).
const connIdle = 5 * time.Second

// connCache keeps open SMTP connections per destination key (host,
// address, enforced policy): the next message to the same place skips the
// TCP and TLS handshakes. A connection carries one batch at a time.
type connCache struct {
	mu sync.Mutex
	m  map[string][]*cachedConn
}

type cachedConn struct {
	c     *smtpclient.Client
	timer *time.Timer
}

// get takes an idle connection for key, or returns nil.
func (cc *connCache) get(key string) *smtpclient.Client {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	list := cc.m[key]
	for len(list) > 0 {
		x := list[len(list)-1]
		list = list[:len(list)-1]
		cc.m[key] = list
		if x.timer.Stop() {
			return x.c
		}
		// The idle timer fired and is closing it.
	}
	return nil
}

// put keeps a connection for reuse until it has been idle for idle
// (0: connIdle).
func (cc *connCache) put(key string, c *smtpclient.Client, idle time.Duration) {
	if idle <= 0 {
		idle = connIdle
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.m == nil {
		cc.m = map[string][]*cachedConn{}
	}
	x := &cachedConn{c: c}
	x.timer = time.AfterFunc(idle, func() {
		cc.mu.Lock()
		list := cc.m[key]
		for i, y := range list {
			if y == x {
				cc.m[key] = append(list[:i], list[i+1:]...)
				break
			}
		}
		cc.mu.Unlock()
		_ = c.Quit()
	})
	cc.m[key] = append(cc.m[key], x)
}
