package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// ErrorAt is a configuration error about the setting key (e.g.
// "users_file", or "listener", "2", "address"): it names the file and the
// setting's line, or no line when the setting is not in the file (a
// default).
func (c *Config) ErrorAt(msg string, key ...string) *Error {
	e := &Error{File: c.File, Msg: msg}
	if c.File == "" {
		e.File = "built-in configuration"
		return e
	}
	if src, err := os.ReadFile(c.File); err == nil {
		e.Line = locator{src: src}.line(key...)
	}
	return e
}

// checkListeners refuses what net.Listen would only refuse at start (a
// port out of range) or not at all (two listeners with one name), and two
// listeners on one address (the second bind would fail with "address in
// use" and no line to look at).
func (c *Config) checkListeners() error {
	names, addrs := map[string]bool{}, map[string]string{}
	check := func(kind, name, addr string, key ...string) error {
		label := strings.TrimSpace(kind + " " + name)
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return bad(fmt.Sprintf("%s: address %q is not host:port", label, addr), key...)
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			if n, err = net.LookupPort("tcp", port); err != nil {
				return bad(fmt.Sprintf("%s: address %q: unknown port %q", label, addr, port), key...)
			}
		}
		if n < 0 || n > 65535 {
			return bad(fmt.Sprintf("%s: address %q: port %d is out of range (1-65535)", label, addr, n), key...)
		}
		if n != 0 { // port 0 picks a free port: never a clash
			norm := net.JoinHostPort(strings.ToLower(host), strconv.Itoa(n))
			if other, dup := addrs[norm]; dup {
				return bad(fmt.Sprintf("%s: address %s is already used by %s", label, addr, other), key...)
			}
			addrs[norm] = label
		}
		return nil
	}
	for i, l := range c.Listeners {
		key := []string{"listener", strconv.Itoa(i)}
		if names[l.Name] {
			return bad(fmt.Sprintf("listener name %q is used twice (names label logs and metrics; make them unique)", l.Name), append(key, "name")...)
		}
		names[l.Name] = true
		if err := check("listener", l.Name, l.Address, append(key, "address")...); err != nil {
			return err
		}
	}
	for i, p := range c.POP3 {
		key := []string{"pop3_listener", strconv.Itoa(i)}
		if names[p.Name] {
			return bad(fmt.Sprintf("pop3_listener name %q is used twice (names label logs and metrics; make them unique)", p.Name), append(key, "name")...)
		}
		names[p.Name] = true
		if err := check("pop3_listener", p.Name, p.Address, append(key, "address")...); err != nil {
			return err
		}
	}
	for i, p := range c.IMAP {
		key := []string{"imap_listener", strconv.Itoa(i)}
		if names[p.Name] {
			return bad(fmt.Sprintf("imap_listener name %q is used twice (names label logs and metrics; make them unique)", p.Name), append(key, "name")...)
		}
		names[p.Name] = true
		if err := check("imap_listener", p.Name, p.Address, append(key, "address")...); err != nil {
			return err
		}
	}
	if c.Metrics != "" {
		if err := check("metrics_address", "", c.Metrics, "metrics_address"); err != nil {
			return err
		}
	}
	return nil
}

// checkExplicit refuses numbers in [limits] and [queue] that are written
// in the file but would be silently replaced or misread: a zero (which
// Defaults turns into the default, so `message_size = 0` meant 35 MB) and
// a negative value (`connections = -5`).
func checkExplicit(md toml.MetaData, c *Config) error {
	for _, sect := range []struct {
		name string
		v    any
	}{{"limits", &c.Limits}, {"queue", &c.Queue}} {
		rv := reflect.ValueOf(sect.v).Elem()
		for i := range rv.NumField() {
			tag, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("toml"), ",")
			if tag == "" || tag == "-" || !md.IsDefined(sect.name, tag) {
				continue
			}
			var n int64
			switch f := rv.Field(i).Interface().(type) {
			case int:
				n = int64(f)
			case int64:
				n = f
			case Duration:
				n = int64(f.Duration)
			default:
				continue
			}
			if n > 0 {
				continue
			}
			msg := fmt.Sprintf("%s.%s must be positive", sect.name, tag)
			if n == 0 {
				msg += " (0 does not mean \"no limit\"; remove the line for the default)"
			}
			return bad(msg, sect.name, tag)
		}
	}
	return nil
}

