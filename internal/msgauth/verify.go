package msgauth

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// Resolver is the DNS a Verifier uses; *net.Resolver is one (tests point
// one at a local DNS server).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// Verifier checks inbound mail: DKIM, SPF and DMARC.
type Verifier struct {
	Host     string   // this host: the authserv-id of the header
	Resolver Resolver // nil: net.DefaultResolver
	// Timeout bounds all the DNS work for one message (default 30 s).
	Timeout time.Duration
}

// MaxSignatures is how many DKIM signatures of a message are checked.
const MaxSignatures = 5

// SPFLookupLimit is RFC 7208 §4.6.4's limit of DNS-querying mechanisms.
const SPFLookupLimit = 10

// Envelope is what the SMTP session knows of the message.
type Envelope struct {
	IP       net.IP
	Helo     string
	MailFrom string // "" for the null sender
}

// DKIMResult is the result of one signature.
type DKIMResult struct {
	Result string // pass, fail, permerror, temperror
	Domain string // d=
	Reason string
}

// Results is the outcome of the checks.
type Results struct {
	DKIM       []DKIMResult // empty: no signature (dkim=none)
	SPF        string       // pass, fail, softfail, neutral, none, permerror, temperror
	SPFDomain  string       // the domain checked (MAIL FROM's, else HELO's)
	SPFReason  string
	DMARC      string // pass, fail, none, permerror, temperror
	FromDomain string
	Policy     string // the DMARC policy that applies: none, quarantine, reject ("" if no record)
	DMARCNote  string
}

// Reject reports whether DMARC failed for a domain asking to reject.
func (r *Results) Reject() bool { return r.DMARC == "fail" && r.Policy == "reject" }

// Check runs the checks on a complete message.
func (v *Verifier) Check(ctx context.Context, env Envelope, msg io.Reader) *Results {
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res Resolver = net.DefaultResolver
	if v.Resolver != nil {
		res = v.Resolver
	}
	r := &Results{}
	hdr, rest, err := splitHeader(bufio.NewReaderSize(msg, 64*1024))
	if err == nil {
		r.DKIM = checkDKIM(ctx, res, io.MultiReader(strings.NewReader(hdr), rest))
	} else {
		r.DKIM = []DKIMResult{{Result: "permerror", Reason: "unreadable header"}}
	}
	r.SPF, r.SPFDomain, r.SPFReason = checkSPF(ctx, res, env)
	h, herr := readHeader([]byte(hdr))
	if herr == nil {
		r.FromDomain, herr = fromDomain(h)
	}
	if herr != nil {
		r.DMARC, r.DMARCNote = "permerror", herr.Error()
		return r
	}
	checkDMARC(ctx, res, r)
	return r
}

// splitHeader reads the header section (its size bounded by what the
// caller read) and returns it and a reader of the rest.
func splitHeader(br *bufio.Reader) (string, io.Reader, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if line == "\r\n" || line == "\n" || err == io.EOF {
			return b.String(), br, nil
		}
		if err != nil {
			return "", nil, err
		}
	}
}

