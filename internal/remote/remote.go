// Package remote delivers queued mail to other domains: the transport map
// or MX records (null MX, implicit MX, preference order), each MX host's
// addresses, the destination's TLS policy decided before dialing, one SMTP
// transaction for all recipients of a domain, and a per-recipient outcome
// with the TLS state of the connection for the log. A connection that
// fails its policy is not used: the recipients are deferred.
package remote

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/mxroute"
	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// Deliverer delivers to remote domains.
type Deliverer struct {
	Resolver  *dnsx.Resolver
	Policy    *policy.Table
	Transport map[string]string // domain -> host:port, used instead of MX
	LocalName string            // EHLO name
	Port      int               // default 25
	ConnIdle  time.Duration     // how long an idle connection is kept (0: 5s)
	Timeouts  smtpclient.Timeouts
	Log       *slog.Logger
	Records   records.Sink      // the TLS record store (and TLS-RPT's results), if kept
	Metrics   *metrics.Registry // nil: no metrics (pqretry.go)

	cache     connCache
	classical classicalMemory // addresses dialed with classical groups only (pqretry.go)
	describe  sync.Once       // open connections kept for the next message to the same host
	lanes     lanes           // deliveries waiting for a connection, sent in batches
}

// target is one host to try.
type target struct {
	host       string
	canonical  string // CNAME target of host, if any
	port       int
	viaMX      bool
	addrSecure bool
	ips        []net.IP
}

// Deliver implements the remote half of queue delivery for the given
// recipient indexes (all non-local).
func (d *Deliverer) Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	byDomain := map[string][]int{}
	var order []string
	for _, i := range rcpts {
		_, dom := smtpwire.SplitAddress(env.Recipients[i].Addr)
		if _, ok := byDomain[dom]; !ok {
			order = append(order, dom)
		}
		byDomain[dom] = append(byDomain[dom], i)
	}
	// The message is read once, for every domain and every host tried.
	read := sync.OnceValues(func() ([]byte, error) { return readMessage(open) })
	var out []queue.Outcome
	for _, dom := range order {
		out = append(out, d.deliverDomain(ctx, env, dom, byDomain[dom], read)...)
	}
	return out
}

// all gives every recipient the same outcome.
func all(idx []int, o queue.Outcome) []queue.Outcome {
	out := make([]queue.Outcome, len(idx))
	for i, r := range idx {
		o.Rcpt = r
		out[i] = o
	}
	return out
}