// CheckFiles checks the files the server reads at start, as `serve` does
// before it binds anything: every certificate and key exists, parses and
// matches (errors name the setting's line), and the users file exists
// (the dev default creates it; a configured one that is missing would
// make every local recipient unknown). It returns warnings for what works
// but should not be so: a private key readable by every local user.
// The error is the first of FileProblems.
func (c *Config) CheckFiles() (warnings []string, err error) {
	problems, warnings := c.FileProblems()
	if len(problems) > 0 {
		return nil, problems[0]
	}
	return warnings, nil
}

// FileProblems is CheckFiles reporting every problem, not only the first
// (for `tlsmail check`).
func (c *Config) FileProblems() (problems []*Error, warnings []string) {
	if _, err := os.Stat(c.Path(c.UsersFile)); err != nil {
		problems = append(problems, c.ErrorAt(fmt.Sprintf("users_file %s: %v (create it with `tlsmail user add --config %s NAME`)", c.Path(c.UsersFile), unwrapPath(err), c.File), "users_file"))
	}
	for _, f := range []struct{ path, table, leaf string }{{c.TLS.ClientCAFile, "tls", "client_ca_file"}, {c.TLS.ClientCADir, "tls", "client_ca_dir"}, {c.acmeCAFile(), "tls.acme", "ca_file"}, {c.TLS.ClientCRL, "tls", "client_crl"},
		{c.Outbound.CAFile, "outbound", "ca_file"}, {c.Outbound.Tlsdestinations, "outbound", "tlsdestinations"}, {c.Outbound.Domaincerts, "outbound", "domaincerts"}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(c.Path(f.path)); err != nil {
			problems = append(problems, c.ErrorAt(fmt.Sprintf("%s.%s %s: %v", f.table, f.leaf, c.Path(f.path), unwrapPath(err)), f.table, f.leaf))
		}
	}
	// The certificate files are checked whenever they are set: serve
	// loads them only if something serves TLS, and then one that is
	// missing or wrong is a problem; otherwise it is a warning (serve
	// runs, but the first TLS listener, [web] or [admin] added would not
	// start).
	serves := c.ServesTLS()
	type spec struct {
		files tlsconf.CertSpec
		key   []string // table path of the entry
	}
	var specs []spec
	if c.TLS.Cert != "" || c.TLS.Key != "" || c.TLS.Chain != "" || (serves && c.TLS.ACME == nil) {
		specs = append(specs, spec{tlsconf.CertSpec{CertFile: c.TLS.Cert, KeyFile: c.TLS.Key, ChainFile: c.TLS.Chain}, []string{"tls"}})
	}
	for i, x := range c.TLS.SNI {
		specs = append(specs, spec{x, []string{"tls.sni", strconv.Itoa(i)}})
	}
	var certProblems []*Error
	for _, s := range specs {
		at := func(leaf string) []string { return append(append([]string{}, s.key...), leaf) }
		missing := false
		for _, f := range []struct{ leaf, path string }{{"cert", s.files.CertFile}, {"key", s.files.KeyFile}, {"chain", s.files.ChainFile}} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(c.Path(f.path)); err != nil {
				certProblems = append(certProblems, c.ErrorAt(fmt.Sprintf("%s %s: %v", f.leaf, c.Path(f.path), unwrapPath(err)), at(f.leaf)...))
				missing = true
			}
		}
		if missing {
			continue
		}
		full := tlsconf.CertSpec{CertFile: c.Path(s.files.CertFile), KeyFile: c.Path(s.files.KeyFile), ChainFile: c.Path(s.files.ChainFile)}
		if _, err := tlsconf.LoadCertificate(full); err != nil {
			leaf := "cert"
			if strings.HasPrefix(err.Error(), "key ") {
				leaf = "key" // unreadable, or does not match the certificate
			}
			certProblems = append(certProblems, c.ErrorAt(err.Error(), at(leaf)...))
			continue
		}
		keyFile := full.KeyFile
		if keyFile == "" {
			keyFile = full.CertFile
		}
		if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o004 != 0 {
			e := c.ErrorAt(fmt.Sprintf("warning: private key %s is readable by every local user (mode %04o); chmod o-rwx it", keyFile, st.Mode().Perm()), at("key")...)
			warnings = append(warnings, e.Error())
		}
	}
	if serves {
		return append(problems, certProblems...), warnings
	}
	for _, e := range certProblems {
		e.Msg = "warning: " + e.Msg + " (nothing serves TLS now, so serve starts; a TLS listener, [web] or [admin] would not)"
		warnings = append(warnings, e.Error())
	}
	return problems, warnings
}

