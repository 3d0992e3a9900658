package importcfg

import (
	"fmt"
	"regexp"
	"strings"
)

// paramRef finds the main.cf parameters a value names ($name, ${name},
// $(name)).
var paramRef = regexp.MustCompile(`\$[{(]?([A-Za-z0-9_]+)`)

// usedOverrides are -o parameters the listener mapping reads.
var usedOverrides = map[string]bool{
	"smtpd_tls_security_level": true, "smtpd_tls_wrappermode": true, "smtpd_sasl_auth_enable": true,
	"smtpd_tls_auth_only": true, "smtpd_recipient_restrictions": true, "smtpd_relay_restrictions": true,
	"smtpd_use_tls": true, "smtpd_enforce_tls": true, "syslog_name": true, "smtpd_milters": true,
}

// services maps master.cf's smtpd (and postscreen) inet services to
// listeners.
func (p *pfImport) services() error {
	// inet_interfaces = all with IPv4 and IPv6 (inet_protocols = all,
	// Debian's) is an empty host: Go listens on both.
	iface := ""
	switch protos := list(p.get("inet_protocols")); {
	case len(protos) == 1 && protos[0] == "ipv4":
		iface = "0.0.0.0"
	case len(protos) == 1 && protos[0] == "ipv6":
		iface = "::"
	}
	switch ifs := list(p.get("inet_interfaces")); {
	case len(ifs) == 1 && ifs[0] == "all":
	case len(ifs) == 1 && ifs[0] == "loopback-only":
		iface = "127.0.0.1"
	case len(ifs) >= 1:
		iface = strings.Trim(ifs[0], "[]")
		if len(ifs) > 1 {
			p.r.notMapped("inet_interfaces", strings.Join(ifs[1:], " "), "listeners were made for the first address only; add [[listener]] tables for the others")
		}
	}
	names := map[string]bool{}
	for _, s := range p.mc.Services {
		where := fmt.Sprintf("%s/%s", s.Name, s.Type)
		switch {
		case s.Type == "unix" && s.Command == "pickup":
			p.r.caveat("master.cf "+where, s.Command, "tlsmail's server collects sendmail's drops itself")
			continue
		case s.Type != "inet":
			continue
		case s.Command != "smtpd" && s.Command != "postscreen":
			p.r.notMapped("master.cf "+where, s.Command, "only smtpd services become listeners")
			continue
		}
		host, port, ok := hostPort(s.Name)
		if !ok {
			p.r.notMapped("master.cf "+where, s.Command, "unknown service name; give the port number")
			continue
		}
		if host == "" || host == "*" {
			host = iface
		}
		ov := s.Overrides
		// peek reads a parameter as this service sees it; get also marks a
		// main.cf one as mapped (rest() then says nothing of it).
		peek := func(name string) string {
			if v, ok := ov[name]; ok {
				return p.m.Expand(v, ov)
			}
			return p.m.Expand(p.m.Raw(name), ov)
		}
		get := func(name string) string {
			if _, ok := ov[name]; !ok {
				p.done[name] = true
			}
			return peek(name)
		}
		level := get("smtpd_tls_security_level")
		if level == "" {
			switch {
			case yes(get("smtpd_enforce_tls")):
				level = "encrypt"
			case yes(get("smtpd_use_tls")):
				level = "may"
			}
		}
		l := Listener{Name: strings.ReplaceAll(s.Name, ":", "-"), Address: joinHostPort(host, port), Mode: "starttls", Auth: "none"}
		if s.Command == "postscreen" {
			p.r.caveat("master.cf "+where, s.Command, "postscreen's checks have no equivalent; the port became an smtpd listener")
		}
		switch {
		case yes(get("smtpd_tls_wrappermode")):
			l.Mode = "implicit"
		case level == "" || level == "none":
			l.Mode = "plain"
		}
		if l.Mode != "plain" && p.r.TLS.Cert == "" {
			p.r.notMapped("master.cf "+where, "smtpd_tls_security_level="+level, "no smtpd_tls_cert_file: Postfix runs without TLS, so the listener is plain")
			l.Mode = "plain"
		}
		if yes(get("smtpd_sasl_auth_enable")) {
			l.Auth = "optional"
			// Read only to tell "required" from "optional": the rest of
			// the restrictions (a DNSBL, policy services) is not mapped,
			// and rest() must still say so.
			restr := peek("smtpd_relay_restrictions") + " " + peek("smtpd_recipient_restrictions")
			if port == "587" || port == "465" || strings.Contains(restr, "permit_sasl_authenticated") && strings.HasSuffix(strings.TrimRight(strings.TrimSpace(restr), ","), "reject") {
				l.Auth = "required"
			}
			if !yes(get("smtpd_tls_auth_only")) && l.Mode != "implicit" {
				p.r.caveat("master.cf "+where, "smtpd_tls_auth_only=no", "tlsmail offers AUTH only after TLS")
			}
		}
		// AUTH only ever after TLS: on a plain listener (no certificate)
		// it would not start (check refused such an import).
		switch {
		case l.Mode == "plain" && l.Auth == "required":
			p.r.notMapped("master.cf "+where, "smtpd_sasl_auth_enable=yes", "AUTH needs TLS and there is no certificate (smtpd_tls_cert_file): the listener was left out; add [tls] cert/key and this [[listener]] with auth = \"required\"")
			continue
		case l.Mode == "plain" && l.Auth == "optional":
			l.Auth = "none"
			p.r.notMapped("master.cf "+where, "smtpd_sasl_auth_enable=yes", "AUTH needs TLS and there is no certificate (smtpd_tls_cert_file): the listener takes mail without AUTH")
		}
		if level == "encrypt" && l.Mode == "starttls" && l.Auth != "required" {
			p.r.notMapped("master.cf "+where, "smtpd_tls_security_level=encrypt", "a listener cannot refuse mail without STARTTLS unless auth = \"required\" (RFC 3207 forbids it on a public MX)")
		}
		for _, name := range s.OverrideOrder {
			if !usedOverrides[name] {
				p.r.notMapped(where+"/"+name, ov[name], overrideWhy(name))
			}
		}
		if names[l.Name] {
			l.Name += "-" + port
		}
		names[l.Name] = true
		if _, ok := ov["smtpd_milters"]; ok {
			// milters() lists this listener in the [[milter]] tables of
			// its own milters only, as Postfix replaces main.cf's.
			p.milterOverride[l.Name] = get("smtpd_milters")
			for _, m := range paramRef.FindAllStringSubmatch(ov["smtpd_milters"], -1) {
				p.done[m[1]] = true // e.g. Debian's $mua_milters: mapped through this listener
			}
			p.r.caveat("master.cf "+where+"/smtpd_milters", ov["smtpd_milters"], "replaces main.cf's smtpd_milters for listener "+l.Name+": the [[milter]] tables name the listeners they apply to")
		}
		p.r.Listeners = append(p.r.Listeners, l)
	}
	if len(p.r.Listeners) == 0 {
		p.r.notMapped("master.cf", "", "no smtpd inet service is on: add a [[listener]]")
	}
	return nil
}

