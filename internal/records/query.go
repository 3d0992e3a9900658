package records

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Period is a half-open time range [Since, Until).
type Period struct {
	Since, Until time.Time
}

func (p Period) args() []any { return []any{p.Since.UnixMilli(), p.Until.UnixMilli()} }

// DomainStats summarises the outbound attempts to one destination domain.
// TLS-RPT report deliveries are counted too: they are mail we sent.
type DomainStats struct {
	Domain    string `json:"domain"`
	Attempts  int    `json:"attempts"`  // delivery attempts (one per message and host tried)
	Delivered int    `json:"delivered"` // messages delivered
	TLS       int    `json:"tls"`       // attempts over TLS
	Verified  int    `json:"verified"`  // attempts with a verified peer (PKIX, DANE, fingerprint)
	DANE      int    `json:"dane"`      // attempts verified by DANE
	MTASTS    int    `json:"mta_sts"`   // attempts under an enforced MTA-STS policy
	Plaintext int    `json:"plaintext"` // messages delivered without TLS
	Failed    int    `json:"failed"`    // attempts deferred or failed
}

// Outbound summarises outbound attempts by destination domain.
func (s *Store) Outbound(ctx context.Context, p Period) ([]DomainStats, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT domain, COUNT(*),
		SUM(outcome = 'delivered'), SUM(tls), SUM(verified), SUM(verified AND method LIKE 'dane%'), SUM(mta_sts),
		SUM(outcome = 'delivered' AND NOT tls), SUM(outcome IN ('deferred', 'failed'))
		FROM records WHERE dir = 'out' AND t >= ? AND t < ? GROUP BY domain ORDER BY domain`, p.args()...)
	if err != nil {
		return nil, fmt.Errorf("records: outbound: %w", err)
	}
	defer rows.Close()
	var out []DomainStats
	for rows.Next() {
		var d DomainStats
		if err := rows.Scan(&d.Domain, &d.Attempts, &d.Delivered, &d.TLS, &d.Verified, &d.DANE, &d.MTASTS, &d.Plaintext, &d.Failed); err != nil {
			return nil, fmt.Errorf("records: outbound: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Delivery is one outbound attempt, as listed for plaintext deliveries.
type Delivery struct {
	Time   time.Time `json:"time"`
	Domain string    `json:"domain"`
	MX     string    `json:"mx"`
	IP     string    `json:"ip"`
	Level  string    `json:"level"`
	Reason string    `json:"reason,omitempty"`
}

// Plaintext lists the messages delivered without TLS, newest first (at
// most limit).
func (s *Store) Plaintext(ctx context.Context, p Period, limit int) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t, domain, peer_name, peer_ip, level, reason FROM records
		WHERE dir = 'out' AND t >= ? AND t < ? AND outcome = 'delivered' AND NOT tls ORDER BY t DESC LIMIT ?`,
		append(p.args(), limit)...)
	if err != nil {
		return nil, fmt.Errorf("records: plaintext deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var ms int64
		if err := rows.Scan(&ms, &d.Domain, &d.MX, &d.IP, &d.Level, &d.Reason); err != nil {
			return nil, fmt.Errorf("records: plaintext deliveries: %w", err)
		}
		d.Time = time.UnixMilli(ms).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// TLSMix counts inbound sessions by service, TLS protocol, cipher and
// key-exchange group ("" protocol: plaintext).
type TLSMix struct {
	Service     string `json:"service"`
	Protocol    string `json:"protocol"`
	Cipher      string `json:"cipher"`
	Group       string `json:"group"`
	Sessions    int    `json:"sessions"`
	Messages    int    `json:"messages"`
	PostQuantum int    `json:"post_quantum"` // sessions with a hybrid post-quantum key exchange
	ClientCerts int    `json:"client_certs"` // sessions where the client sent a certificate
}

// Inbound counts inbound sessions by service, protocol, cipher and group.
func (s *Store) Inbound(ctx context.Context, p Period) ([]TLSMix, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT service, protocol, cipher, grp, COUNT(*), SUM(messages), SUM(pq), SUM(peer_dn != '')
		FROM records WHERE dir = 'in' AND t >= ? AND t < ?
		GROUP BY service, protocol, cipher, grp ORDER BY service, COUNT(*) DESC, protocol, cipher, grp`, p.args()...)
	if err != nil {
		return nil, fmt.Errorf("records: inbound: %w", err)
	}
	defer rows.Close()
	var out []TLSMix
	for rows.Next() {
		var m TLSMix
		if err := rows.Scan(&m.Service, &m.Protocol, &m.Cipher, &m.Group, &m.Sessions, &m.Messages, &m.PostQuantum, &m.ClientCerts); err != nil {
			return nil, fmt.Errorf("records: inbound: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Failure counts records that did not end well, by direction, outcome and
// reason.
type Failure struct {
	Direction Direction `json:"direction"`
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason"`
	Count     int       `json:"count"`
	Domains   int       `json:"domains"` // distinct domains (outbound) or HELO names (inbound)
}

// Failures counts failed sessions and attempts by reason.
func (s *Store) Failures(ctx context.Context, p Period) ([]Failure, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT dir, outcome, reason, COUNT(*), COUNT(DISTINCT domain)
		FROM records WHERE t >= ? AND t < ? AND outcome IN ('deferred', 'failed')
		GROUP BY dir, outcome, reason ORDER BY COUNT(*) DESC, dir, reason`, p.args()...)
	if err != nil {
		return nil, fmt.Errorf("records: failures: %w", err)
	}
	defer rows.Close()
	var out []Failure
	for rows.Next() {
		var f Failure
		var dir string
		if err := rows.Scan(&dir, &f.Outcome, &f.Reason, &f.Count, &f.Domains); err != nil {
			return nil, fmt.Errorf("records: failures: %w", err)
		}
		f.Direction = Direction(dir)
		out = append(out, f)
	}
	return out, rows.Err()
}

// PolicyResult is what TLS-RPT reports for one policy of a domain: the
// successful sessions and the failed ones by mx, address and reason.
// Report deliveries are left out (RFC 8460 §3).
type PolicyResult struct {
	Domain     string
	Type       string // sts, tlsa, no-policy-found
	Strings    []string
	MXPatterns []string
	Success    int
	Failures   []PolicyFailure
}

// PolicyFailure is one group of failed sessions.
type PolicyFailure struct {
	MX, IP, LocalIP, Reason string
	Count                   int
}

// TLSRPT gathers the TLS-RPT results of domain in p: attempts that got TLS
// meeting their policy count as successes; those marked TLSFailure as
// failures. Attempts that failed for other reasons (no connection, a 4xx
// reply) are no TLS sessions and are not counted.
func (s *Store) TLSRPT(ctx context.Context, domain string, p Period) ([]PolicyResult, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT policy_type, policy_strings, mx_patterns, tls_failure,
		CASE WHEN tls_failure THEN peer_name ELSE '' END, CASE WHEN tls_failure THEN peer_ip ELSE '' END,
		CASE WHEN tls_failure THEN local_ip ELSE '' END, CASE WHEN tls_failure THEN reason ELSE '' END, COUNT(*)
		FROM records WHERE dir = 'out' AND domain = ? AND t >= ? AND t < ? AND NOT report AND policy_type != ''
		AND (tls_failure OR tls)
		GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8`, append([]any{domain}, p.args()...)...)
	if err != nil {
		return nil, fmt.Errorf("records: tlsrpt %s: %w", domain, err)
	}
	defer rows.Close()
	var out []PolicyResult
	for rows.Next() {
		var typ, strs, mxp string
		var fail bool
		var f PolicyFailure
		if err := rows.Scan(&typ, &strs, &mxp, &fail, &f.MX, &f.IP, &f.LocalIP, &f.Reason, &f.Count); err != nil {
			return nil, fmt.Errorf("records: tlsrpt %s: %w", domain, err)
		}
		if n := len(out); n == 0 || out[n-1].Type != typ || strings.Join(out[n-1].Strings, "\n") != strs || strings.Join(out[n-1].MXPatterns, "\n") != mxp {
			out = append(out, PolicyResult{Domain: domain, Type: typ, Strings: lines(strs), MXPatterns: lines(mxp)})
		}
		r := &out[len(out)-1]
		if fail {
			r.Failures = append(r.Failures, f)
		} else {
			r.Success += f.Count
		}
	}
	return out, rows.Err()
}

func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TLSRPTDomains lists the domains with TLS-RPT results in p.
func (s *Store) TLSRPTDomains(ctx context.Context, p Period) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT domain FROM records
		WHERE dir = 'out' AND t >= ? AND t < ? AND NOT report AND policy_type != '' ORDER BY domain`, p.args()...)
	if err != nil {
		return nil, fmt.Errorf("records: tlsrpt domains: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SentReport is a TLS-RPT report that was sent.
type SentReport struct {
	ReportID   string
	Domain     string
	Begin, End time.Time // [Begin, End)
	Rua        string
	Sent       time.Time
}

// MarkSent records that a report was sent (or queued) to rua. A second
// mark of the same report ID and rua is an error.
func (s *Store) MarkSent(ctx context.Context, r SentReport) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO tlsrpt_sent (report_id, domain, begin_t, end_t, rua, sent_t) VALUES (?,?,?,?,?,?)`,
		r.ReportID, r.Domain, r.Begin.Unix(), r.End.Unix(), r.Rua, r.Sent.Unix())
	if err != nil {
		return fmt.Errorf("records: mark report %s sent: %w", r.ReportID, err)
	}
	return nil
}