func (d *Deliverer) deliverDomain(ctx context.Context, env *queue.Envelope, domain string, idx []int, read func() ([]byte, error)) []queue.Outcome {
	targets, fail := d.route(ctx, domain)
	if fail != nil {
		return all(idx, queue.Outcome{Status: *fail, Attrs: []any{"domain", domain}})
	}
	_, senderDomain := smtpwire.SplitAddress(env.From)
	relay := ""
	if hp, ok := d.Transport[domain]; ok {
		relay, _, _ = net.SplitHostPort(hp)
		relay = strings.Trim(relay, "[]")
	}
	pol, err := d.Policy.Lookup(domain, relay, senderDomain)
	if err != nil {
		return all(idx, queue.Outcome{Status: dstatus.Temp("4.3.5", "local configuration error: TLS policy").WithDetail(err.Error()), Attrs: []any{"domain", domain}})
	}
	var stsNote string
	report := isReport(read)
	if !env.RequireTLS && tlsRequiredNo(read) {
		// RFC 8689 §5: the sender asks that TLS policy be ignored for
		// this message; deliver with opportunistic TLS.
		pol = policy.Policy{Level: policy.May, Source: "TLS-Required: No header"}
	} else if relay == "" {
		// MTA-STS is about MX hosts; a transport-map route replaces them.
		pol, stsNote = d.Policy.WithSTS(ctx, pol, domain)
	}
	var clientCert *tls.Certificate
	if d.Policy.ClientCerts != nil {
		if dc, ok := d.Policy.ClientCerts.For(senderDomain); ok {
			c, err := tlsconf.LoadCertificate(tlsconf.CertSpec{CertFile: dc.CertFile, KeyFile: dc.KeyFile})
			if err != nil {
				return all(idx, queue.Outcome{Status: dstatus.Temp("4.3.5", "local configuration error: client certificate for "+senderDomain).
					WithDetail(fmt.Sprintf("%s:%d: %v", d.Policy.ClientCerts.File, dc.Line, err)), Attrs: []any{"domain", domain}})
			}
			clientCert = &c
		}
	}
	var last queue.Outcome
	for _, tg := range targets {
		for _, ip := range tg.ips {
			port := tg.port
			if pol.Port != 0 {
				port = pol.Port // s/qmail's ";PORT" overrides the connection port
			}
			addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
			plan, err := d.Policy.Plan(ctx, d.Resolver, pol, policy.Target{Domain: domain, MXHost: tg.host, Canonical: tg.canonical, Port: tg.port, AddrSecure: tg.addrSecure, RequireTLS: env.RequireTLS})
			attrs := []any{"domain", domain, "mx", tg.host, "addr", addr, "policy", policyLabel(pol)}
			if err == nil {
				// A plan that failed made no connection: it enforced nothing.
				attrs = append(attrs, "effective", string(plan.Effective))
			}
			if pol.Source != "" {
				attrs = append(attrs, "policy_source", pol.Source)
			}
			if plan.Note != "" {
				attrs = append(attrs, "policy_note", plan.Note)
			}
			if stsNote != "" {
				attrs = append(attrs, "mta_sts", stsNote)
			}
			at := attempt{domain: domain, tg: tg, ip: ip.String(), pol: pol, plan: plan, report: report}
			if err != nil {
				at.planErr = err
				d.record(at, nil, nil)
				last = queue.Outcome{Status: dstatus.Temp("4.7.5", "TLS policy "+string(pol.Level)+" cannot be met for "+tg.host).WithDetail(err.Error()), Attrs: attrs}
				continue
			}
			outs, done, j := d.try(ctx, env, idx, addr, tg, plan, clientCert, read, attrs)
			for i := range outs {
				outs[i].Level = string(plan.Effective)
			}
			d.record(at, j, outs)
			if done {
				return outs
			}
			if len(outs) > 0 {
				last = outs[0]
			}
		}
	}
	if last.Status.Code == 0 {
		last.Status = dstatus.Temp("4.4.1", "no MX host could be reached")
	}
	return all(idx, last)
}

// try delivers over one connection. done says whether the outcomes are
// final for this attempt (otherwise the next host is tried).
func (d *Deliverer) try(ctx context.Context, env *queue.Envelope, idx []int, addr string, tg target, plan policy.Plan, clientCert *tls.Certificate, read func() ([]byte, error), attrs []any) ([]queue.Outcome, bool, *job) {
	_, senderDomain := smtpwire.SplitAddress(env.From)
	key := strings.Join([]string{tg.host, addr, string(plan.Effective), plan.Policy.Source}, "|")
	if verifies(plan.Effective) {
		// What a verified connection was checked against depends on the
		// destination (match names, secure's next-hop domain, MTA-STS MX
		// patterns, per-domain roots or pins): it is reused only for mail
		// to the same domain, never for another domain's mail that would
		// have failed the check.
		_, dom := smtpwire.SplitAddress(env.Recipients[idx[0]].Addr)
		key += "|" + dom
	}
	if clientCert != nil {
		key += "|" + senderDomain // a client certificate belongs to the sender's domain
	}
	data, err := read()
	if err != nil {
		return all(idx, queue.Outcome{Status: dstatus.Temp("4.3.0", "cannot read the queued message").WithDetail(err.Error()), Attrs: attrs}), true, nil
	}
	j := &job{env: env, idx: idx, cenv: clientEnvelope(env, idx), data: data, addr: addr, tg: tg, plan: plan,
		clientCert: clientCert, attrs: attrs, fin: make(chan struct{})}
	outs, done := d.deliverJob(ctx, key, j)
	return outs, done, j
}

