package smtpd

import (
	"bufio"
	"io"
	"sync"
)

// An idle TLS session holds no command reader. Most sessions spend most
// of their life waiting for the next command (a connection cached by the
// client, a slow sender), and a 4 KiB bufio.Reader each is a tenth of
// what such a session costs. So once everything read has been used, the
// reader goes back to a pool shared by all sessions, the session waits
// for the next command by reading one byte from the TLS connection
// (crypto/tls keeps the rest of the record it decrypted), and a pooled
// reader is taken again that returns that byte first. Over TLS this costs
// no system call: the record is read either way. Plaintext sessions keep
// their reader: there the one-byte read would be one more read(2) per
// command.

// readerSize is the size of a session's command reader.
const readerSize = 4096

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// getReader takes a reader from the pool for r.
func (ss *session) getReader(r io.Reader) *bufio.Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	ss.srv.readersHeld.Add(1)
	return br
}

// putReader gives the session's reader back.
func (ss *session) putReader() {
	if ss.br == nil {
		return
	}
	ss.br.Reset(nil)
	readerPool.Put(ss.br)
	ss.br = nil
	ss.srv.readersHeld.Add(-1)
}

// resumeReader returns the byte that ended an idle wait, then reads from
// the connection.
type resumeReader struct {
	b    [1]byte
	have bool
	r    io.Reader
}

func (p *resumeReader) Read(q []byte) (int, error) {
	if !p.have {
		return p.r.Read(q)
	}
	if len(q) == 0 {
		return 0, nil
	}
	q[0] = p.b[0]
	p.have = false
	return 1, nil
}

// releaseReader gives a TLS session's reader back to the pool when it
// holds nothing unread.
func (ss *session) releaseReader() {
	if ss.br != nil && ss.tls.TLS && ss.br.Buffered() == 0 {
		ss.putReader()
	}
}

// resume waits for the next command after releaseReader, without a
// buffer, and takes a reader again.
func (ss *session) resume() error {
	n, err := ss.conn.Read(ss.pending.b[:])
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	// An error with the byte (close_notify right behind it) comes back
	// from the connection's next read.
	ss.pending.have, ss.pending.r = true, ss.conn
	ss.br = ss.getReader(&ss.pending)
	return nil
}
