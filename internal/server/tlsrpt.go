package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsrpt"
)

// reporter sends the TLS-RPT aggregate reports (internal/tlsrpt) from
// the record store: by mail through our own queue, by HTTPS POST.
type reporter struct {
	store  *records.Store // nil: the record store is off
	sender *tlsrpt.Sender
}

func newReporter(store *records.Store, resolver *dnsx.Resolver, webRoots *x509.CertPool, q *queue.Queue, resolve func(addr string) (queue.Recipient, bool), host string, log *slog.Logger) *reporter {
	s := &tlsrpt.Sender{Store: store, Resolver: resolver, Submitter: host, Log: log,
		HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: webRoots, MinVersion: tls.VersionTLS12}}},
		Queue: func(from, to string, msg []byte) error {
			rcpt := queue.Recipient{Addr: to}
			if res, ok := resolve(to); ok {
				rcpt = res
			}
			w, err := q.NewMessage(queue.Envelope{From: from, Recipients: []queue.Recipient{rcpt}})
			if err != nil {
				return err
			}
			if _, err := w.Write(msg); err != nil {
				w.Abort()
				return err
			}
			_, err = w.Commit()
			return err
		}}
	return &reporter{store: store, sender: s}
}

// send sends the reports of day ("2006-01-02") not sent yet.
func (r *reporter) send(ctx context.Context, day string) (int, error) {
	if r.store == nil {
		return 0, fmt.Errorf("TLS-RPT needs the record store ([records] enabled)")
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.store.Flush(fctx); err != nil { // the latest attempts count too
		return 0, fmt.Errorf("tlsrpt: waiting for the record store: %w", err)
	}
	return r.sender.Send(ctx, day)
}

// daily sends yesterday's reports shortly after midnight UTC.
func (r *reporter) daily(ctx context.Context) {
	if r.store != nil {
		r.sender.Daily(ctx)
	}
}

// systemRootsPlus is the system's roots with the certificates of caFile
// added: MTA-STS policy fetches and HTTPS report delivery go to public web
// servers, so a private CA for SMTP must not replace the public roots
// there.
func systemRootsPlus(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("outbound.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("outbound.ca_file %s: no certificates", caFile)
	}
	return pool, nil
}