// verifies says whether a level checks the server's identity.
func verifies(l policy.Level) bool {
	switch l {
	case policy.None, policy.May, policy.Encrypt:
		return false
	}
	return true
}

// readMessage reads the stored message.
func readMessage(open func() (io.ReadCloser, error)) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// clientEnvelope is the SMTP envelope for the recipients idx of env.
func clientEnvelope(env *queue.Envelope, idx []int) smtpclient.Envelope {
	cenv := smtpclient.Envelope{From: env.From, Size: env.Size, EightBit: env.Body == "8BITMIME", SMTPUTF8: env.SMTPUTF8,
		RequireTLS: env.RequireTLS, Ret: env.Ret, EnvID: env.EnvID}
	for _, i := range idx {
		r := env.Recipients[i]
		cenv.To = append(cenv.To, r.Addr)
		// Each recipient's own NOTIFY and ORCPT go on (RFC 3461 §5.2.1).
		cenv.RcptDSN = append(cenv.RcptDSN, smtpclient.RcptDSN{Notify: r.Notify, ORcpt: r.ORcpt})
	}
	return cenv
}

// dial connects to addr under plan. pq says whether the connection
// offers classical groups only, and why (pqRetried, pqRemembered), or "".
func (d *Deliverer) dial(ctx context.Context, addr string, tg target, plan policy.Plan, clientCert *tls.Certificate) (c *smtpclient.Client, pq string, err error) {
	opts := smtpclient.Options{
		Mode: plan.Mode, ServerName: tg.host, LocalName: d.LocalName, RootCAs: d.Policy.RootCAs,
		InsecureSkipVerify: plan.Insecure, Verify: plan.Verify, Timeouts: d.Timeouts, ClientCert: clientCert,
		RetryClassical: true,
	}
	if d.classical.has(addr, time.Now()) {
		opts.CurvePreferences, opts.RetryClassical = smtpclient.ClassicalGroups(), false
		pq = pqRemembered
	}
	c, err = smtpclient.Dial(ctx, addr, opts)
	var te *smtpclient.TLSError
	switch {
	case err == nil && c.ClassicalRetry():
		pq = pqRetried
		d.classical.add(addr, time.Now())
		d.pqMetric("retried")
		d.logger().Warn("hybrid post-quantum ClientHello unanswered; classical groups worked, remembered for 24h",
			"mx", tg.host, "addr", addr)
	case err == nil && pq != "":
		d.pqMetric(pqRemembered)
	case errors.As(err, &te) && te.ClassicalRetry:
		d.pqMetric("retry_failed")
	}
	return c, pq, err
}

// dialFailure turns a failed connection into outcomes: a TLS policy
// failure defers (or, for REQUIRETLS, returns the message with 5.7.30).
func (d *Deliverer) dialFailure(env *queue.Envelope, idx []int, tg target, plan policy.Plan, err error, attrs []any) []queue.Outcome {
	var te *smtpclient.TLSError
	if errors.As(err, &te) {
		if env.RequireTLS {
			// RFC 8689 §4.2.1: a REQUIRETLS message that cannot get
			// verified TLS is returned with 5.7.30.
			return all(idx, queue.Outcome{Status: dstatus.Perm("5.7.30", "REQUIRETLS: verified TLS not available at "+tg.host+": "+te.Reason).WithDetail(err.Error()), Attrs: attrs})
		}
		return all(idx, queue.Outcome{Status: dstatus.Temp("4.7.5", "TLS policy "+string(plan.Effective)+" not met at "+tg.host+": "+te.Reason).WithDetail(err.Error()), Attrs: attrs})
	}
	var re *smtpclient.ReplyError
	if errors.As(err, &re) {
		// The greeting or EHLO refused: the server's own reply, but
		// the message was never offered, so it is tried again.
		st := dstatus.FromReply(re.Reply)
		st.Temporary = true
		return all(idx, queue.Outcome{Status: st, RemoteMTA: tg.host, Attrs: attrs})
	}
	return all(idx, queue.Outcome{Status: dstatus.Temp("4.4.1", "cannot connect to "+tg.host).WithDetail(err.Error()), Attrs: attrs})
}

