package config

import (
	"reflect"
	"sort"
	"strings"
)

// SettingInfo describes one setting of the server's TOML file for the
// manual (tlsmail.toml(5)): its key (`limits.message_size`; tables of an
// array as `listener.mode`), its TOML kind, its default and what it does.
type SettingInfo struct {
	Key, Kind, Default, Doc string
}

// Schema lists every setting of the server configuration, read from the
// Config type itself (so a new field is in the manual without anyone
// remembering it), with the built-in default and the description from
// settingDocs where there is one.
func Schema() []SettingInfo {
	var def Config
	def.Defaults()
	flat, _ := flatten(&def)
	docs := settingDocs()
	for k, v := range adminDocs { // admin.go
		docs[k] = v
	}
	for k, v := range milterDocs { // milter.go
		docs[k] = v
	}
	for k, v := range tlsrptDocs { // tlsrpt.go
		docs[k] = v
	}
	var out []SettingInfo
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(prefix, f.Type)
				continue
			}
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			key := prefix + tag
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct && ft != reflect.TypeOf(Duration{}):
				walk(key+".", ft)
				continue
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				out = append(out, SettingInfo{Key: key, Kind: "array of tables", Doc: docs[key]})
				walk(key+".", ft.Elem())
				continue
			}
			s := SettingInfo{Key: key, Kind: kindOf(ft), Doc: docs[key]}
			if v, ok := flat[key]; ok {
				if r := render(v); r != `""` && r != "0" && r != "[]" {
					s.Default = r
				}
			}
			out = append(out, s)
		}
	}
	walk("", reflect.TypeOf(Config{}))
	// Plain top-level settings first, then each table with its settings
	// in the type's order.
	sort.SliceStable(out, func(i, j int) bool {
		gi, gj := out[i].Table(), out[j].Table()
		if (gi == "") != (gj == "") {
			return gi == ""
		}
		if gi != gj {
			return gi < gj
		}
		return gi == "" && out[i].Key < out[j].Key
	})
	return out
}

// Table is the table a setting is in ("limits", "listener"; an array of
// tables is in its own), "" for a top-level setting.
func (s SettingInfo) Table() string {
	if s.Kind == "array of tables" {
		return s.Key
	}
	if i := strings.LastIndexByte(s.Key, '.'); i > 0 {
		return s.Key[:i]
	}
	return ""
}

func kindOf(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(Duration{}):
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	case t.Kind() == reflect.Map:
		return "table"
	case t.Kind() == reflect.Slice:
		return "array of " + kindOf(t.Elem()) + "s"
	}
	return t.Kind().String()
}

