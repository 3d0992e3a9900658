// Package config is tlsmail's one configuration loader: the TOML file,
// its defaults (the safe ones, with names Postfix admins know), and
// validation whose errors name the file and line. Relative paths in the
// file are relative to data_dir.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Listener modes.
const (
	ModePlain    = "plain"    // no TLS
	ModeSTARTTLS = "starttls" // plaintext with STARTTLS offered
	ModeImplicit = "implicit" // TLS from the first byte (SMTPS, port 465 style)
)

// AUTH policies of a listener.
const (
	AuthNone     = "none"     // AUTH not offered
	AuthOptional = "optional" // offered; needed only to relay
	AuthRequired = "required" // submission: MAIL needs AUTH first
)

// Duration is a time.Duration written as "5m", "30s" in the file.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 30s, 5m, 1h)", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes a duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is the whole configuration.
type Config struct {
	Hostname     string            `toml:"hostname"`
	DataDir      string            `toml:"data_dir"`
	LogLevel     string            `toml:"log_level"`
	Logging                        // log_format, log_output (logging.go)
	Metrics      string            `toml:"metrics_address"` // Prometheus /metrics on host:port; empty: off
	LocalDomains []string          `toml:"local_domains"`
	UsersFile    string            `toml:"users_file"`
	RelayNets    []string          `toml:"relay_networks"`
	Aliases      map[string]string `toml:"aliases"`   // address or local part → "user" or "a@x, b@y"
	Transport    map[string]string `toml:"transport"` // domain → host:port (Postfix transport_maps)
	TLS          TLS               `toml:"tls"`
	Outbound     Outbound          `toml:"outbound"`
	Limits       Limits            `toml:"limits"`
	Queue        Queue             `toml:"queue"`
	Records      Records           `toml:"records"`          // records.go
	TLSRPT       TLSRPT            `toml:"tlsrpt,omitempty"` // reports in by HTTPS (tlsrpt.go)
	DKIM         []DKIMKey         `toml:"dkim"`             // dkim.go
	Auth         MsgAuth           `toml:"msgauth"`          // dkim.go
	Milters      []Milter          `toml:"milter"`           // milter.go
	Listeners    []Listener        `toml:"listener"`
	POP3         []POP3Listener    `toml:"pop3_listener"`
	IMAP         []IMAPListener    `toml:"imap_listener"`     // see imap.go
	MTASTS       *MTASTSHosting    `toml:"mta_sts,omitempty"` // policy hosting (acme.go)
	Web          Web               `toml:"web,omitempty"`     // the HTTPS listener (acme.go)
	Admin        *Admin            `toml:"admin,omitempty"`   // the dashboard (admin.go)
	// User and Group are whom `serve` runs as after binding its
	// listeners and reading its keys as root (see runas.go); empty: no
	// change.
	User  string `toml:"user,omitempty"`
	Group string `toml:"group,omitempty"`

	// AuthorizedSubmitUsers is Postfix's authorized_submit_users: the
	// local users whose files the pickup collector takes (sendmail's
	// mail drop), as names, "!name" or "static:anyone"; the first match
	// decides (see pickup.Authorized). Empty: everyone.
	AuthorizedSubmitUsers []string `toml:"authorized_submit_users"`

	RelayByCert // relay_clientcerts, permit_tls_all_clientcerts (route.go)

	// AuthBackend checks AUTH and POP3 passwords: "users" (the users
	// file, the default) or "dovecot:/run/dovecot/auth-client" (Dovecot's
	// auth server; also dovecot:inet:host:port). Delivery maps local
	// recipients to agents: domain or address → "maildir" (the default)
	// or "lmtp:unix:/path" / "lmtp:inet:host:port". See delivery.go.
	AuthBackend string            `toml:"auth_backend,omitempty"`
	Delivery    map[string]string `toml:"delivery,omitempty"`
	Pipe        Pipe              `toml:"pipe"` // the pipe agent (pipe.go)
	Mailboxes                     // sender_login, sender_login_maps, [quota] (vdomains.go)

	// File is where the configuration came from ("" for built-in defaults).
	File string `toml:"-"`
	// relayNets is RelayNets parsed.
	relayNets []netip.Prefix
	// delivery and dovecotAuth are Delivery and AuthBackend parsed.
	delivery    map[string]DeliveryTarget
	dovecotAuth *auth.Dovecot
}

// TLS is the server TLS configuration (see internal/tlsconf).
type TLS struct {
	Cert           string `toml:"cert"`
	Key            string `toml:"key"`
	Chain          string `toml:"chain"`
	ClientAuth     string `toml:"client_auth"` // none, request, require
	ClientCAFile   string `toml:"client_ca_file"`
	ClientCADir    string `toml:"client_ca_dir"`
	ClientCRL      string `toml:"client_crl,omitempty"` // CRL file or directory for client certificates
	MinVersion     string `toml:"min_version"`
	Ciphers        string `toml:"ciphers"`
	SessionTickets bool   `toml:"session_tickets"`
	// Extra certificates chosen by SNI.
	SNI []tlsconf.CertSpec `toml:"sni"`
	// ACME obtains and renews certificates (acme.go); cert may then be empty.
	ACME *ACME `toml:"acme,omitempty"`
}