// unwrapPath drops the "stat FILE:" prefix of a path error (the message
// names the file already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ServesTLS reports whether serve loads the server certificates: a
// listener uses TLS, or [tls.acme], [web] or [admin] is set.
func (c *Config) ServesTLS() bool {
	return c.NeedsTLS() || c.TLS.ACME != nil || c.Web.Address != "" || c.Admin != nil
}

// NeedsTLS reports whether any SMTP or POP3 listener uses TLS (STARTTLS
// or implicit), so the server needs its certificate and key.
func (c *Config) NeedsTLS() bool {
	for _, l := range c.Listeners {
		if l.Mode != ModePlain {
			return true
		}
	}
	for _, p := range c.POP3 {
		if p.Mode != ModePlain {
			return true
		}
	}
	return c.imapNeedsTLS()
}

// RestartNeeded lists the changes from old to c that a reload (SIGHUP)
// cannot apply, in words for one log line: listeners are bound once, and
// TLS settings, the data directory, the users file, the queue and the
// run-as user are set up at start.
func (c *Config) RestartNeeded(old *Config) []string {
	var out []string
	out = append(out, listenerChanges("listener", old.Listeners, c.Listeners, func(l Listener) string { return l.Name })...)
	out = append(out, listenerChanges("pop3_listener", old.POP3, c.POP3, func(l POP3Listener) string { return l.Name })...)
	out = append(out, listenerChanges("imap_listener", old.IMAP, c.IMAP, func(l IMAPListener) string { return l.Name })...)
	for _, s := range []struct {
		name     string
		old, new any
	}{
		{"metrics_address", old.Metrics, c.Metrics},
		{"web.address", old.Web.Address, c.Web.Address},
		{"data_dir", old.DataDir, c.DataDir},
		{"users_file", old.UsersFile, c.UsersFile},
		{"auth_backend", old.AuthBackend, c.AuthBackend},
		{"[tls]", old.TLS, c.TLS},
		{"[queue]", old.Queue, c.Queue},
		{"limits.auth_failures", old.Limits.AuthFailures, c.Limits.AuthFailures},
		{"limits.auth_window", old.Limits.AuthWindow, c.Limits.AuthWindow},
		{"log_level", old.LogLevel, c.LogLevel},
		{"log_format/log_output", old.Logging, c.Logging},
	} {
		if !reflect.DeepEqual(s.old, s.new) {
			out = append(out, s.name+" changed")
		}
	}
	out = append(out, c.runAsChanges(old)...)
	return out
}

func listenerChanges[L any](kind string, old, cur []L, name func(L) string) []string {
	var out []string
	before := map[string]L{}
	for _, l := range old {
		before[name(l)] = l
	}
	seen := map[string]bool{}
	for _, l := range cur {
		seen[name(l)] = true
		prev, ok := before[name(l)]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("new %s %s", kind, name(l)))
		case !reflect.DeepEqual(prev, l):
			out = append(out, fmt.Sprintf("%s %s changed", kind, name(l)))
		}
	}
	for _, l := range old {
		if !seen[name(l)] {
			out = append(out, fmt.Sprintf("%s %s removed", kind, name(l)))
		}
	}
	return out
}