// settingDocs says what each setting does, in a sentence or two; the
// manual page renders it (keys that are not in the Config type are a test
// failure, so this cannot describe settings that do not exist).
func settingDocs() map[string]string {
	return map[string]string{
		"dkim":                    "DKIM signing keys, one [[dkim]] table per domain (internal/msgauth).",
		"dkim.domain":             "The DKIM signing domain (d=): mail whose From domain is this domain or a subdomain is signed with this key when it leaves for a remote host.",
		"dkim.selector":           "The DKIM selector (s=): the public key is published at SELECTOR._domainkey.DOMAIN (tlsmail dkim keygen prints the record).",
		"dkim.key":                "The PEM private key file (Ed25519 or RSA), relative to data_dir; made by tlsmail dkim keygen, mode 0600.",
		"msgauth.verify":          "Check DKIM, SPF and DMARC of mail from the MX port and add one Authentication-Results header (forged ones naming this host are removed).",
		"msgauth.dmarc":           "record (only the header) or enforce (refuse DMARC failures of p=reject domains with 550 5.7.1).",
		"hostname":                "The server's name: in the SMTP greeting, EHLO to other servers and Received headers.",
		"data_dir":                "Where the queue, Maildirs, reports and the control socket live; relative paths in this file are relative to it. Must belong to the user the server runs as.",
		"log_level":               "debug, info, warn or error.",
		"log_format":              "text (log/slog key=value lines) or json (one object per line).",
		"log_output":              "stderr; syslog (/dev/log, facility mail, tag tlsmail); or journald (the native protocol: MESSAGE is the log line and every attribute is a field of its own, such as CLIENT or TLS).",
		"metrics_address":         "host:port of the Prometheus /metrics endpoint; empty: off.",
		"local_domains":           "Domains delivered here (to users_file users and aliases). At least one.",
		"users_file":              "name:hash lines (bcrypt or argon2id), managed with tlsmail user; must exist.",
		"relay_networks":          "Client networks (CIDR) that may relay without AUTH.",
		"aliases":                 "Address or local part to user(s) or addresses, comma-separated.",
		"transport":               "Domain to host:port: deliver there instead of by MX (Postfix transport_maps).",
		"user":                    "Started as root: switch to this user after binding the ports and reading the keys.",
		"group":                   "The group for user (default: the user's own).",
		"authorized_submit_users": "Who may use sendmail's local mail drop (Postfix's authorized_submit_users): names, !name, static:anyone; first match decides.",

		"tls.cert":            "Certificate file (leaf, then chain); the key may be in the same file.",
		"tls.key":             "Private key file (PKCS#1, PKCS#8 or SEC1, not encrypted).",
		"tls.chain":           "Extra chain certificates.",
		"tls.client_auth":     "none, request or require a client certificate.",
		"tls.client_ca_file":  "CAs for client certificates (file).",
		"tls.client_ca_dir":   "CAs for client certificates (OpenSSL hashed directory).",
		"tls.min_version":     "Lowest TLS version offered, e.g. TLSv1.2.",
		"tls.ciphers":         "OpenSSL cipher string for TLS 1.2 and older; default ECDHE with AES-GCM or ChaCha20 only.",
		"tls.session_tickets": "TLS session tickets; off by default (Outlook/Exchange fail STARTTLS against Go's TLS 1.3 tickets).",
		"tls.sni":             "More certificates, chosen by the client's SNI: [[tls.sni]] tables with cert, key, chain.",
		"tls.sni.cert":        "Certificate file of an SNI entry.",
		"tls.sni.key":         "Key file of an SNI entry.",
		"tls.sni.chain":       "Chain file of an SNI entry.",

		"tls.client_crl": "CRL file or directory for client certificates: a revoked one is refused under client_auth = require, recorded as not verified under request (OpenSSL's crl_check).",

		"tls.acme.email":                "The ACME account's contact address (the CA's expiry notices). Required.",
		"tls.acme.directory":            "The CA's directory URL (https://); default Let's Encrypt.",
		"tls.acme.names":                "Names to hold certificates for; default hostname, plus mta-sts.DOMAIN of each local domain when [mta_sts] is set.",
		"tls.acme.ca_file":              "CAs for the directory's HTTPS instead of the system roots (a private or test CA).",
		"tls.acme.eab_key_id":           "External Account Binding key ID, for CAs that need one (with eab_mac_key).",
		"tls.acme.eab_mac_key":          "External Account Binding MAC key (a secret: tlsmail config does not print it).",
		"tls.acme.storage":              "certmagic's storage directory (default acme in the data directory); several servers may share one, it has locking.",
		"tls.acme.challenges":           "http-01 and/or tls-alpn-01 (default both).",
		"tls.acme.http_address":         "Where HTTP-01 challenges are answered (default :80).",
		"tls.acme.tls_alpn_address":     "Where TLS-ALPN-01 challenges are answered (default :443; when it is the [web] address, that listener answers them).",
		"tls.acme.renewal_window":       "Share of a certificate's lifetime left when it is renewed (default 1/3).",
		"tls.acme.renew_check_interval": "How often certificates are checked for renewal (default 10m).",
		"tls.acme.new_key_on_renewal":   "A fresh key with every renewal; off by default, so a published TLSA 3 1 1 record stays valid (a key change is tlsmail cert rollover).",
		"tls.acme.rollover_delay":       "After tlsmail cert rollover, switch to the announced next key by itself this long later; 0: only with tlsmail cert rollover --confirm.",

		"mta_sts.mode":    "enforce, testing or none.",
		"mta_sts.mx":      "MX names or *.patterns in the policy; default hostname.",
		"mta_sts.max_age": "Policy lifetime in seconds; default 604800 (a week).",
		"web.address":     "host:port of the HTTPS listener (MTA-STS policy hosting, ACME TLS-ALPN); empty: none.",

		"records.enabled":   "The TLS record store (DATA/records.db, SQLite): one record per session and delivery attempt, for tlsmail report and TLS-RPT; on by default.",
		"records.retention": "How long TLS records are kept (default 2160h, 90 days).",

		"auth_backend":               "Who checks passwords for SMTP AUTH, POP3 and IMAP logins: users (the users file, default) or dovecot:/run/dovecot/auth-client (Dovecot's auth server; also dovecot:inet:127.0.0.1:PORT). Needs a restart.",
		"delivery":                   "Local recipients' delivery agent by domain or address: maildir (default) or lmtp:unix:/run/dovecot/lmtp or lmtp:inet:HOST:PORT; an address entry wins over its domain's.",
		"relay_clientcerts":          "Clients whose certificate verified against client_ca_file and whose SHA-256 fingerprint or subject DN is listed here may relay (Postfix relay_clientcerts); needs client_auth request or require.",
		"permit_tls_all_clientcerts": "Any client whose certificate verified against client_ca_file may relay (Postfix permit_tls_all_clientcerts).",

		"imap_listener":                       "IMAP listeners: [[imap_listener]] tables.",
		"imap_listener.name":                  "A name for logs.",
		"imap_listener.address":               "host:port to listen on (143 / 993 style).",
		"imap_listener.mode":                  "starttls (LOGIN refused before STARTTLS, LOGINDISABLED advertised) or implicit (IMAPS).",
		"imap_listener.allow_plaintext_login": "Permit LOGIN/AUTHENTICATE before STARTTLS on this listener; off by default.",
		"imap_listener.optional":              "Go on without this listener when its address cannot be bound (an IPv6 address on a machine without IPv6).",
		"limits.imap_timeout":                 "IMAP autologout after login (at least 30m, RFC 9051); before login helo_timeout applies.",

		"outbound.tls_level":             "Default TLS level for delivery (Postfix smtp_tls_security_level): none, may, encrypt, fingerprint, verify, secure, dane, dane-only.",
		"outbound.policy":                "Per destination policy, Postfix tls_policy_maps syntax: \"example.org\" = \"secure match=example.org\"; \".example.org\" for subdomains.",
		"outbound.ca_file":               "Roots for verify and secure instead of the system's.",
		"outbound.dns_server":            "Resolver host:port (default: /etc/resolv.conf). Its AD bit is trusted on loopback or with dns_trust_ad.",
		"outbound.dns_trust_ad":          "Trust the resolver's DNSSEC AD bit although it is not on loopback.",
		"outbound.port":                  "SMTP port of MX hosts.",
		"outbound.connection_cache_time": "How long an idle connection to a host is kept for the next message to it (default 5s; Postfix's smtp_connection_cache_time_limit).",
		"outbound.tlsdestinations":       "An s/qmail control/tlsdestinations file, read unchanged.",
		"outbound.domaincerts":           "An s/qmail control/domaincerts file (client certificates per domain), read unchanged.",
		"outbound.mta_sts":               "Apply RFC 8461 MTA-STS policies to destinations without their own policy.",
		"outbound.mta_sts_port":          "HTTPS port for MTA-STS policy fetches (tests only).",

		"limits.message_size":       "Largest message in octets (SIZE).",
		"limits.recipients":         "Recipients per message.",
		"limits.command_line":       "Longest command line in octets (RFC 5321 says 512; room for long ESMTP parameters).",
		"limits.connections":        "Connections per listener.",
		"limits.connections_per_ip": "Connections per client address per listener (IPv6 counted per /64).",
		"limits.command_timeout":    "Wait for a command (RFC 5321 4.5.3.2).",
		"limits.data_timeout":       "Per read during DATA.",
		"limits.session_timeout":    "Whole SMTP session.",
		"limits.auth_failures":      "AUTH failures per client address per auth_window, then 454.",
		"limits.auth_window":        "See auth_failures.",
		"limits.bad_commands":       "Errors (refused recipients too) before 421 and close.",
		"limits.pop3_timeout":       "POP3 autologout (RFC 1939: at least 10 minutes).",
		"limits.helo_timeout":       "command_timeout until the first HELO/EHLO, and for the TLS handshake on implicit-TLS ports.",
		"limits.stress_timeout":     "Every timeout while a listener is above 80% of its connections.",

		"sender_login":      "Sender-login check on authenticated SMTP: \"enforce\" refuses a MAIL FROM the logged-in user does not own (its addresses, aliases reaching it, sender_login_maps) with 553 5.7.1 (Postfix reject_sender_login_mismatch, envelope only); \"off\" allows any.",
		"sender_login_maps": "More addresses a user may send as with sender_login = \"enforce\": user = [\"addr@domain\", \"@whole.domain\"].",
		"quota.storage":     "Default storage quota of each local mailbox (INBOX and folders), bytes with K/M/G/T suffix (powers of 1024); empty or 0: none.",
		"quota.messages":    "Default message-count quota of each local mailbox; 0: none.",
		"quota.user":        "Per-user overrides: \"alice@example.org\" = { storage = \"5G\", messages = 100000 }; storage \"0\" or messages -1 lifts that limit.",
		"pipe.timeout":      "How long a pipe command may run before its process group is killed and the delivery deferred (Postfix command_time_limit).",
		"pipe.user":         "Whom pipe commands run as while tlsmail runs as root (default: user); a command never runs as root.",

		"queue.workers":     "Deliveries in parallel.",
		"queue.first_retry": "First retry of a deferred delivery; then doubling.",
		"queue.max_retry":   "Longest wait between retries.",
		"queue.lifetime":    "How long a message is retried before it bounces.",

		"listener":                     "SMTP listeners: [[listener]] tables.",
		"listener.name":                "Names the listener in logs and metrics; unique.",
		"listener.address":             "host:port to listen on.",
		"listener.mode":                "plain, starttls or implicit (TLS from the first byte, SMTPS).",
		"listener.auth":                "none, optional (needed only to relay; the default, but none on a plain listener) or required (submission).",
		"listener.tls_auth_only":       "AUTH only after TLS (default true).",
		"listener.allow_insecure_auth": "Allow AUTH without TLS on this listener (loopback tests only).",
		"listener.optional":            "If the address cannot be bound, log it and run without this listener.",

		"pop3_listener":                       "POP3 listeners: [[pop3_listener]] tables.",
		"pop3_listener.name":                  "Names the listener in logs; unique.",
		"pop3_listener.address":               "host:port to listen on.",
		"pop3_listener.mode":                  "starttls (STLS) or implicit (POP3S).",
		"pop3_listener.allow_plaintext_login": "Allow USER/PASS/AUTH before STLS.",
		"pop3_listener.optional":              "As listener.optional.",
	}
}