// Outbound configures delivery to other domains.
type Outbound struct {
	// TLSLevel is the default policy level (Postfix's smtp_tls_security_level): may.
	TLSLevel string `toml:"tls_level"`
	// Policy maps a domain (or ".domain" for its subdomains) to a policy,
	// Postfix tls_policy_maps style: "verify", "secure match=example.com:.example.com",
	// "fingerprint match=SHA256HEX", "dane", "dane-only", "encrypt", "none".
	Policy map[string]string `toml:"policy"`
	// CAFile replaces the system roots for verify/secure (tests, private CAs).
	CAFile string `toml:"ca_file"`
	// DNSServer is the resolver (host:port); empty: /etc/resolv.conf. Its
	// AD bit is trusted when it is on loopback or DNSTrustAD is set.
	DNSServer  string `toml:"dns_server"`
	DNSTrustAD bool   `toml:"dns_trust_ad"`
	// Port is the SMTP port of MX hosts (25; tests use others).
	Port int `toml:"port"`
	// Tlsdestinations and Domaincerts import s/qmail's control files
	// unchanged (see ucspi-ssl.md §5). With tlsdestinations, a destination
	// without a [outbound.policy] entry gets s/qmail's rule.
	Tlsdestinations string `toml:"tlsdestinations"`
	Domaincerts     string `toml:"domaincerts"`
	// MTASTS applies RFC 8461 policies to destinations without an
	// explicit policy (default on); MTASTSPort is for tests.
	MTASTS     *bool `toml:"mta_sts"`
	MTASTSPort int   `toml:"mta_sts_port"`
	// ConnectionCacheTime is how long an idle connection to a host is kept
	// for the next message to it (default 5s; Postfix's
	// smtp_connection_cache_time_limit).
	ConnectionCacheTime Duration `toml:"connection_cache_time"`
}

// Limits bound what clients can make the server do.
type Limits struct {
	MessageSize      int64    `toml:"message_size"`       // octets; default 35 MB (36700160)
	Recipients       int      `toml:"recipients"`         // per message; default 1000
	CommandLine      int      `toml:"command_line"`       // octets without CRLF; default 1000 (RFC 5321: 512, plus room for long ESMTP parameters)
	Connections      int      `toml:"connections"`        // total; default 1000
	ConnectionsPerIP int      `toml:"connections_per_ip"` // default 50
	CommandTimeout   Duration `toml:"command_timeout"`    // wait for a command; RFC 5321 §4.5.3.2: 5m
	DataTimeout      Duration `toml:"data_timeout"`       // per read during DATA; RFC 5321: 3m
	SessionTimeout   Duration `toml:"session_timeout"`    // whole session; default 1h
	AuthFailures     int      `toml:"auth_failures"`      // per IP per AuthWindow; default 5
	AuthWindow       Duration `toml:"auth_window"`        // default 10m
	BadCommands      int      `toml:"bad_commands"`       // errors before disconnect; default 20
	POP3Timeout      Duration `toml:"pop3_timeout"`       // POP3 autologout; RFC 1939 says at least 10m
	IMAPTimeout      Duration `toml:"imap_timeout"`       // IMAP autologout after login, IDLE included; RFC 9051: at least 30m
	// HeloTimeout is command_timeout for a client that has not yet sent
	// a successful HELO/EHLO (default 1m): a connection that only holds a
	// slot gets less time than a session that is talking.
	HeloTimeout Duration `toml:"helo_timeout"`
	// StressTimeout replaces longer command, DATA and POP3 timeouts while
	// a listener uses more than 80% of its connections (default 10s,
	// Postfix's stress value).
	StressTimeout Duration `toml:"stress_timeout"`
}

// Queue tunes the spool and retries.
type Queue struct {
	Workers    int      `toml:"workers"`
	FirstRetry Duration `toml:"first_retry"`
	MaxRetry   Duration `toml:"max_retry"`
	Lifetime   Duration `toml:"lifetime"`
}

// Listener is one SMTP listening socket.
type Listener struct {
	Name        string `toml:"name"`
	Address     string `toml:"address"`
	Mode        string `toml:"mode"` // plain, starttls, implicit
	Auth        string `toml:"auth"` // none, optional, required
	TLSAuthOnly *bool  `toml:"tls_auth_only"`
	// AllowInsecureAuth permits AUTH without TLS on this listener; only
	// for loopback test setups. Off by default.
	AllowInsecureAuth bool `toml:"allow_insecure_auth"`
	// Optional: if the address cannot be bound (no IPv6 on this machine,
	// say), the server logs it and runs without this listener.
	Optional bool `toml:"optional,omitempty"`
}