func checkDKIM(ctx context.Context, res Resolver, msg io.Reader) []DKIMResult {
	vs, err := dkim.VerifyWithOptions(msg, &dkim.VerifyOptions{
		MaxVerifications: MaxSignatures,
		LookupTXT:        func(name string) ([]string, error) { return res.LookupTXT(ctx, name) },
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return []DKIMResult{{Result: "permerror", Reason: oneLine(err.Error())}}
	}
	var out []DKIMResult
	for _, v := range vs {
		d := DKIMResult{Result: "pass", Domain: v.Domain}
		switch {
		case v.Err == nil:
		case dkim.IsTempFail(v.Err):
			d.Result, d.Reason = "temperror", oneLine(v.Err.Error())
		case dkim.IsPermFail(v.Err):
			d.Result, d.Reason = "permerror", oneLine(v.Err.Error())
		default:
			d.Result, d.Reason = "fail", oneLine(v.Err.Error())
		}
		out = append(out, d)
	}
	return out
}

func checkSPF(ctx context.Context, res Resolver, env Envelope) (result, domain, reason string) {
	sender := env.MailFrom
	if sender == "" {
		sender = "postmaster@" + env.Helo // RFC 7208 §2.4: the HELO identity
	}
	_, domain, _ = strings.Cut(sender, "@")
	if env.IP == nil {
		return "none", domain, "no client address"
	}
	r, err := spf.CheckHostWithSender(env.IP, env.Helo, sender,
		spf.WithContext(ctx), spf.WithResolver(res), spf.OverrideLookupLimit(SPFLookupLimit))
	if err != nil && r != spf.Pass {
		reason = oneLine(err.Error())
	}
	return string(r), strings.ToLower(domain), reason
}

func checkDMARC(ctx context.Context, res Resolver, r *Results) {
	look := func(d string) (*dmarc.Record, error) {
		return dmarc.LookupWithOptions(d, &dmarc.LookupOptions{
			LookupTXT: func(name string) ([]string, error) { return res.LookupTXT(ctx, name) }})
	}
	org := orgDomain(r.FromDomain)
	rec, err := look(r.FromDomain)
	sub := false
	if errors.Is(err, dmarc.ErrNoPolicy) && org != r.FromDomain {
		rec, err = look(org)
		sub = true
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		r.DMARC = "none"
		return
	case dmarc.IsTempFail(err):
		r.DMARC, r.DMARCNote = "temperror", oneLine(err.Error())
		return
	case err != nil:
		r.DMARC, r.DMARCNote = "permerror", oneLine(err.Error())
		return
	}
	r.Policy = string(rec.Policy)
	if sub && rec.SubdomainPolicy != "" {
		r.Policy = string(rec.SubdomainPolicy)
	}
	aligned := func(d string, mode dmarc.AlignmentMode) bool {
		d = strings.ToLower(d)
		if mode == dmarc.AlignmentStrict {
			return d == r.FromDomain
		}
		return d != "" && orgDomain(d) == org
	}
	r.DMARC = "fail"
	if r.SPF == "pass" && aligned(r.SPFDomain, rec.SPFAlignment) {
		r.DMARC = "pass"
	}
	for _, d := range r.DKIM {
		if d.Result == "pass" && aligned(d.Domain, rec.DKIMAlignment) {
			r.DMARC = "pass"
		}
	}
}

// orgDomain is the organizational domain (RFC 7489 §3.2): the public
// suffix and one label.
func orgDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

// Header is the Authentication-Results field (RFC 8601), folded, with
// its CRLF.
func (r *Results) Header(host string) string {
	var parts []string
	if len(r.DKIM) == 0 {
		parts = append(parts, "dkim=none")
	}
	for _, d := range r.DKIM {
		p := "dkim=" + d.Result
		if d.Reason != "" {
			p += " (" + comment(d.Reason) + ")"
		}
		if d.Domain != "" {
			p += " header.d=" + d.Domain
		}
		parts = append(parts, p)
	}
	spfPart := "spf=" + r.SPF
	if r.SPFReason != "" {
		spfPart += " (" + comment(r.SPFReason) + ")"
	}
	if r.SPFDomain != "" {
		spfPart += " smtp.mailfrom=" + r.SPFDomain
	}
	parts = append(parts, spfPart)
	dm := "dmarc=" + r.DMARC
	if r.Policy != "" {
		dm += " (p=" + r.Policy + ")"
	} else if r.DMARCNote != "" {
		dm += " (" + comment(r.DMARCNote) + ")"
	}
	if r.FromDomain != "" {
		dm += " header.from=" + r.FromDomain
	}
	parts = append(parts, dm)
	return "Authentication-Results: " + host + ";\r\n\t" + strings.Join(parts, ";\r\n\t") + "\r\n"
}

// comment makes s safe inside an RFC 5322 comment on one line.
func comment(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '(' || r == ')' || r == '\\':
			return '_'
		case r < 0x20 || r == 0x7f || r > 0x7e:
			return ' '
		}
		return r
	}, s)
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// ClaimsHost reports whether an Authentication-Results field value
// claims to come from host (its authserv-id), case-insensitively. Such a
// field arriving from outside is forged and is removed (RFC 8601 §5).
func ClaimsHost(value, host string) bool {
	v := stripComments(value)
	id, _, _ := strings.Cut(v, ";")
	f := strings.Fields(id)
	return len(f) > 0 && strings.EqualFold(strings.TrimSuffix(f[0], "."), strings.TrimSuffix(host, "."))
}

// stripComments drops (nested) RFC 5322 comments.
func stripComments(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// HeaderName is the canonical name of a header field line, for filters.
func HeaderName(line string) string {
	name, _, ok := strings.Cut(line, ":")
	if !ok {
		return ""
	}
	return textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(name))
}
