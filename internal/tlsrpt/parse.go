package tlsrpt

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"sync"
	"time"
)

// Limits on received reports, which are untrusted input: checked before
// and after decompression, so a gzip bomb is refused after reading at
// most MaxJSON bytes of it.
const (
	MaxMail       = 4 << 20  // bytes of a report mail read
	MaxCompressed = 1 << 20  // bytes of the gzip attachment
	MaxJSON       = 16 << 20 // bytes of the JSON after gunzip
	maxPolicies   = 10000
	maxDetails    = 10000
)

// ErrNotReport says a message is not a TLS-RPT report mail.
var ErrNotReport = errors.New("not a TLS-RPT report (multipart/report; report-type=tlsrpt)")

// IsReportMail reports whether a message header says the message is a
// TLS-RPT report (RFC 8460 §5.3).
func IsReportMail(h mail.Header) bool {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "multipart/report" && strings.EqualFold(params["report-type"], "tlsrpt")
}

// ReadReportMail reads a message whose header (in its first 64 KiB) says
// it is a TLS-RPT report, at most MaxMail bytes of it; ok is false, and
// little is read, for any other message. The server calls this for every
// local delivery with the record store on, so the usual answer is cheap:
// the first 4 KiB are read into a pooled buffer, and a message whose
// header ends there without the bytes "multipart/report" (in any case) is
// no report — nothing parsed, nothing allocated. Otherwise the header is
// parsed through a small buffer, keeping what was read in case the rest
// is wanted.
func ReadReportMail(r io.Reader) (data []byte, ok bool) {
	bp := sniffPool.Get().(*[sniffSize]byte)
	n, err := io.ReadFull(r, bp[:])
	head := bp[:n]
	whole := err == io.EOF || err == io.ErrUnexpectedEOF // the message is all in head
	h := head
	if e := headerEnd(head); e >= 0 {
		h = head[:e]
	}
	if (err != nil && !whole) || ((whole || len(h) < len(head)) && !hasReportType(h)) {
		sniffPool.Put(bp)
		return nil, false
	}
	first := bytes.Clone(head)
	sniffPool.Put(bp)
	seen := bytes.NewBuffer(bytes.Clone(first))
	lr := io.LimitReader(r, MaxMail-int64(n))
	br := bufio.NewReaderSize(io.LimitReader(io.MultiReader(bytes.NewReader(first), io.TeeReader(lr, seen)), 64*1024), 4096)
	m, err := mail.ReadMessage(br)
	if err != nil || !IsReportMail(m.Header) {
		return nil, false
	}
	// seen holds everything read from r so far (the header and what br
	// read ahead of it); the rest follows.
	if _, err := io.Copy(seen, lr); err != nil {
		return nil, false
	}
	return seen.Bytes(), true
}

// sniffSize is how much of a message ReadReportMail reads first.
const sniffSize = 4096

var sniffPool = sync.Pool{New: func() any { return new([sniffSize]byte) }}

// headerEnd is the index in b of the empty line that ends a message
// header (as net/textproto reads it: a line that is empty once its LF or
// CRLF is removed), or -1. A message starting with its empty line is not
// seen; that only costs a parse.
func headerEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if rest := b[i:]; len(rest) > 0 && rest[0] == '\n' || len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
			return i
		}
	}
}

// hasReportType reports whether a raw header holds "multipart/report" in
// any case as mime.ParseMediaType lower-cases it. A Content-Type field's
// media type is one token in the raw header (folding would put a space
// into it, which mime.ParseMediaType refuses), lower-cased by
// strings.ToLower: ASCII case, and the one non-ASCII letter that lowers
// to a letter of "multipart/report", U+0130 (İ, lowered to "i").
func hasReportType(h []byte) bool {
	const after = "report"
	for i := 0; ; {
		j := bytes.IndexByte(h[i:], '/')
		if j < 0 {
			return false
		}
		i += j
		if i+1+len(after) <= len(h) && equalLower(h[i+1:i+1+len(after)], after) && isMultipart(h[:i]) {
			return true
		}
		i++
	}
}

// isMultipart reports whether b ends in "multipart" as hasReportType
// takes it.
func isMultipart(b []byte) bool {
	const mult, part = "mult", "part"
	if len(b) < len(part) || !equalLower(b[len(b)-len(part):], part) {
		return false
	}
	b = b[:len(b)-len(part)]
	switch {
	case len(b) >= 1 && (b[len(b)-1] == 'i' || b[len(b)-1] == 'I'):
		b = b[:len(b)-1]
	case len(b) >= 2 && b[len(b)-2] == 0xc4 && b[len(b)-1] == 0xb0: // U+0130
		b = b[:len(b)-2]
	default:
		return false
	}
	return len(b) >= len(mult) && equalLower(b[len(b)-len(mult):], mult)
}