// POP3Listener is one POP3 listening socket.
type POP3Listener struct {
	Name    string `toml:"name"`
	Address string `toml:"address"`
	Mode    string `toml:"mode"` // starttls (STLS) or implicit (POP3S); plain is refused
	// AllowPlaintextLogin permits USER/PASS/AUTH before STLS on this
	// listener; off by default.
	AllowPlaintextLogin bool `toml:"allow_plaintext_login"`
	// Optional: as Listener.Optional.
	Optional bool `toml:"optional,omitempty"`
}

// RequireTLSForAuth reports whether AUTH needs TLS (the default).
func (l Listener) RequireTLSForAuth() bool {
	return l.TLSAuthOnly == nil || *l.TLSAuthOnly
}

// Defaults fills unset fields with tlsmail's defaults.
func (c *Config) Defaults() {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.DataDir == "" {
		c.DataDir = "tlsmail-data"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	c.Logging.defaults()
	if c.UsersFile == "" {
		c.UsersFile = "users"
	}
	l := &c.Limits
	setInt64(&l.MessageSize, 35*1024*1024)
	setInt(&l.Recipients, 1000)
	setInt(&l.CommandLine, 1000)
	setInt(&l.Connections, 1000)
	setInt(&l.ConnectionsPerIP, 50)
	setDur(&l.CommandTimeout, 5*time.Minute)
	setDur(&l.DataTimeout, 3*time.Minute)
	setDur(&l.SessionTimeout, time.Hour)
	setInt(&l.AuthFailures, 5)
	setDur(&l.AuthWindow, 10*time.Minute)
	setInt(&l.BadCommands, 20)
	setDur(&l.POP3Timeout, 10*time.Minute)
	setDur(&l.HeloTimeout, time.Minute)
	setDur(&l.StressTimeout, 10*time.Second)
	setInt(&c.Queue.Workers, 8)
	c.Records.defaults()
	c.Pipe.defaults()
	c.Mailboxes.defaults()
	c.adminDefaults()
	c.milterDefaults() // milter.go
	setInt(&c.Outbound.Port, 25)
	setDur(&c.Outbound.ConnectionCacheTime, 5*time.Second)
	if c.Outbound.MTASTS == nil {
		on := true
		c.Outbound.MTASTS = &on
	}
	if c.Outbound.TLSLevel == "" {
		c.Outbound.TLSLevel = "may"
	}
	setDur(&c.Queue.FirstRetry, 5*time.Minute)
	setDur(&c.Queue.MaxRetry, time.Hour)
	setDur(&c.Queue.Lifetime, 5*24*time.Hour)
	for i := range c.Listeners {
		ls := &c.Listeners[i]
		if ls.Mode == "" {
			ls.Mode = ModeSTARTTLS
		}
		if ls.Auth == "" {
			ls.Auth = AuthOptional
			if ls.Mode == ModePlain {
				ls.Auth = AuthNone // no TLS, so no AUTH (tls_auth_only)
			}
		}
		if ls.Name == "" {
			ls.Name = fmt.Sprintf("smtp%d", i+1)
		}
	}
	c.imapDefaults()
	c.acmeDefaults()
	for i := range c.POP3 {
		p := &c.POP3[i]
		if p.Mode == "" {
			p.Mode = ModeSTARTTLS
		}
		if p.Name == "" {
			p.Name = fmt.Sprintf("pop3-%d", i+1)
		}
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setInt64(p *int64, v int64) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if p.Duration == 0 {
		p.Duration = v
	}
}

// Path resolves a path from the file relative to the data directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// IsLocalDomain reports whether mail for domain is delivered here.
func (c *Config) IsLocalDomain(domain string) bool {
	for _, d := range c.LocalDomains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// InRelayNets reports whether ip may relay without authentication.
func (c *Config) InRelayNets(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range c.relayNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ServerTLS returns the tlsconf settings for the listeners.
func (c *Config) ServerTLS() tlsconf.ServerSettings {
	s := tlsconf.ServerSettings{
		ClientAuth:     c.TLS.ClientAuth,
		ClientCAFile:   c.Path(c.TLS.ClientCAFile),
		ClientCADir:    c.Path(c.TLS.ClientCADir),
		ClientCRL:      c.Path(c.TLS.ClientCRL),
		MinVersion:     c.TLS.MinVersion,
		Ciphers:        c.TLS.Ciphers,
		SessionTickets: c.TLS.SessionTickets,
	}
	if c.TLS.Cert != "" || c.TLS.ACME == nil { // with ACME, files are optional
		s.Certs = []tlsconf.CertSpec{{CertFile: c.Path(c.TLS.Cert), KeyFile: c.Path(c.TLS.Key), ChainFile: c.Path(c.TLS.Chain)}}
	}
	for _, x := range c.TLS.SNI {
		s.Certs = append(s.Certs, tlsconf.CertSpec{CertFile: c.Path(x.CertFile), KeyFile: c.Path(x.KeyFile), ChainFile: c.Path(x.ChainFile)})
	}
	return s
}
