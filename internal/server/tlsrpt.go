package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/remote"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// reporter sends the TLS-RPT aggregate reports of a day: by mail through
// our own queue for mailto: destinations, by HTTPS POST for https: ones.
type reporter struct {
	rpt     *remote.TLSRPT
	q       *queue.Queue
	resolve func(addr string) (queue.Recipient, bool)
	roots   *x509.CertPool
	log     *slog.Logger
	host    string
}

// send reports day ("2006-01-02") to every domain that publishes a rua.
func (r *reporter) send(ctx context.Context, day string) (int, error) {
	if r.rpt == nil || r.rpt.Resolver == nil {
		return 0, fmt.Errorf("TLS-RPT needs a DNS resolver")
	}
	sent := 0
	for _, domain := range r.rpt.Domains(day) {
		rua, err := r.rpt.Rua(ctx, domain)
		if err != nil {
			continue // the domain asks for no reports
		}
		rep, ok := r.rpt.Build(day, domain)
		if !ok {
			continue
		}
		gz, err := remote.Gzip(rep)
		if err != nil {
			return sent, err
		}
		for _, u := range rua {
			if err := r.deliver(ctx, u, domain, rep, gz); err != nil {
				r.log.Warn("tlsrpt: report not sent", "domain", domain, "rua", u, "err", err)
				continue
			}
			sent++
			r.log.Info("tlsrpt: report sent", "domain", domain, "rua", u, "report_id", rep.ReportID)
		}
	}
	return sent, nil
}

func (r *reporter) deliver(ctx context.Context, rua, domain string, rep *remote.Report, gz []byte) error {
	switch {
	case strings.HasPrefix(rua, "mailto:"):
		to := strings.TrimPrefix(rua, "mailto:")
		from := "tlsrpt-noreply@" + r.host
		start := strings.NewReplacer("-", "", ":", "").Replace(rep.DateRange.Start)
		name := fmt.Sprintf("%s!%s!%s!%s.json.gz", r.host, domain, start[:8], start[:8])
		msg, err := smtpclient.Compose(smtpclient.Message{
			From: from, To: []string{to},
			Subject:     fmt.Sprintf("Report Domain: %s Submitter: %s Report-ID: <%s>", domain, r.host, rep.ReportID),
			Text:        "This is an aggregate TLS report (RFC 8460) from " + r.host + ".\n",
			Headers:     [][2]string{{"TLS-Report-Domain", domain}, {"TLS-Report-Submitter", r.host}},
			Attachments: []smtpclient.Attachment{{Name: name, ContentType: "application/tlsrpt+gzip", Data: gz}},
		})
		if err != nil {
			return err
		}
		rcpt := queue.Recipient{Addr: to}
		if res, ok := r.resolve(to); ok {
			rcpt = res
		}
		w, err := r.q.NewMessage(queue.Envelope{From: from, Recipients: []queue.Recipient{rcpt}})
		if err != nil {
			return err
		}
		if _, err := w.Write(msg); err != nil {
			w.Abort()
			return err
		}
		_, err = w.Commit()
		return err
	case strings.HasPrefix(rua, "https:"):
		client := &http.Client{Timeout: 30 * time.Second}
		if r.roots != nil {
			client.Transport = &http.Transport{TLSClientConfig: tlsConfigWithRoots(r.roots)}
		}
		return remote.Post(ctx, rua, gz, client)
	}
	return fmt.Errorf("unsupported rua %q", rua)
}

// daily sends yesterday's reports shortly after midnight UTC.
func (r *reporter) daily(ctx context.Context) {
	for {
		now := time.Now().UTC()
		next := time.Date(now.Year(), now.Month(), now.Day(), 0, 5, 0, 0, time.UTC).Add(24 * time.Hour)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
			if _, err := r.send(ctx, next.Add(-24*time.Hour).Format("2006-01-02")); err != nil {
				r.log.Warn("tlsrpt: daily reports", "err", err)
			}
		}
	}
}
