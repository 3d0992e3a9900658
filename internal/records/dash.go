package records

import (
	"context"
	"fmt"
	"time"
)

// Outbound TLS levels of a delivery attempt, as the dashboard stacks
// them: how well the delivered message was protected, or that the
// attempt failed.
const (
	LevelDANE      = "dane"      // delivered, verified by DANE
	LevelMTASTS    = "mta-sts"   // delivered, under an enforced MTA-STS policy
	LevelVerified  = "verified"  // delivered, the peer verified otherwise (PKIX, fingerprint)
	LevelEncrypted = "encrypted" // delivered over TLS without verification
	LevelPlaintext = "plaintext" // delivered without TLS
	LevelFailed    = "failed"    // deferred or failed
)

// OutboundLevels lists the outbound levels, best first.
var OutboundLevels = []string{LevelDANE, LevelMTASTS, LevelVerified, LevelEncrypted, LevelPlaintext, LevelFailed}

// levelSQL classifies an outbound record as one of OutboundLevels.
const levelSQL = `CASE WHEN outcome != 'delivered' THEN 'failed'
	WHEN NOT tls THEN 'plaintext'
	WHEN verified AND method LIKE 'dane%' THEN 'dane'
	WHEN mta_sts AND verified THEN 'mta-sts'
	WHEN verified THEN 'verified'
	ELSE 'encrypted' END`

// DayCount is a count of one day (UTC) and one category.
type DayCount struct {
	Day   time.Time `json:"day"` // midnight UTC
	Key   string    `json:"key"`
	Count int       `json:"count"`
}

const dayMS = 24 * 60 * 60 * 1000

// OutboundDaily counts the outbound attempts of p by UTC day and level
// (one of OutboundLevels), oldest day first.
func (s *Store) OutboundDaily(ctx context.Context, p Period) ([]DayCount, error) {
	return s.daily(ctx, "outbound daily", `SELECT t / `+fmt.Sprint(dayMS)+`, `+levelSQL+`, COUNT(*)
		FROM records WHERE dir = 'out' AND t >= ? AND t < ? GROUP BY 1, 2 ORDER BY 1, 2`, p)
}

// Inbound mix categories by day: plaintext, the TLS protocol name, and
// that name with " PQ" for a post-quantum key exchange.
const inboundKeySQL = `CASE WHEN protocol = '' THEN 'plaintext' WHEN pq THEN protocol || ' PQ' ELSE protocol END`

// InboundDaily counts the inbound sessions of p by UTC day and mix:
// "plaintext", the TLS protocol ("TLS 1.2"), or the protocol with " PQ"
// when the key exchange was post-quantum ("TLS 1.3 PQ").
func (s *Store) InboundDaily(ctx context.Context, p Period) ([]DayCount, error) {
	return s.daily(ctx, "inbound daily", `SELECT t / `+fmt.Sprint(dayMS)+`, `+inboundKeySQL+`, COUNT(*)
		FROM records WHERE dir = 'in' AND t >= ? AND t < ? GROUP BY 1, 2 ORDER BY 1, 2`, p)
}

func (s *Store) daily(ctx context.Context, what, query string, p Period) ([]DayCount, error) {
	rows, err := s.db.QueryContext(ctx, query, p.args()...)
	if err != nil {
		return nil, fmt.Errorf("records: %s: %w", what, err)
	}
	defer rows.Close()
	var out []DayCount
	for rows.Next() {
		var d DayCount
		var day int64
		if err := rows.Scan(&day, &d.Key, &d.Count); err != nil {
			return nil, fmt.Errorf("records: %s: %w", what, err)
		}
		d.Day = time.UnixMilli(day * dayMS).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// NoTLSDomain is a destination domain that received mail without TLS.
type NoTLSDomain struct {
	Domain    string    `json:"domain"`
	Plaintext int       `json:"plaintext"` // messages delivered without TLS
	Attempts  int       `json:"attempts"`  // all attempts to the domain
	Last      time.Time `json:"last"`      // the last plaintext delivery
	MX        string    `json:"mx"`        // the MX host of the last one
}

// NoTLS lists the destination domains with plaintext deliveries in p, the
// most plaintext first (at most limit).
func (s *Store) NoTLS(ctx context.Context, p Period, limit int) ([]NoTLSDomain, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT domain, SUM(outcome = 'delivered' AND NOT tls), COUNT(*),
		MAX(CASE WHEN outcome = 'delivered' AND NOT tls THEN t ELSE 0 END)
		FROM records WHERE dir = 'out' AND t >= ? AND t < ? GROUP BY domain
		HAVING SUM(outcome = 'delivered' AND NOT tls) > 0 ORDER BY 2 DESC, domain LIMIT ?`, append(p.args(), limit)...)
	if err != nil {
		return nil, fmt.Errorf("records: domains without tls: %w", err)
	}
	var out []NoTLSDomain
	for rows.Next() {
		var d NoTLSDomain
		var last int64
		if err := rows.Scan(&d.Domain, &d.Plaintext, &d.Attempts, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("records: domains without tls: %w", err)
		}
		d.Last = time.UnixMilli(last).UTC()
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("records: domains without tls: %w", err)
	}
	for i := range out {
		err := s.db.QueryRowContext(ctx, `SELECT peer_name FROM records WHERE dir = 'out' AND domain = ? AND t = ?
			AND outcome = 'delivered' AND NOT tls LIMIT 1`, out[i].Domain, out[i].Last.UnixMilli()).Scan(&out[i].MX)
		if err != nil {
			return nil, fmt.Errorf("records: domains without tls: %s: %w", out[i].Domain, err)
		}
	}
	return out, nil
}

// PolicyFailureRecord is one outbound attempt that failed its TLS policy.
type PolicyFailureRecord struct {
	Time   time.Time `json:"time"`
	Domain string    `json:"domain"`
	MX     string    `json:"mx"`
	IP     string    `json:"ip"`
	Policy string    `json:"policy"` // the TLS-RPT policy type: sts, tlsa, no-policy-found
	Level  string    `json:"level"`
	Reason string    `json:"reason"`
}

// PolicyFailures lists the outbound attempts of p that failed their TLS
// policy (STARTTLS missing, certificate or TLSA not matching), newest
// first (at most limit).
func (s *Store) PolicyFailures(ctx context.Context, p Period, limit int) ([]PolicyFailureRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT t, domain, peer_name, peer_ip, policy_type, level, reason FROM records
		WHERE dir = 'out' AND t >= ? AND t < ? AND tls_failure ORDER BY t DESC, id DESC LIMIT ?`, append(p.args(), limit)...)
	if err != nil {
		return nil, fmt.Errorf("records: policy failures: %w", err)
	}
	defer rows.Close()
	var out []PolicyFailureRecord
	for rows.Next() {
		var f PolicyFailureRecord
		var ms int64
		if err := rows.Scan(&ms, &f.Domain, &f.MX, &f.IP, &f.Policy, &f.Level, &f.Reason); err != nil {
			return nil, fmt.Errorf("records: policy failures: %w", err)
		}
		f.Time = time.UnixMilli(ms).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}
