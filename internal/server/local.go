package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// delivery is the queue's Deliverer: local recipients go to their Maildir
// (DATA/mail/USER), remote ones to outbound delivery.
type delivery struct {
	cfg    func() *config.Config
	log    *slog.Logger
	syncer *safeio.DirSyncer
}

func (d *delivery) Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	cfg := d.cfg()
	out := make([]queue.Outcome, 0, len(rcpts))
	for _, i := range rcpts {
		r := env.Recipients[i]
		if r.Local == "" {
			// Outbound delivery (MX, TLS policy) is not built yet: the
			// message stays queued and is retried with backoff.
			out = append(out, queue.Outcome{Rcpt: i, Reply: "4.4.0 outbound delivery is not available yet; message kept in the queue"})
			continue
		}
		out = append(out, d.local(cfg, env, i, open))
	}
	return out
}

// local delivers one recipient into its Maildir. The file name is derived
// from the queue ID and recipient index, so a retry after a crash finds
// the earlier copy and stores nothing twice.
func (d *delivery) local(cfg *config.Config, env *queue.Envelope, i int, open func() (io.ReadCloser, error)) queue.Outcome {
	r := env.Recipients[i]
	md, err := maildir.Create(cfg.Path("mail/" + r.Local))
	if err != nil {
		return queue.Outcome{Rcpt: i, Reply: "4.3.0 " + err.Error()}
	}
	rc, err := open()
	if err != nil {
		return queue.Outcome{Rcpt: i, Reply: "4.3.0 " + err.Error()}
	}
	defer rc.Close()
	head := fmt.Sprintf("Return-Path: <%s>\nDelivered-To: %s\n", env.From, r.Addr)
	name := maildir.UniqueName(env.Received.Unix(), fmt.Sprintf("%sR%d", env.ID, i), cfg.Hostname)
	stored, err := md.DeliverSync(name, io.MultiReader(strings.NewReader(head), newLFReader(rc)), d.syncer.Sync)
	if err != nil {
		return queue.Outcome{Rcpt: i, Reply: "4.3.0 " + err.Error()}
	}
	if !stored {
		return queue.Outcome{Rcpt: i, Delivered: true, Reply: "already in maildir " + r.Local + " (not stored twice)"}
	}
	return queue.Outcome{Rcpt: i, Delivered: true, Reply: "delivered to maildir " + r.Local}
}

// lfReader turns the CRLF line ends of a stored SMTP message into the LF
// that Maildir files use.
type lfReader struct {
	br *bufio.Reader
}

func newLFReader(r io.Reader) *lfReader { return &lfReader{br: bufio.NewReaderSize(r, 32*1024)} }

func (l *lfReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c, err := l.br.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if c == '\r' {
			if next, err := l.br.Peek(1); err == nil && next[0] == '\n' {
				continue
			}
		}
		p[n] = c
		n++
	}
	return n, nil
}
