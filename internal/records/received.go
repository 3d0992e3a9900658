package records

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

const receivedSchema = `
CREATE TABLE IF NOT EXISTS tlsrpt_received (
	received_t INTEGER NOT NULL,  -- Unix milliseconds
	org TEXT NOT NULL,
	report_id TEXT NOT NULL,
	seq INTEGER NOT NULL,         -- the policy's place in the report
	contact TEXT NOT NULL,
	begin_t INTEGER NOT NULL,     -- Unix seconds
	end_t INTEGER NOT NULL,
	domain TEXT NOT NULL,
	policy_type TEXT NOT NULL,
	mx TEXT NOT NULL,             -- JSON list of mx patterns
	success INTEGER NOT NULL,
	failure INTEGER NOT NULL,
	failures TEXT NOT NULL,       -- JSON list of ReceivedFailure
	PRIMARY KEY (org, report_id, seq)
);
CREATE INDEX IF NOT EXISTS tlsrpt_received_t ON tlsrpt_received(received_t);
`

// ReceivedPolicy is one policy's results in a TLS-RPT report another
// organisation sent us: what it saw when delivering to our MX hosts.
type ReceivedPolicy struct {
	Received time.Time         `json:"received"`
	Org      string            `json:"organization"`
	ReportID string            `json:"report_id"`
	Contact  string            `json:"contact,omitempty"`
	Begin    time.Time         `json:"begin"`
	End      time.Time         `json:"end"`
	Domain   string            `json:"policy_domain"`
	Type     string            `json:"policy_type"`
	MX       []string          `json:"mx,omitempty"`
	Success  int               `json:"success"`
	Failure  int               `json:"failure"`
	Failures []ReceivedFailure `json:"failures,omitempty"`
}

// ReceivedFailure is one kind of failure a reporter saw.
type ReceivedFailure struct {
	ResultType string `json:"result_type"`
	SendingIP  string `json:"sending_mta_ip,omitempty"`
	MX         string `json:"receiving_mx,omitempty"`
	IP         string `json:"receiving_ip,omitempty"`
	Count      int    `json:"count"`
	Reason     string `json:"reason,omitempty"`
}

// AddReceived stores the policies of one received report; a report
// received again (same organisation and report ID) is kept once.
func (s *Store) AddReceived(ctx context.Context, pols []ReceivedPolicy) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("records: received report: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	for i, p := range pols {
		mx, _ := json.Marshal(p.MX)
		fs, _ := json.Marshal(p.Failures)
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO tlsrpt_received (received_t, org, report_id, seq, contact, begin_t, end_t,
			domain, policy_type, mx, success, failure, failures) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			p.Received.UnixMilli(), p.Org, p.ReportID, i, p.Contact, p.Begin.Unix(), p.End.Unix(), p.Domain, p.Type, string(mx),
			p.Success, p.Failure, string(fs)); err != nil {
			return fmt.Errorf("records: received report %s: %w", p.ReportID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("records: received report: %w", err)
	}
	return nil
}

// Received lists the report policies received in p, newest first.
func (s *Store) Received(ctx context.Context, p Period) ([]ReceivedPolicy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT received_t, org, report_id, contact, begin_t, end_t, domain, policy_type, mx, success, failure, failures
		FROM tlsrpt_received WHERE received_t >= ? AND received_t < ? ORDER BY received_t DESC, org, report_id, seq`, p.args()...)
	if err != nil {
		return nil, fmt.Errorf("records: received reports: %w", err)
	}
	defer rows.Close()
	var out []ReceivedPolicy
	for rows.Next() {
		var r ReceivedPolicy
		var rt, b, e int64
		var mx, fs string
		if err := rows.Scan(&rt, &r.Org, &r.ReportID, &r.Contact, &b, &e, &r.Domain, &r.Type, &mx, &r.Success, &r.Failure, &fs); err != nil {
			return nil, fmt.Errorf("records: received reports: %w", err)
		}
		r.Received, r.Begin, r.End = time.UnixMilli(rt).UTC(), time.Unix(b, 0).UTC(), time.Unix(e, 0).UTC()
		_ = json.Unmarshal([]byte(mx), &r.MX)
		_ = json.Unmarshal([]byte(fs), &r.Failures)
		out = append(out, r)
	}
	return out, rows.Err()
}
