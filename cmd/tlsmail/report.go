package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/server"
)

const reportAbout = `What TLS each hop got, from the TLS record store (DATA/records.db): outbound by
destination domain (attempts, messages delivered, % TLS, % verified, % DANE, % MTA-STS,
plaintext deliveries listed), inbound by protocol, cipher and key-exchange group (the
post-quantum share: X25519MLKEM768), failures by reason, TLS-RPT reports received. The period is --days (default 1)
back from now, or --since/--until (2006-01-02 or RFC 3339, UTC).`

func runReport(env *cliEnv, args []string) int {
	env.name = "tlsmail report"
	fs := newFlags(env, "", reportAbout)
	cfgFile := fs.String("config", "", "the server's configuration file")
	data := fs.String("data", "tlsmail-data", "the data directory (dev default)")
	asJSON := fs.Bool("json", false, "print JSON")
	days := fs.Int("days", 1, "the period: this many days back from now")
	since := fs.String("since", "", "the period's start (2006-01-02 or RFC 3339; replaces --days)")
	until := fs.String("until", "", "the period's end, exclusive (default now)")
	pos, code, done := parseInterspersed(env, fs, args)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usageError(env, "unexpected argument %q", pos[0])
	}
	dataDir, _, err := serverFiles(env, fs, *cfgFile, *data)
	if err != nil {
		return configError(env, err)
	}
	p, err := reportPeriod(time.Now(), *days, *since, *until)
	if err != nil {
		return usageError(env, "%v", err)
	}
	st, err := records.OpenReader(filepath.Join(dataDir, server.RecordsFile))
	if err != nil {
		return fail(env, "%v", err)
	}
	defer st.Close(context.Background())
	sum, err := st.Summarize(context.Background(), p)
	if err != nil {
		return fail(env, "%v", err)
	}
	if *asJSON {
		return writeJSON(env, sum)
	}
	printReport(env.stdout, sum)
	return exitOK
}

// reportPeriod is [since, until): --since/--until when given, else the
// last days days.
func reportPeriod(now time.Time, days int, since, until string) (records.Period, error) {
	p := records.Period{Until: now}
	var err error
	if until != "" {
		if p.Until, err = parseWhen(until); err != nil {
			return p, fmt.Errorf("--until: %w", err)
		}
	}
	switch {
	case since != "":
		if p.Since, err = parseWhen(since); err != nil {
			return p, fmt.Errorf("--since: %w", err)
		}
	case days < 1:
		return p, fmt.Errorf("--days %d: want at least 1", days)
	default:
		p.Since = p.Until.Add(-time.Duration(days) * 24 * time.Hour)
	}
	if !p.Since.Before(p.Until) {
		return p, fmt.Errorf("the period is empty: %s is not before %s", p.Since.Format(time.RFC3339), p.Until.Format(time.RFC3339))
	}
	return p, nil
}

func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return t, fmt.Errorf("%q is neither 2006-01-02 nor RFC 3339", s)
	}
	return t, nil
}

func pct(n, of int) string { return fmt.Sprintf("%.0f%%", records.Percent(n, of)) }

func printReport(w io.Writer, s *records.Summary) {
	fmt.Fprintf(w, "TLS report %s to %s\n\n", s.Since.Format(time.RFC3339), s.Until.Format(time.RFC3339))
	fmt.Fprintln(w, "Outbound by destination domain")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  DOMAIN\tATTEMPTS\tDELIVERED\tTLS\tVERIFIED\tDANE\tMTA-STS\tPLAINTEXT\tFAILED")
	for _, d := range s.Outbound {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%d\n", d.Domain, d.Attempts, d.Delivered,
			pct(d.TLS, d.Attempts), pct(d.Verified, d.Attempts), pct(d.DANE, d.Attempts), pct(d.MTASTS, d.Attempts), d.Plaintext, d.Failed)
	}
	tw.Flush()
	if len(s.Outbound) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	if len(s.Plaintext) > 0 {
		fmt.Fprintln(w, "\nDelivered in plaintext")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, d := range s.Plaintext {
			fmt.Fprintf(tw, "  %s\t%s\t%s [%s]\tlevel %s\n", d.Time.Format(time.RFC3339), d.Domain, d.MX, d.IP, d.Level)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nInbound: %d sessions, %s with TLS, %s post-quantum (X25519MLKEM768)\n",
		s.InboundSessions, pct(s.InboundTLS, s.InboundSessions), pct(s.InboundPQ, s.InboundSessions))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tPROTOCOL\tCIPHER\tGROUP\tSESSIONS\tMESSAGES\tCLIENT CERTS")
	for _, m := range s.Inbound {
		proto, cipher, group := m.Protocol, m.Cipher, m.Group
		if proto == "" {
			proto, cipher, group = "plaintext", "-", "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\n", m.Service, proto, cipher, group, m.Sessions, m.Messages, m.ClientCerts)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nFailures by reason")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range s.Failures {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", f.Direction, f.Outcome, f.Count, f.Reason)
	}
	tw.Flush()
	if len(s.Failures) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	fmt.Fprintln(w, "\nTLS-RPT reports received (what other senders saw at our MX hosts)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range s.Received {
		fmt.Fprintf(tw, "  %s\t%s\t%s %s\t%d ok\t%d failed\t%s to %s\n", r.Received.Format(time.RFC3339), r.Org, r.Domain, r.Type,
			r.Success, r.Failure, r.Begin.Format(time.RFC3339), r.End.Format(time.RFC3339))
		for _, f := range r.Failures {
			at := f.MX
			if f.IP != "" { // receiving-ip is optional in RFC 8460
				at += " [" + f.IP + "]"
			}
			fmt.Fprintf(tw, "  \t\t%s\t%d\t%s\t%s\n", f.ResultType, f.Count, at, f.Reason)
		}
	}
	tw.Flush()
	if len(s.Received) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
}