func overrideWhy(name string) string {
	switch {
	case strings.HasSuffix(name, "_restrictions"):
		return "no per-listener restrictions: auth = \"required\" refuses unauthenticated mail, relaying needs AUTH, relay_networks or a client certificate"
	case strings.Contains(name, "milter"):
		return "no per-listener milter settings: a [[milter]]'s settings apply on every listener it names"
	case name == "smtpd_reject_unlisted_recipient":
		return "unknown local recipients are always refused"
	}
	return "no per-listener equivalent"
}

// whyNot says why a main.cf parameter has no equivalent.
var whyNot = map[string]string{
	"smtpd_banner":                        "the greeting is always \"hostname ESMTP\"",
	"biff":                                "no biff notifications",
	"append_dot_mydomain":                 "addresses are never rewritten",
	"readme_directory":                    "Postfix documentation",
	"html_directory":                      "Postfix documentation",
	"compatibility_level":                 "Postfix's own compatibility switch",
	"smtp_tls_session_cache_database":     "TLS sessions are cached in memory",
	"smtpd_tls_session_cache_database":    "TLS sessions are cached in memory",
	"recipient_delimiter":                 "\"+\" is always the delimiter (user+ext delivers to user)",
	"mailbox_size_limit":                  "Postfix's limit on one mbox file; Maildir quotas are [quota] storage and messages",
	"home_mailbox":                        "mail is delivered to DATA/mail/USER (Maildir), or by [delivery] to LMTP",
	"mailbox_command":                     "use a \"|command\" alias or [delivery]",
	"smtpd_relay_restrictions":            "relaying needs AUTH, relay_networks or a listed client certificate; unknown local recipients are refused",
	"smtpd_recipient_restrictions":        "relaying needs AUTH, relay_networks or a listed client certificate; unknown local recipients are refused",
	"smtpd_sasl_type":                     "only Dovecot SASL maps (auth_backend); passwords are the users file's",
	"smtpd_sasl_path":                     "set auth_backend = \"dovecot:PATH\" (or the users file)",
	"smtpd_sasl_auth_enable":              "AUTH is per listener (auth = ...), which the listeners got from master.cf",
	"smtpd_tls_auth_only":                 "AUTH is offered only after TLS, always",
	"smtpd_tls_loglevel":                  "every session's TLS is logged",
	"smtp_tls_loglevel":                   "every delivery's TLS is logged",
	"smtpd_tls_received_header":           "Received headers always carry the TLS details",
	"smtp_tls_note_starttls_offer":        "tlsmail report shows what each destination offers",
	"myorigin":                            "tlsmail has no origin domain",
	"mailbox_transport":                   "only lmtp: transports map ([delivery]); local recipients get Maildir",
	"virtual_transport":                   "only lmtp: transports map ([delivery]); local recipients get Maildir",
	"local_transport":                     "use [delivery] for local recipients",
	"local_recipient_maps":                "local recipients are users_file users and aliases",
	"unknown_local_recipient_reject_code": "unknown local recipients get 550 5.1.1",
	"smtpd_tls_dh1024_param_file":         "Go's TLS uses ECDHE groups (X25519MLKEM768, X25519, P-256), no DH parameters",
	"smtpd_tls_eecdh_grade":               "Go's TLS chooses the ECDHE groups",
	"tls_preempt_cipherlist":              "the server's cipher order is Go's",
	"tls_ssl_options":                     "OpenSSL options",
	"smtp_tls_protocols":                  "delivery uses TLS 1.2 and 1.3",
	"smtp_tls_mandatory_protocols":        "delivery uses TLS 1.2 and 1.3",
	"smtp_tls_ciphers":                    "delivery uses Go's cipher suites",
	"smtp_tls_mandatory_ciphers":          "delivery uses Go's cipher suites",
	"smtpd_tls_session_cache_timeout":     "TLS sessions are cached in memory",
	"smtp_tls_session_cache_timeout":      "TLS sessions are cached in memory",
	"smtpd_tls_fingerprint_digest":        "relay_clientcerts are SHA-256 fingerprints",
	"smtp_tls_fingerprint_digest":         "fingerprint policies name their digest by length (SHA-256 …)",
	"myorigin_map":                        "tlsmail has no origin domain",
	"smtputf8_enable":                     "SMTPUTF8 is always offered",
	"disable_vrfy_command":                "VRFY is never answered with user information",
	"smtpd_helo_required":                 "HELO/EHLO is always required before MAIL",
}

// rest comments on every main.cf parameter not mapped above.
func (p *pfImport) rest() {
	for _, name := range p.m.Order {
		if p.done[name] {
			continue
		}
		why, ok := whyNot[name]
		if !ok {
			why = "no tlsmail equivalent"
		}
		if v := p.m.Raw(name); strings.HasSuffix(name, "_restrictions") && (strings.Contains(v, "reject_rbl_client") || strings.Contains(v, "reject_rhsbl")) {
			why += "; DNS blocklists (reject_rbl_client, reject_rhsbl_*) are not checked: use a [[milter]] (rspamd) for them"
		}
		p.notMapped(name, why)
	}
}