// ReportedUntil is the end of the last report sent for domain that ends
// after since and no later than until; since itself when there is none.
// The next report of the period starts there, so no session is reported
// twice and no report ID repeats.
func (s *Store) ReportedUntil(ctx context.Context, domain string, since, until time.Time) (time.Time, error) {
	var end *int64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(end_t) FROM tlsrpt_sent WHERE domain = ? AND end_t > ? AND end_t <= ?`,
		domain, since.Unix(), until.Unix()).Scan(&end)
	if err != nil {
		return since, fmt.Errorf("records: reports sent for %s: %w", domain, err)
	}
	if end == nil {
		return since, nil
	}
	return time.Unix(*end, 0).UTC(), nil
}

// Sent lists the reports sent for domain, oldest first.
func (s *Store) Sent(ctx context.Context, domain string) ([]SentReport, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT report_id, begin_t, end_t, rua, sent_t FROM tlsrpt_sent WHERE domain = ? ORDER BY end_t, rua`, domain)
	if err != nil {
		return nil, fmt.Errorf("records: reports sent for %s: %w", domain, err)
	}
	defer rows.Close()
	var out []SentReport
	for rows.Next() {
		var r SentReport
		var b, e, st int64
		if err := rows.Scan(&r.ReportID, &b, &e, &r.Rua, &st); err != nil {
			return nil, err
		}
		r.Domain, r.Begin, r.End, r.Sent = domain, time.Unix(b, 0).UTC(), time.Unix(e, 0).UTC(), time.Unix(st, 0).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
