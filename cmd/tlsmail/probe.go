package main

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"time"

	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/probe"
	"github.com/tlsmail/tlsmail/smtpclient"
)

func runProbe(env *cliEnv, args []string) int {
	fs := newFlags(env, "TARGET", "Report the TLS posture of a mail domain (every MX) or of host:port.\nExit 0 when the probe ran, 1 when the target could not be reached, 2 on usage errors.\nThe JSON fields are documented in docs/probe-json.md.")
	port := fs.Int("port", 25, "SMTP port of the MX hosts")
	starttls := fs.Bool("starttls", false, "use STARTTLS (the default, except on port 465)")
	implicit := fs.Bool("implicit", false, "use implicit TLS (SMTPS)")
	caFile := fs.String("cafile", "", "verify against these CAs instead of the system roots")
	dnsServer := fs.String("dns", "", "DNS resolver host:port (default /etc/resolv.conf); its AD bit is trusted on loopback")
	trustAD := fs.Bool("dns-trust-ad", false, "trust the AD bit of a non-loopback resolver")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	stsPort := fs.Int("mta-sts-port", 443, "HTTPS port for MTA-STS policy fetches (tests)")
	timeout := fs.Duration("timeout", 30*time.Second, "per connection")
	pos, code, done := parseInterspersed(env, fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		return usageError(env, "want one TARGET (a domain or host:port)")
	}
	if *starttls && *implicit {
		return usageError(env, "--starttls and --implicit exclude each other")
	}
	// Without --dns, names DNS does not know (localhost, /etc/hosts
	// entries) resolve through the system resolver.
	o := probe.Options{Port: *port, Timeout: *timeout, LocalName: "probe.tlsmail.invalid", SystemHosts: *dnsServer == ""}
	if *implicit {
		o.Mode = smtpclient.Implicit
	} else if *starttls {
		o.Mode = smtpclient.STARTTLS
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return usageError(env, "--cafile: %v", err)
		}
		o.RootCAs = x509.NewCertPool()
		if !o.RootCAs.AppendCertsFromPEM(pem) {
			return usageError(env, "--cafile %s: no certificates", *caFile)
		}
	}
	if r, err := dnsx.New(*dnsServer, *trustAD); err == nil {
		o.Resolver = r
		dir, _ := os.MkdirTemp("", "tlsmail-probe-sts")
		defer os.RemoveAll(dir)
		o.STS = &policy.STS{Resolver: r, Dir: dir, RootCAs: o.RootCAs, Port: *stsPort}
	} else if *dnsServer != "" {
		return usageError(env, "--dns: %v", err)
	}
	rep, err := probe.Run(context.Background(), pos[0], o)
	if rep == nil {
		return fail(env, "%v", err)
	}
	if *asJSON {
		writeJSON(env, rep)
	} else {
		rep.WriteText(env.stdout)
	}
	if errors.Is(err, probe.ErrUnreachable) {
		return exitFail
	}
	if err != nil {
		return fail(env, "%v", err)
	}
	return exitOK
}
