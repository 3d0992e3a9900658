package ucspi

import (
	"net"
	"sync"
)

// batchConn sits under crypto/tls and lets the relay send all the records
// of one tls.Conn.Write with one write system call: Go's TLS writes each
// record with its own, and on a busy connection those calls are most of
// the relay's cost. Outside a batch, writes (the handshake, alerts) pass
// straight through. Nothing is held between batches, so an idle
// connection costs no buffer.
type batchConn struct {
	net.Conn
	bufs *relayBuffers // set by relay

	mu  sync.Mutex
	buf *[]byte // while batching: the records so far
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf == nil {
		return b.Conn.Write(p)
	}
	if len(*b.buf)+len(p) > cap(*b.buf) {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(*b.buf) {
			return b.Conn.Write(p)
		}
	}
	*b.buf = append(*b.buf, p...)
	return len(p), nil
}

// begin starts collecting records.
func (b *batchConn) begin() {
	bp := b.bufs.get()
	*bp = (*bp)[:0]
	b.mu.Lock()
	b.buf = bp
	b.mu.Unlock()
}

// end sends what was collected and stops collecting.
func (b *batchConn) end() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	bp := b.buf
	b.buf = nil
	*bp = (*bp)[:cap(*bp)]
	b.bufs.put(bp)
	return err
}

func (b *batchConn) flushLocked() error {
	if len(*b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(*b.buf)
	*b.buf = (*b.buf)[:0]
	return err
}
