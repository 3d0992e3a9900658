package importcfg

import (
	"net"
	"path/filepath"
	"strings"
)

// dovecot maps Postfix's hand-off to Dovecot: LMTP delivery
// (virtual_transport for virtual_mailbox_domains, mailbox_transport for
// mydestination) into [delivery], and Dovecot SASL (smtpd_sasl_type =
// dovecot with smtpd_sasl_path, in main.cf or a master.cf service's -o)
// into auth_backend. Relative socket paths are queue_directory's, as in
// Postfix. A socket in Postfix's private/ (0700, postfix's) is out of
// reach for tlsmail's user: the result says so, with the Dovecot
// listener to add.
func (p *pfImport) dovecot() error {
	queueDir := p.m.Get("queue_directory")
	socket := func(path string) string {
		if !filepath.IsAbs(path) {
			path = filepath.Join(queueDir, path)
		}
		return path
	}
	private := filepath.Join(queueDir, "private") + "/"
	for _, tr := range []struct{ param, domains string }{
		{"virtual_transport", "virtual_mailbox_domains"},
		{"mailbox_transport", "mydestination"},
	} {
		v := p.m.Get(tr.param)
		target, path, ok := lmtpTarget(v, socket)
		if !ok {
			continue // not LMTP: rest() comments on it
		}
		p.done[tr.param] = true
		var domains []string
		for _, d := range list(p.m.Get(tr.domains)) {
			if !strings.ContainsAny(d, ":/") && d != "" {
				domains = append(domains, strings.ToLower(strings.TrimSuffix(d, ".")))
			}
		}
		if len(domains) == 0 {
			p.r.notMapped(tr.param, v, "no "+tr.domains+" listed to deliver for: add [delivery] \"DOMAIN\" = \""+target+"\" for each")
			continue
		}
		for _, d := range domains {
			p.r.Delivery = addKV(p.r.Delivery, d, target)
		}
		why := "[delivery] for " + strings.Join(domains, ", ") + " (the users file still says which recipients exist: add each Dovecot user with tlsmail user add)"
		if strings.HasPrefix(path, private) {
			why += "; " + outOfReach(path, "lmtp")
			p.r.warn("%s: %s: the LMTP socket %s is in Postfix's private/ directory, which tlsmail's user cannot reach: add a Dovecot listener for tlsmail and change [delivery]", p.at(tr.param), tr.param, path)
		}
		p.r.caveat(tr.param, v, why)
	}

	// Dovecot SASL: main.cf, else the first smtpd service that sets it.
	saslType, saslPath := p.m.Get("smtpd_sasl_type"), p.m.Get("smtpd_sasl_path")
	where := "smtpd_sasl_type"
	if saslType != "dovecot" {
		for _, s := range p.mc.Services {
			if t, ok := s.Overrides["smtpd_sasl_type"]; ok && p.m.Expand(t, s.Overrides) == "dovecot" {
				saslType = "dovecot"
				if v, ok := s.Overrides["smtpd_sasl_path"]; ok {
					saslPath = p.m.Expand(v, s.Overrides)
				}
				where = "master.cf " + s.Name + " -o smtpd_sasl_type"
				break
			}
		}
	}
	if saslType != "dovecot" {
		return nil
	}
	p.done["smtpd_sasl_type"], p.done["smtpd_sasl_path"] = true, true
	if saslPath == "" {
		saslPath = "smtpd" // Postfix's default
	}
	backend, path := "dovecot:"+socket(saslPath), socket(saslPath)
	if rest, ok := strings.CutPrefix(saslPath, "inet:"); ok {
		backend, path = "dovecot:inet:"+rest, ""
	}
	p.r.AuthBackend = backend
	why := "auth_backend = \"" + backend + "\": SMTP AUTH, POP3 and IMAP logins ask Dovecot"
	if strings.HasPrefix(path, private) {
		why += "; " + outOfReach(path, "auth")
		p.r.warn("%s: the Dovecot auth socket %s is in Postfix's private/ directory, which tlsmail's user cannot reach: add a Dovecot auth listener for tlsmail and change auth_backend", where, path)
	}
	p.r.caveat("smtpd_sasl_type", saslType+" "+saslPath, why)
	return nil
}

// lmtpTarget is Postfix's "lmtp:unix:PATH", "lmtp:inet:HOST:PORT",
// "lmtp:HOST:PORT" or "lmtp:[HOST]:PORT" as a [delivery] target, with the
// unix socket's path (resolved by socket); ok is false for any other
// transport.
func lmtpTarget(v string, socket func(string) string) (target, path string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "lmtp:")
	if !ok || rest == "" {
		return "", "", false
	}
	if p, isUnix := strings.CutPrefix(rest, "unix:"); isUnix {
		path = socket(p)
		return "lmtp:unix:" + path, path, true
	}
	rest = strings.TrimPrefix(rest, "inet:")
	host, port, err := net.SplitHostPort(rest)
	if err != nil { // no port: LMTP's (RFC 2033)
		host, port = rest, "24"
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return "lmtp:inet:" + net.JoinHostPort(host, port), "", true
}

// outOfReach says that a Dovecot socket in Postfix's private/ is not for
// tlsmail's user, and what listener to give it in Dovecot's service.
func outOfReach(path, service string) string {
	return path + " is in Postfix's private/ (0700 postfix), out of reach for tlsmail's user: give tlsmail a listener of its own in Dovecot (service " + service + " { unix_listener " + service + "-tlsmail { user = tlsmail  mode = 0600 } }) and name it here"
}
