package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/records"
)

// Sender sends the aggregate reports: by mail through Queue for mailto:
// destinations, by HTTPS POST for https: ones.
type Sender struct {
	Store     *records.Store
	Resolver  *dnsx.Resolver
	Submitter string // our host name: the report's organization and contact
	// Queue queues a report mail durably for delivery.
	Queue func(from, to string, msg []byte) error
	HTTP  *http.Client // for https: destinations
	Log   *slog.Logger
	Now   func() time.Time // the clock (time.Now if nil)
}

// Send sends the reports of day ("2006-01-02", UTC) that were not sent
// yet: for each domain, the sessions from the end of the last report sent
// for that day to the end of the day, or to now for today. It returns how
// many reports went out (one per destination).
func (s *Sender) Send(ctx context.Context, day string) (int, error) {
	if s.Resolver == nil {
		return 0, errors.New("TLS-RPT needs a DNS resolver")
	}
	start, err := time.Parse("2006-01-02", day)
	if err != nil {
		return 0, fmt.Errorf("tlsrpt: day %q: %w", day, err)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	end := start.Add(24 * time.Hour)
	if t := now().Truncate(time.Second); t.Before(end) {
		end = t // a partial day covers only what has happened
	}
	domains, err := s.Store.TLSRPTDomains(ctx, records.Period{Since: start, Until: end})
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, domain := range domains {
		begin, err := s.Store.ReportedUntil(ctx, domain, start, end)
		if err != nil {
			return sent, err
		}
		if !begin.Before(end) {
			continue
		}
		rep, ok, err := Build(ctx, s.Store, s.Submitter, domain, records.Period{Since: begin, Until: end})
		if err != nil {
			return sent, err
		}
		if !ok {
			continue
		}
		rua, err := s.Rua(ctx, domain)
		if err != nil {
			continue // the domain asks for no reports
		}
		gz, err := Gzip(rep)
		if err != nil {
			return sent, err
		}
		for _, u := range rua {
			if err := s.deliver(ctx, u, domain, rep, gz); err != nil {
				s.Log.Warn("tlsrpt: report not sent", "domain", domain, "rua", u, "err", err)
				continue
			}
			if err := s.Store.MarkSent(ctx, records.SentReport{ReportID: rep.ReportID, Domain: domain, Begin: begin, End: end, Rua: u, Sent: now()}); err != nil {
				return sent, err
			}
			sent++
			s.Log.Info("tlsrpt: report sent", "domain", domain, "rua", u, "report_id", rep.ReportID)
		}
	}
	return sent, nil
}

func (s *Sender) deliver(ctx context.Context, rua, domain string, rep *Report, gz []byte) error {
	switch {
	case strings.HasPrefix(rua, "mailto:"):
		to := strings.TrimPrefix(rua, "mailto:")
		if i := strings.IndexByte(to, '?'); i >= 0 {
			to = to[:i]
		}
		msg, err := Mail(s.Submitter, domain, to, rep, gz, time.Now())
		if err != nil {
			return err
		}
		return s.Queue("tlsrpt-noreply@"+s.Submitter, to, msg)
	case strings.HasPrefix(rua, "https:"):
		client := s.HTTP
		if client == nil {
			client = &http.Client{Timeout: 30 * time.Second}
		}
		return Post(ctx, rua, gz, client)
	}
	return fmt.Errorf("unsupported rua %q", rua)
}

// Rua looks up the report destinations of a domain (_smtp._tls TXT).
func (s *Sender) Rua(ctx context.Context, domain string) ([]string, error) {
	txts, _, err := s.Resolver.LookupTXT(ctx, "_smtp._tls."+domain)
	if err != nil {
		return nil, err
	}
	for _, txt := range txts {
		if !strings.HasPrefix(txt, "v=TLSRPTv1") {
			continue
		}
		for _, f := range strings.Split(txt, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(f), "rua="); ok {
				var out []string
				for _, u := range strings.Split(v, ",") {
					out = append(out, strings.TrimSpace(u))
				}
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("no v=TLSRPTv1 record with rua at _smtp._tls.%s", domain)
}

// Daily sends yesterday's reports shortly after midnight UTC until ctx
// ends.
func (s *Sender) Daily(ctx context.Context) {
	for {
		now := time.Now().UTC()
		next := time.Date(now.Year(), now.Month(), now.Day(), 0, 5, 0, 0, time.UTC).Add(24 * time.Hour)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
			if _, err := s.Send(ctx, next.Add(-24*time.Hour).Format("2006-01-02")); err != nil {
				s.Log.Warn("tlsrpt: daily reports", "err", err)
			}
		}
	}
}
