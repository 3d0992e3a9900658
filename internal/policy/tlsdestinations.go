package policy

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/certs"
)

// QmailRule is one line of s/qmail's control/tlsdestinations
// (ucspi-ssl.md §5.2): KEY:CAFILE_OR_PIN|CIPHERS|VERIFYDEPTH;PORT|SENDERDOMAIN.
type QmailRule struct {
	Key          string
	Line         int
	CAFile       string // a CA file, or a directory when it ends in "/"
	Pin          string // "=hex" pin (class 7)
	Ciphers      string // accepted; Go chooses the suites
	Depth        int
	Port         int
	SenderDomain string
}

// Tlsdestinations is a loaded tlsdestinations file.
type Tlsdestinations struct {
	File  string
	rules map[string]QmailRule // lower-case key
}

// LoadTlsdestinations reads the file; a malformed line is an error naming
// the file and line. Comments and blank lines are skipped; as in s/qmail,
// text after the value is part of it (no inline comments).
//
// Each rule's CA file or directory is loaded too, so that one missing or
// broken is an error here (tlsmail check, serve, reload) naming its line,
// not a deferral of every message to that destination.
func LoadTlsdestinations(path string) (*Tlsdestinations, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseTlsdestinations(path, data)
	if err != nil {
		return nil, err
	}
	rules := slices.SortedFunc(maps.Values(t.rules), func(a, b QmailRule) int { return a.Line - b.Line })
	for _, r := range rules {
		if r.CAFile == "" {
			continue
		}
		if _, err := qmailCAs(r.CAFile); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, r.Line, err)
		}
	}
	return t, nil
}

// ParseTlsdestinations parses tlsdestinations text (path names it in errors).
func ParseTlsdestinations(path string, data []byte) (*Tlsdestinations, error) {
	t := &Tlsdestinations{File: path, rules: map[string]QmailRule{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEY:VALUE", path, n)
		}
		r, err := parseQmailValue(val)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		r.Key, r.Line = strings.ToLower(key), n
		if strings.HasPrefix(r.Key, "%") && r.Pin == "" {
			return nil, fmt.Errorf("%s:%d: a %% rule needs =FINGERPRINT", path, n)
		}
		if r.Pin != "" {
			switch len(r.Pin) {
			case 40, 56, 64, 128:
			default:
				return nil, fmt.Errorf("%s:%d: invalid digest length %d (want SHA-1, SHA-224, SHA-256 or SHA-512 hex)", path, n, len(r.Pin))
			}
		}
		if _, dup := t.rules[r.Key]; dup {
			return nil, fmt.Errorf("%s:%d: key %q given twice", path, n, key)
		}
		t.rules[r.Key] = r
	}
	return t, sc.Err()
}

// parseQmailValue parses CAFILE_OR_PIN|CIPHERS|DEPTH;PORT|SENDERDOMAIN
// (every field optional; ";PORT" alone is the documented shortcut).
func parseQmailValue(v string) (QmailRule, error) {
	var r QmailRule
	if strings.HasPrefix(v, ";") && !strings.Contains(v, "|") {
		v = "||;" + v[1:]
	}
	f := strings.Split(v, "|")
	if len(f) > 4 {
		return r, fmt.Errorf("too many |-separated fields in %q", v)
	}
	if f[0] != "" {
		if strings.HasPrefix(f[0], "=") {
			r.Pin = strings.ToLower(strings.ReplaceAll(f[0][1:], ":", ""))
			if strings.Trim(r.Pin, "0123456789abcdef") != "" {
				return r, fmt.Errorf("pin %q is not hex", f[0])
			}
		} else {
			r.CAFile = f[0]
		}
	}
	if len(f) == 3 && f[1] == "" && strings.Trim(f[2], "0123456789;") != "" {
		// The documented "-adhonlydomain.com:||aNULL:!kRSA" puts the
		// cipher list in the third field; read it as ciphers.
		f[1], f[2] = f[2], ""
	}
	if len(f) > 1 {
		r.Ciphers = f[1]
	}
	if len(f) > 2 && f[2] != "" {
		depth, port, hasPort := strings.Cut(f[2], ";")
		if depth != "" {
			d, err := strconv.Atoi(depth)
			if err != nil || d < 0 {
				return r, fmt.Errorf("verify depth %q is not a number", depth)
			}
			r.Depth = d
		}
		if hasPort {
			p, err := strconv.Atoi(port)
			if err != nil || p <= 0 || p > 65535 {
				return r, fmt.Errorf("port %q is not a port number", port)
			}
			r.Port = p
		}
	}
	if len(f) > 3 {
		r.SenderDomain = strings.ToLower(f[3])
	}
	return r, nil
}

// suffixes are host, then each tail starting at a dot (".example.com",
// ".com"). The empty tail is left out: s/qmail's code matches it too,
// which turns a bare "-:" into a mandatory rule; we follow the documented
// meaning (ucspi-ssl.md §5.2 recommends it).
func suffixes(host string) []string {
	out := []string{host}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			out = append(out, host[i:])
		}
	}
	return out
}

