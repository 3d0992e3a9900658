// Package dnsplan says which DNS records a tlsmail server needs published
// for a domain — MX, MTA-STS, TLS-RPT, TLSA for the current and the next
// key, CAA for the ACME CA, SPF and DMARC — in zone-file syntax, and
// checks them against DNS, naming for each record what is missing or
// wrong and what to change. It only reads DNS; it never changes it.
package dnsplan

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Record is one record to publish.
type Record struct {
	Name  string `json:"name"` // owner, fully qualified with the final dot
	Type  string `json:"type"`
	Value string `json:"value"` // RDATA in zone-file syntax
	// Kind says which check applies: mx, mta-sts-host, mta-sts, tlsrpt,
	// tlsa-current, tlsa-next, caa, spf, dmarc, dkim, srv.
	Kind string `json:"kind"`
	Why  string `json:"why"`
}

// Zone is the record in zone-file syntax.
func (r Record) Zone() string {
	return fmt.Sprintf("%-32s 3600 IN %-5s %s", r.Name, r.Type, r.Value)
}

// Key is a server key's TLSA 3 1 1 data (hex SHA-256 of its SPKI).
type Key struct {
	TLSA  string
	Label string // "current" or "next"
}

// Input is what the records are made from: the configuration and the
// keys in use.
type Input struct {
	Domain   string
	Hostname string // the MX host
	// STS is the hosted MTA-STS policy; nil: none.
	STS *STSPolicy
	// Keys are the MX host's current key and, with ACME, the next one.
	Keys []Key
	// CAIdentity is the CA's CAA domain (e.g. letsencrypt.org) and
	// AccountURI the ACME account, both empty without ACME.
	CAIdentity, AccountURI string
	// ReportTo receives TLS-RPT reports (a local address).
	ReportTo string
	// ReportURL, if set, also receives them by HTTPS POST ([tlsrpt]
	// receive_path on the [web] listener).
	ReportURL string
	// DKIM are the domain's configured DKIM keys (dkim.go).
	DKIM []DKIMKey
	// Services are the mail services clients use, for SRV (srv.go).
	Services []Service
}

// Plan is the records of one domain.
type Plan struct {
	Domain  string   `json:"domain"`
	Records []Record `json:"records"`
	// ca is the CAA check's expectation.
	ca, account string
	keys        []Key
	sts         *STSPolicy
	hostname    string
}

func fqdn(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") + "." }

// Build makes the plan.
func Build(in Input) Plan {
	d, h := fqdn(in.Domain), fqdn(in.Hostname)
	p := Plan{Domain: strings.TrimSuffix(d, "."), ca: in.CAIdentity, account: in.AccountURI, keys: in.Keys, sts: in.STS, hostname: strings.TrimSuffix(h, ".")}
	add := func(r Record) { p.Records = append(p.Records, r) }
	add(Record{d, "MX", "10 " + h, "mx", "mail for the domain goes to this server"})
	if in.STS != nil {
		add(Record{"mta-sts." + d, "CNAME", h, "mta-sts-host", "the MTA-STS policy host is this server ([web] listener)"})
		add(Record{"_mta-sts." + d, "TXT", strconv.Quote(in.STS.TXT()), "mta-sts", "the policy's id: senders refetch the policy when it changes"})
	}
	rua := "mailto:" + in.ReportTo
	if in.ReportURL != "" {
		rua += "," + in.ReportURL
	}
	add(Record{"_smtp._tls." + d, "TXT", strconv.Quote("v=TLSRPTv1; rua=" + rua), "tlsrpt", "TLS-RPT (RFC 8460): senders report TLS failures to this address"})
	for _, k := range in.Keys {
		add(Record{"_25._tcp." + h, "TLSA", "3 1 1 " + k.TLSA, "tlsa-" + k.Label, "DANE-EE for the " + k.Label + " key (needs a DNSSEC-signed zone)"})
	}
	if in.CAIdentity != "" {
		v := in.CAIdentity
		if in.AccountURI != "" {
			v += "; accounturi=" + in.AccountURI
		}
		add(Record{d, "CAA", `0 issue "` + v + `"`, "caa", "only this CA, for this server's ACME account, may issue certificates"})
		if !strings.HasSuffix(h, "."+d) && h != d {
			add(Record{h, "CAA", `0 issue "` + v + `"`, "caa", "the same for the MX host, which is outside the domain"})
		}
	}
	p.Records = append(p.Records, dkimRecords(d, in.DKIM)...)
	p.Records = append(p.Records, srvRecords(d, h, in.Services)...)
	add(Record{d, "TXT", strconv.Quote("v=spf1 mx -all"), "spf", "suggestion: only the MX hosts send the domain's mail"})
	add(Record{"_dmarc." + d, "TXT", strconv.Quote("v=DMARC1; p=none; rua=mailto:" + in.ReportTo), "dmarc", "suggestion: DMARC reports first (p=none), stricter later"})
	return p
}

// WriteZone writes the plan in zone-file syntax with a comment per record.
func (p Plan) WriteZone(w io.Writer) {
	fmt.Fprintf(w, "; DNS records for %s (tlsmail dns)\n", p.Domain)
	for _, r := range p.Records {
		fmt.Fprintf(w, "; %s\n%s\n", r.Why, r.Zone())
	}
}
