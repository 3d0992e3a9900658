package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/safeio"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// Error is a configuration error at a file and line.
type Error struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// decodeErrRe matches BurntSushi/toml's type-mismatch error text.
var decodeErrRe = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// Load reads, defaults and validates a configuration file.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is the Error's File already
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	var c Config
	md, err := toml.Decode(string(src), &c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line := pe.Position.Line
			if strings.Contains(pe.Message, `got '\n'`) && line > 1 {
				line-- // the parser counts the newline that ended the bad line
			}
			msg := pe.Message
			if strings.Contains(msg, "out of range") && pe.LastKey != "" {
				msg = pe.LastKey + ": " + msg // "99999999999999999999 is out of range for int64" names no setting
			}
			return nil, &Error{File: path, Line: line, Msg: msg}
		}
		// A value of the wrong type (message_size = "big") comes back as a
		// plain string error; its line and key are taken from the text so
		// it reads like every other config error. Any other shape is kept
		// whole.
		if m := decodeErrRe.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: path, Line: line, Msg: m[2] + ": " + plainTypeError(m[2], m[3])}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	loc := locator{src: src}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		msg := fmt.Sprintf("unknown setting %q", k.String())
		switch md.Type(k...) {
		case "Hash":
			msg = fmt.Sprintf("unknown table [%s]", k.String())
		case "ArrayHash":
			msg = fmt.Sprintf("unknown table [[%s]]", k.String())
		}
		return nil, &Error{File: path, Line: loc.line(k...), Msg: msg}
	}
	c.File = path
	err = checkExplicit(md, &c)
	c.Defaults()
	if err == nil {
		err = c.validate()
	}
	if err != nil {
		var ve *validationError
		if errors.As(err, &ve) {
			return nil, &Error{File: path, Line: loc.line(ve.key...), Msg: ve.msg}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return &c, nil
}

// validationError names the offending key so Load can find its line.
type validationError struct {
	key []string
	msg string
}

func (e *validationError) Error() string { return e.msg }

func bad(msg string, key ...string) error { return &validationError{key: key, msg: msg} }

// Validate checks the configuration (Load does this; Dev configurations
// are checked the same way).
func (c *Config) Validate() error { return c.validate() }

func (c *Config) validate() error {
	if len(c.LocalDomains) == 0 {
		return bad("local_domains must list at least one domain", "local_domains")
	}
	for _, d := range c.LocalDomains {
		if d == "" || strings.ContainsAny(d, " @/") {
			return bad(fmt.Sprintf("local_domains: invalid domain %q", d), "local_domains")
		}
	}
	if err := c.checkDKIM(); err != nil { // dkim.go
		return err
	}
	if err := c.Records.check(); err != nil {
		return err
	}
	if err := c.TLSRPT.check(c); err != nil { // tlsrpt.go
		return err
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad(fmt.Sprintf("log_level %q: want debug, info, warn or error", c.LogLevel), "log_level")
	}
	if err := c.Logging.validate(); err != nil {
		return err
	}
	c.relayNets = nil
	for _, n := range c.RelayNets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				return bad(fmt.Sprintf("relay_networks: %q is not a CIDR network", n), "relay_networks")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.relayNets = append(c.relayNets, p.Masked())
	}
	if c.Metrics != "" {
		if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
			return bad(fmt.Sprintf("metrics_address %q is not host:port", c.Metrics), "metrics_address")
		}
	}
	for dom, hp := range c.Transport {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			return bad(fmt.Sprintf("transport %q: %q is not host:port", dom, hp), "transport", dom)
		}
	}
	if err := c.validateDelivery(); err != nil {
		return err
	}
	if err := c.Pipe.check(); err != nil {
		return err
	}
	if err := c.Mailboxes.check(); err != nil { // vdomains.go
		return err
	}
	if err := c.checkAliasPipes(); err != nil {
		return err
	}
	for k, v := range c.Aliases {
		if strings.TrimSpace(v) == "" {
			return bad(fmt.Sprintf("aliases: %q has no target", k), "aliases", k)
		}
	}
	needTLS := false
	for i, l := range c.Listeners {
		idx := fmt.Sprint(i)
		if _, _, err := net.SplitHostPort(l.Address); err != nil {
			return bad(fmt.Sprintf("listener %s: address %q is not host:port", l.Name, l.Address), "listener", idx, "address")
		}
		switch l.Mode {
		case ModePlain, ModeSTARTTLS, ModeImplicit:
		default:
			return bad(fmt.Sprintf("listener %s: mode %q: want plain, starttls or implicit", l.Name, l.Mode), "listener", idx, "mode")
		}
		switch l.Auth {
		case AuthNone, AuthOptional, AuthRequired:
		default:
			return bad(fmt.Sprintf("listener %s: auth %q: want none, optional or required", l.Name, l.Auth), "listener", idx, "auth")
		}
		if l.Mode == ModePlain && l.Auth != AuthNone && l.RequireTLSForAuth() && !l.AllowInsecureAuth {
			return bad(fmt.Sprintf("listener %s: auth on a plain listener needs TLS it cannot have; set auth = \"none\" or mode = \"starttls\"", l.Name), "listener", idx, "auth")
		}
		needTLS = needTLS || l.Mode != ModePlain
	}
	for i, p := range c.POP3 {
		idx := fmt.Sprint(i)
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			return bad(fmt.Sprintf("pop3_listener %s: address %q is not host:port", p.Name, p.Address), "pop3_listener", idx, "address")
		}
		switch p.Mode {
		case ModeSTARTTLS, ModeImplicit:
		case ModePlain:
			if !p.AllowPlaintextLogin {
				return bad(fmt.Sprintf("pop3_listener %s: mode plain allows no login; use starttls or implicit (or allow_plaintext_login = true)", p.Name), "pop3_listener", idx, "mode")
			}
		default:
			return bad(fmt.Sprintf("pop3_listener %s: mode %q: want starttls or implicit", p.Name, p.Mode), "pop3_listener", idx, "mode")
		}
		needTLS = needTLS || p.Mode != ModePlain
	}
	if err := c.validateIMAP(); err != nil {
		return err
	}
	needTLS = needTLS || c.imapNeedsTLS()
	if len(c.Listeners) == 0 && len(c.POP3) == 0 && len(c.IMAP) == 0 {
		return bad("no [[listener]] configured", "listener")
	}
	if needTLS && c.TLS.Cert == "" && c.TLS.ACME == nil {
		return bad("listeners use TLS but neither [tls] cert nor [tls.acme] is set", "tls", "cert")
	}
	if err := c.validateACME(); err != nil {
		return err
	}
	if err := c.checkMilters(); err != nil { // milter.go
		return err
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	if c.TLS.Ciphers != "" {
		if _, err := tlsconf.ParseCiphers(c.TLS.Ciphers); err != nil {
			return bad(err.Error(), "tls", "ciphers")
		}
	}
	if _, err := tlsconf.ParseVersion(c.TLS.MinVersion, 0); err != nil {
		return bad(err.Error(), "tls", "min_version")
	}
	if _, err := policy.ParseLevel(c.Outbound.TLSLevel); err != nil {
		return bad("outbound.tls_level: "+err.Error(), "outbound", "tls_level")
	}
	for dom, v := range c.Outbound.Policy {
		if _, err := policy.ParsePolicy(v); err != nil {
			return bad(fmt.Sprintf("outbound.policy %q: %v", dom, err), "outbound", "policy", dom)
		}
	}
	if c.Limits.MessageSize < 1024 {
		return bad("limits.message_size must be at least 1024", "limits", "message_size")
	}
	if c.Limits.CommandLine < 512 {
		return bad("limits.command_line must be at least 512 (RFC 5321 §4.5.3.1.4)", "limits", "command_line")
	}
	if err := c.checkListeners(); err != nil {
		return err
	}
	if err := c.checkRoute(); err != nil {
		return err
	}
	return c.checkRunAs()
}