// route finds the hosts for a domain: the transport map, else MX records
// (null MX and NXDOMAIN are permanent failures), else the domain itself.
// A failure is returned as the recipients' status.
func (d *Deliverer) route(ctx context.Context, domain string) ([]target, *dstatus.Status) {
	fail := func(st dstatus.Status) ([]target, *dstatus.Status) { return nil, &st }
	port := d.Port
	if port == 0 {
		port = 25
	}
	if hp, ok := d.Transport[domain]; ok {
		host, p, err := net.SplitHostPort(hp)
		if err != nil {
			return fail(dstatus.Temp("4.3.5", "local configuration error: transport for "+domain).WithDetail(err.Error()))
		}
		pn, _ := strconv.Atoi(p)
		host = strings.Trim(host, "[]")
		tg := target{host: host, port: pn}
		if ip := net.ParseIP(host); ip != nil {
			tg.ips = []net.IP{ip}
		} else {
			addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
			if err != nil {
				return fail(dstatus.Temp("4.4.3", "cannot find the address of transport host "+host).WithDetail(err.Error()))
			}
			for _, a := range addrs {
				tg.ips = append(tg.ips, a.IP)
			}
		}
		return []target{tg}, nil
	}
	if d.Resolver == nil {
		return fail(dstatus.Temp("4.3.5", "local configuration error: no DNS resolver configured"))
	}
	// The same hosts `tlsmail probe` reports (mxroute).
	rt, err := mxroute.Lookup(ctx, d.Resolver, domain)
	var te *dnsx.TempError
	switch {
	case err != nil:
		return fail(dstatus.Temp("4.4.3", "MX lookup for "+domain+" failed").WithDetail(err.Error()))
	case rt.Null:
		return fail(dstatus.Perm("5.1.10", domain+" does not accept mail (null MX, RFC 7505)"))
	}
	var targets []target
	var tempErr error
	for _, h := range rt.Hosts {
		if h.Err != nil {
			if errors.As(h.Err, &te) {
				tempErr = h.Err
			}
			continue
		}
		targets = append(targets, target{host: h.Name, canonical: h.Canonical, port: port, viaMX: !rt.Implicit, addrSecure: h.Secure, ips: h.IPs})
	}
	if len(targets) == 0 {
		if tempErr != nil {
			return fail(dstatus.Temp("4.4.3", "address lookup for the mail hosts of "+domain+" failed").WithDetail(tempErr.Error()))
		}
		return fail(dstatus.Perm("5.1.2", "domain "+domain+" has no mail host with an address"))
	}
	return targets, nil
}

// tlsRequiredNo reports whether the message header has "TLS-Required: No".
func tlsRequiredNo(read func() ([]byte, error)) bool {
	v, ok := headerField(read, "TLS-Required")
	return ok && strings.EqualFold(strings.TrimSpace(v), "No")
}

// headerField finds the first header field called name in the message's
// header (its first 256 KiB) and returns its value.
func headerField(read func() ([]byte, error), name string) (string, bool) {
	data, err := read()
	if err != nil {
		return "", false
	}
	br := bufio.NewReader(io.LimitReader(bytes.NewReader(data), 256*1024))
	for {
		line, err := br.ReadString('\n')
		l := strings.TrimRight(line, "\r\n")
		if l == "" {
			return "", false // end of header
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return v, true
		}
		if err != nil {
			return "", false
		}
	}
}