// Lookup finds the rule for a destination host and sender domain, in
// s/qmail's order; class is its TLS class (−1 never … 7 pinned; 0: no
// rule, which in s/qmail means no TLS).
func (t *Tlsdestinations) Lookup(host, senderDomain string) (QmailRule, int) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	senderDomain = strings.ToLower(senderDomain)
	find := func(key string) (QmailRule, bool) {
		r, ok := t.rules[key]
		if ok && r.SenderDomain != "" && r.SenderDomain != senderDomain {
			return r, false // the rule is for another sender domain
		}
		return r, ok
	}
	for _, s := range suffixes(host) {
		if r, ok := find("!" + s); ok {
			return r, -1
		}
	}
	if r, ok := find("%" + host); ok {
		return r, 7
	}
	if r, ok := find("=" + host); ok {
		return r, 6
	}
	for _, step := range []struct {
		prefix string
		class  int
	}{{"~", 5}, {"", 4}, {"-", 3}} {
		for _, s := range suffixes(host) {
			if r, ok := find(step.prefix + s); ok {
				return r, step.class
			}
		}
	}
	for _, g := range []struct {
		key   string
		class int
	}{{"=*", 6}, {"~*", 5}, {"+*", 4}, {"-*", 3}, {"*", 2}, {"-", 1}} {
		if r, ok := find(g.key); ok {
			return r, g.class
		}
	}
	return QmailRule{}, 0
}

// PolicyFor gives the native policy equivalent to the rule s/qmail would
// apply to host (the destination domain or relay host), for sender domain.
func (t *Tlsdestinations) PolicyFor(host, senderDomain string) (Policy, error) {
	r, class := t.Lookup(host, senderDomain)
	src := fmt.Sprintf("%s:%d", t.File, r.Line)
	if class == 0 {
		src = t.File + " (no rule: no TLS, as s/qmail)"
	}
	p := Policy{Source: src, Port: r.Port, Implicit: r.Port == 465}
	var roots *x509.CertPool
	if r.CAFile != "" {
		pool, err := qmailCAs(r.CAFile)
		if err != nil {
			return p, fmt.Errorf("%s: %w", src, err)
		}
		roots = pool
	}
	switch class {
	case -1, 0:
		p.Level = None
	case 1, 2:
		p.Level = May
	case 3:
		p.Level = Encrypt
	case 4:
		if roots == nil {
			p.Level = Encrypt // "TLS required, any certificate"
		} else {
			p.Level, p.Roots, p.SkipName = Verify, roots, true
		}
	case 5, 6:
		p.Level, p.Match, p.Roots = Verify, []string{host}, roots
		p.SkipChain = roots == nil
	case 7:
		p.Level, p.Fingerprints = Fingerprint, []string{r.Pin}
	}
	return p, nil
}

// qmailCAs loads a CA file, or a hashed directory when the path ends in "/".
func qmailCAs(path string) (*x509.CertPool, error) {
	if strings.HasSuffix(path, "/") {
		return certs.LoadCAs("", path)
	}
	return certs.LoadCAs(path, "")
}

// DomainCert is a client certificate for a sender domain
// (control/domaincerts: DOMAIN:CERTFILE|KEYFILE|PASSWORD).
type DomainCert struct {
	Domain, CertFile, KeyFile string
	Line                      int
}

// DomainCerts is a loaded domaincerts file.
type DomainCerts struct {
	File  string
	certs map[string]DomainCert
}

// LoadDomainCerts reads control/domaincerts. A PASSWORD field is refused:
// tlsmail does not read encrypted keys (decrypt the key and protect the
// file instead).
func LoadDomainCerts(path string) (*DomainCerts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &DomainCerts{File: path, certs: map[string]DomainCert{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		dom, val, ok := strings.Cut(line, ":")
		if !ok || val == "" {
			return nil, fmt.Errorf("%s:%d: want DOMAIN:CERTFILE|KEYFILE|PASSWORD", path, n)
		}
		f := strings.Split(val, "|")
		if len(f) > 3 {
			return nil, fmt.Errorf("%s:%d: too many |-separated fields", path, n)
		}
		if len(f) == 3 && f[2] != "" {
			return nil, fmt.Errorf("%s:%d: encrypted keys (PASSWORD) are not supported; decrypt the key with `openssl pkey` and protect the file", path, n)
		}
		dc := DomainCert{Domain: strings.ToLower(dom), CertFile: f[0], KeyFile: f[0], Line: n}
		if len(f) > 1 && f[1] != "" {
			dc.KeyFile = f[1]
		}
		d.certs[dc.Domain] = dc
	}
	return d, sc.Err()
}

// For finds the certificate for a sender domain: the domain, each suffix
// at a dot, then "*".
func (d *DomainCerts) For(senderDomain string) (DomainCert, bool) {
	for _, s := range suffixes(strings.ToLower(senderDomain)) {
		if c, ok := d.certs[s]; ok {
			return c, true
		}
	}
	c, ok := d.certs["*"]
	return c, ok
}