// locator finds the line of a key in TOML source: it follows [table] and
// [[array]] headers (counting array elements) and matches "key =".
type locator struct{ src []byte }

var headerRE = regexp.MustCompile(`^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?`)

func (l locator) line(key ...string) int {
	if len(key) == 0 {
		return 0
	}
	// Split the key into the table path and the final key, resolving an
	// array index ("listener", "2", "mode").
	table, arrayIdx, leaf := "", -1, key[len(key)-1]
	switch {
	case len(key) >= 3 && isIndex(key[1]):
		table, arrayIdx = key[0], atoi(key[1])
	case len(key) == 2 && isIndex(key[1]):
		table, arrayIdx, leaf = key[0], atoi(key[1]), ""
	case len(key) >= 2:
		table = strings.Join(key[:len(key)-1], ".")
	}
	cur, count := "", map[string]int{}
	curIdx := -1
	firstHeader := 0
	for n, raw := range bytes.Split(l.src, []byte("\n")) {
		s := strings.TrimSpace(string(raw))
		if m := headerRE.FindStringSubmatch(s); m != nil {
			cur = m[2]
			curIdx = -1
			if m[1] == "[[" {
				curIdx = count[cur]
				count[cur]++
			}
			if full := strings.Join(key, "."); cur == full || strings.HasPrefix(cur, full+".") {
				return n + 1 // the key names a table ("[queu]", "[queu.sub]", "[limits.foo]")
			}
			if cur == table && (arrayIdx < 0 || curIdx == arrayIdx) {
				if leaf == "" {
					return n + 1
				}
				if firstHeader == 0 {
					firstHeader = n + 1
				}
			}
			continue
		}
		if cur != table || (arrayIdx >= 0 && curIdx != arrayIdx) {
			continue
		}
		k, _, ok := strings.Cut(s, "=")
		if ok && strings.Trim(strings.TrimSpace(k), `"'`) == leaf {
			return n + 1
		}
	}
	return firstHeader
}

func isIndex(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// Write saves the configuration as TOML (used for DATA/tlsmail.toml in dev mode).
func (c *Config) Write(path string, header string) error {
	var buf bytes.Buffer
	buf.WriteString(header)
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return err
	}
	return safeio.WriteFile(path, buf.Bytes(), 0o644)
}
