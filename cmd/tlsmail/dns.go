package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/dnsplan"
	"github.com/tlsmail/tlsmail/internal/dnsx"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// runDNS is `tlsmail dns [--check] [--json] [--config F] [--dns HOST:PORT] DOMAIN`:
// the records to publish, or (--check) how DNS differs from them.
func runDNS(env *cliEnv, args []string) int {
	fs := newFlags(env, "DOMAIN", "Print the DNS records DOMAIN needs for this server (zone-file syntax);\nwith --check, look them up and say per record: OK, missing or wrong, and what to change.\nExit status 0 only when every record is right.")
	cfgFile := fs.String("config", "", "the server's configuration file (default: $TLSMAIL_CONFIG, else tlsmail-data/tlsmail.toml here, else /etc/tlsmail/tlsmail.toml)")
	check := fs.Bool("check", false, "look the records up and compare")
	asJSON := fs.Bool("json", false, "print JSON")
	server := fs.String("dns", "", "resolver host:port for --check (default outbound.dns_server, else /etc/resolv.conf)")
	pos, code, done := parseInterspersed(env, fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		return usageError(env, "want one DOMAIN")
	}
	domain := strings.ToLower(strings.TrimSuffix(pos[0], "."))
	c, err := config.Load(serverConfigFile(env, *cfgFile))
	if err != nil {
		return usageError(env, "%v", err)
	}
	if !c.IsLocalDomain(domain) {
		fmt.Fprintf(env.stderr, "%s: warning: %s is not in local_domains; the records assume this server receives its mail\n", env.name, domain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in, waiting, err := dnsInput(ctx, c, domain)
	if err != nil {
		return fail(env, "%v", err)
	}
	if waiting != "" {
		fmt.Fprintf(env.stderr, "%s: %s\n", env.name, waiting)
	}
	plan := dnsplan.Build(in)
	if !*check {
		if *asJSON {
			return writeJSON(env, plan)
		}
		plan.WriteZone(env.stdout)
		return exitOK
	}
	addr := *server
	if addr == "" {
		addr = c.Outbound.DNSServer
	}
	res, err := dnsx.New(addr, c.Outbound.DNSTrustAD)
	if err != nil {
		return fail(env, "%v", err)
	}
	results := dnsplan.Check(ctx, res, plan)
	if *asJSON {
		writeJSON(env, struct {
			Domain  string           `json:"domain"`
			OK      bool             `json:"ok"`
			Results []dnsplan.Result `json:"results"`
		}{domain, dnsplan.AllOK(results), results})
	} else {
		dnsplan.WriteResults(env.stdout, results)
	}
	if !dnsplan.AllOK(results) || waiting != "" {
		return exitFail // a record still waiting is not right yet
	}
	return exitOK
}

// dnsInput gathers what the records are made from: the configuration,
// the MX host's current key (ACME storage or the certificate file) and,
// with ACME, the next key, the account and the CA's CAA name. waiting
// says which record is left out and why (an ACME key not obtained yet).
func dnsInput(ctx context.Context, c *config.Config, domain string) (in dnsplan.Input, waiting string, err error) {
	in = dnsplan.Input{Domain: domain, Hostname: c.Hostname, ReportTo: "postmaster@" + domain}
	if p := c.TLSRPT.ReceivePath; p != "" && c.Web.Address != "" {
		in.ReportURL = "https://" + c.Hostname + p // reports by HTTPS POST too
	}
	if in.DKIM, err = dkimKeys(c, domain); err != nil { // dkim.go
		return in, "", err
	}
	for _, s := range c.ClientServices() {
		in.Services = append(in.Services, dnsplan.Service{Kind: s.Kind, Port: s.Port, Implicit: s.Implicit})
	}
	if s := c.MTASTS; s != nil {
		in.STS = &dnsplan.STSPolicy{Mode: s.Mode, MX: s.MX, MaxAge: s.MaxAge}
	}
	addKey := func(pub any, label string) error {
		h, err := tlsconf.TLSA311(pub)
		if err != nil {
			return err
		}
		in.Keys = append(in.Keys, dnsplan.Key{TLSA: h, Label: label})
		return nil
	}
	if a := c.TLS.ACME; a != nil {
		storage := c.Path(a.Storage)
		k, err := tlsconf.StoredKey(storage, a.Directory, c.Hostname)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Everything else can be published now; the TLSA record
			// needs the key the first certificate brings.
			waiting = fmt.Sprintf("the TLSA record for %s waits for its key: no ACME key in %s yet; start `tlsmail serve`, and once it has the certificate run `tlsmail dns` again", c.Hostname, storage)
		case err != nil:
			return in, "", err
		default:
			if err := addKey(k.Public(), "current"); err != nil {
				return in, "", err
			}
			if next, err := tlsconf.ReadNextKey(storage, c.Hostname); err == nil {
				if err := addKey(next.Public(), "next"); err != nil {
					return in, "", err
				}
			}
		}
		var roots *x509.CertPool
		if a.CAFile != "" {
			if roots, err = certs.LoadCAs(c.Path(a.CAFile), ""); err != nil {
				return in, "", err
			}
		}
		in.CAIdentity = tlsconf.CAAIdentity(ctx, a.Directory, roots)
		in.AccountURI = tlsconf.AccountURI(storage, a.Directory, a.Email)
		return in, waiting, nil
	}
	if c.TLS.Cert != "" {
		chain, err := certs.ReadCertificates(c.Path(c.TLS.Cert))
		if err != nil {
			return in, "", err
		}
		if err := addKey(chain[0].PublicKey, "current"); err != nil {
			return in, "", err
		}
	}
	return in, "", nil
}