// equalLower reports whether b is lower (lower-case ASCII) in any ASCII
// case.
func equalLower(b []byte, lower string) bool {
	for i := range len(lower) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// ParseMail reads a TLS-RPT report mail (RFC 8460 §5.3) and returns its
// report, validated. At most MaxMail bytes of r are read.
func ParseMail(r io.Reader) (*Report, error) {
	m, err := mail.ReadMessage(bufio.NewReader(io.LimitReader(r, MaxMail)))
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: report mail: %w", err)
	}
	if !IsReportMail(m.Header) {
		return nil, ErrNotReport
	}
	_, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if params["boundary"] == "" {
		return nil, errors.New("tlsrpt: report mail: multipart without a boundary")
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return nil, errors.New("tlsrpt: report mail: no application/tlsrpt+gzip or application/tlsrpt+json part")
		}
		if err != nil {
			return nil, fmt.Errorf("tlsrpt: report mail: %w", err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if ct != "application/tlsrpt+gzip" && ct != "application/tlsrpt+json" {
			continue
		}
		var body io.Reader = p
		switch strings.ToLower(strings.TrimSpace(p.Header.Get("Content-Transfer-Encoding"))) {
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, &skipSpace{r: p})
		case "quoted-printable":
			body = quotedprintable.NewReader(p)
		}
		raw, err := io.ReadAll(io.LimitReader(body, MaxCompressed+1))
		if err != nil {
			return nil, fmt.Errorf("tlsrpt: report attachment: %w", err)
		}
		if len(raw) > MaxCompressed {
			return nil, fmt.Errorf("tlsrpt: report attachment larger than %d bytes", MaxCompressed)
		}
		if ct == "application/tlsrpt+gzip" {
			return ParseGzip(raw)
		}
		return ParseJSON(raw)
	}
}

// skipSpace drops the line breaks and blanks of base64 text.
type skipSpace struct{ r io.Reader }

func (s *skipSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// ParseGzip decompresses (at most MaxJSON bytes) and parses a report.
func ParseGzip(gz []byte) (*Report, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: gzip: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, MaxJSON+1))
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: gzip: %w", err)
	}
	if len(b) > MaxJSON {
		return nil, fmt.Errorf("tlsrpt: report larger than %d bytes once decompressed (refused)", MaxJSON)
	}
	return ParseJSON(b)
}

// ParseJSON parses and validates an RFC 8460 §4 report.
func ParseJSON(b []byte) (*Report, error) {
	if len(b) > MaxJSON {
		return nil, fmt.Errorf("tlsrpt: report larger than %d bytes", MaxJSON)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("tlsrpt: report JSON: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("tlsrpt: report %q: %w", r.ReportID, err)
	}
	return &r, nil
}

var policyTypes = map[string]bool{PolicySTS: true, PolicyTLSA: true, PolicyNoPolicyFound: true}

// validate checks the fields RFC 8460 §4.4 requires and sets the period.
func (r *Report) validate() error {
	if r.OrganizationName == "" || r.ReportID == "" {
		return errors.New("organization-name and report-id are required")
	}
	var err error
	if r.begin, err = time.Parse(time.RFC3339, r.DateRange.Start); err != nil {
		return fmt.Errorf("date-range start-datetime: %w", err)
	}
	if r.end, err = time.Parse(time.RFC3339, r.DateRange.End); err != nil {
		return fmt.Errorf("date-range end-datetime: %w", err)
	}
	if r.end.Before(r.begin) {
		return errors.New("date-range ends before it starts")
	}
	if len(r.Policies) == 0 || len(r.Policies) > maxPolicies {
		return fmt.Errorf("%d policies (want 1 to %d)", len(r.Policies), maxPolicies)
	}
	for i, p := range r.Policies {
		if !policyTypes[p.Policy.Type] {
			return fmt.Errorf("policy %d: policy-type %q (want sts, tlsa or no-policy-found)", i, p.Policy.Type)
		}
		if p.Policy.Domain == "" {
			return fmt.Errorf("policy %d: policy-domain is required", i)
		}
		if p.Summary.Success < 0 || p.Summary.Failure < 0 {
			return fmt.Errorf("policy %d: negative session counts", i)
		}
		if len(p.FailureDetails) > maxDetails {
			return fmt.Errorf("policy %d: %d failure details (at most %d)", i, len(p.FailureDetails), maxDetails)
		}
		for j, f := range p.FailureDetails {
			if f.ResultType == "" || f.Count < 0 {
				return fmt.Errorf("policy %d failure %d: result-type and a non-negative failed-session-count are required", i, j)
			}
		}
	}
	return nil
}

// Period is the report's date range as times.
func (r *Report) Period() (begin, end time.Time) { return r.begin, r.end }
