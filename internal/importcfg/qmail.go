package importcfg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/internal/ucspi"
)

// QmailOptions are Options plus where the SMTP tcprules text is (""
// looks for rules.smtpd.txt, s/qmail's, and tcp.smtp in the control
// directory, then /etc/tcp.smtp).
type QmailOptions struct {
	Options
	TCPRules string
}

// qmailFiles are the control files Qmail maps; any other file in the
// directory gets a "not mapped" comment.
var qmailFiles = map[string]bool{"me": true, "defaulthost": true, "rcpthosts": true, "locals": true, "virtualdomains": true,
	"smtproutes": true, "tlsdestinations": true, "domaincerts": true, "servercert.pem": true, "clientca.pem": true,
	"tlsserverciphers": true, "databytes": true, "rules.smtpd.txt": true, "tcp.smtp": true,
	"queuelifetime": true, "concurrencyremote": true}

// Qmail imports the s/qmail control directory dir.
func Qmail(dir string, opt QmailOptions) (*Result, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	q := &qmImport{dir: abs, r: &Result{From: "qmail", Dir: dir, DataDir: opt.DataDir, UsersFile: opt.UsersFile}}
	for _, step := range []func() error{q.names, q.routes, q.tls, q.limits, func() error { return q.rules(opt.TCPRules) }, q.aliases, q.others} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	q.r.Listeners = []Listener{{Name: "smtp", Address: ":25", Mode: "starttls", Auth: "none"}}
	if q.r.TLS.Cert == "" {
		q.r.Listeners[0].Mode = "plain"
	} else {
		q.r.Listeners = append(q.r.Listeners, Listener{Name: "submission", Address: ":587", Mode: "starttls", Auth: "required"})
		q.r.caveat("control", q.dir, "listeners: smtp on 25 (STARTTLS) and submission on 587 (AUTH required), as s/qmail's run scripts; check them against your services")
	}
	return q.r, nil
}

type qmImport struct {
	dir string
	r   *Result
}

func (q *qmImport) path(name string) string { return filepath.Join(q.dir, name) }

// lines reads a control file: one value per line, '#' comments and
// blank lines skipped; ok is false when the file does not exist.
func (q *qmImport) lines(name string) (out []string, nums []int, ok bool, err error) {
	data, err := os.ReadFile(q.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out, nums = append(out, l), append(nums, n)
	}
	return out, nums, true, sc.Err()
}

func (q *qmImport) first(name string) (string, error) {
	l, _, _, err := q.lines(name)
	if err != nil || len(l) == 0 {
		return "", err
	}
	return l[0], nil
}

func (q *qmImport) names() error {
	me, err := q.first("me")
	if err != nil {
		return err
	}
	q.r.Hostname = me
	if me == "" {
		q.r.notMapped("control/me", "(none)", "no host name: set hostname")
	}
	if dh, err := q.first("defaulthost"); err != nil {
		return err
	} else if dh != "" && dh != me {
		q.r.notMapped("control/defaulthost", dh, "bare host names are not qualified; senders should use full addresses")
	}
	locals, _, _, err := q.lines("locals")
	if err != nil {
		return err
	}
	for _, d := range locals {
		q.r.addLocalDomain(d)
	}
	vd, nums, _, err := q.lines("virtualdomains")
	if err != nil {
		return err
	}
	virtual := map[string]bool{}
	for i, l := range vd {
		dom, prepend, ok := strings.Cut(l, ":")
		switch {
		case !ok:
			return fmt.Errorf("%s:%d: want DOMAIN:PREPEND", q.path("virtualdomains"), nums[i])
		case strings.Contains(dom, "@") || strings.HasPrefix(dom, ".") || dom == "":
			q.r.notMapped("control/virtualdomains", l, "only whole domains: list each as local_domains and aliases")
		default:
			q.r.addLocalDomain(dom)
			virtual[strings.ToLower(dom)] = true
			q.r.caveat("control/virtualdomains", l, "a local domain: its local parts are users_file users (qmail delivered to "+prepend+"-LOCAL)")
		}
	}
	rcpt, _, _, err := q.lines("rcpthosts")
	if err != nil {
		return err
	}
	local := map[string]bool{}
	for _, d := range q.r.LocalDomains {
		local[d] = true
	}
	for _, d := range rcpt {
		if !local[strings.ToLower(d)] {
			q.r.notMapped("control/rcpthosts", d, "mail for a domain that is not local is accepted only from clients that may relay (no backup-MX acceptance)")
		}
	}
	return nil
}

func (q *qmImport) routes() error {
	routes, nums, _, err := q.lines("smtproutes")
	if err != nil {
		return err
	}
	for i, l := range routes {
		dom, hop, ok := strings.Cut(l, ":")
		if !ok {
			return fmt.Errorf("%s:%d: want DOMAIN:RELAY[:PORT]", q.path("smtproutes"), nums[i])
		}
		if j := strings.IndexByte(hop, '|'); j >= 0 {
			q.r.notMapped("control/smtproutes", l, "relay credentials are not mapped")
			hop = hop[:j]
		}
		host, port, _ := strings.Cut(hop, ":")
		host = strings.Trim(host, "[]")
		if port == "" {
			port = "25"
		}
		switch {
		case dom == "":
			q.r.notMapped("control/smtproutes", l, "no default relay host: [transport] names next hops per domain")
			continue
		case strings.HasPrefix(dom, "."):
			q.r.notMapped("control/smtproutes", l, "transport entries are for whole domains only")
			continue
		case host == "":
			continue // the domain's MX, as without a route
		}
		if _, err := route.Domain(dom); err != nil {
			q.r.notMapped("control/smtproutes", l, err.Error())
			continue
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("%s:%d: port %q is not a port number", q.path("smtproutes"), nums[i], port)
		}
		q.r.Transport = addKV(q.r.Transport, strings.ToLower(dom), joinHostPort(host, port))
	}
	return nil
}

func (q *qmImport) exists(name string) bool {
	_, err := os.Stat(q.path(name))
	return err == nil
}

func (q *qmImport) tls() error {
	o := &q.r.Outbound
	if q.exists("tlsdestinations") {
		if _, err := policy.LoadTlsdestinations(q.path("tlsdestinations")); err != nil {
			return err
		}
		o.Tlsdestinations = q.path("tlsdestinations")
	} else {
		o.TLSLevel = "may"
		q.r.caveat("control/tlsdestinations", "(none)", "s/qmail sends without TLS then; tlsmail tries STARTTLS (tls_level = may)")
	}
	if q.exists("domaincerts") {
		if _, err := policy.LoadDomainCerts(q.path("domaincerts")); err != nil {
			return err
		}
		o.Domaincerts = q.path("domaincerts")
	}
	if q.exists("servercert.pem") {
		q.r.TLS.Cert, q.r.TLS.Key = q.path("servercert.pem"), q.path("servercert.pem")
	}
	if q.exists("clientca.pem") {
		q.r.TLS.ClientCAFile, q.r.TLS.ClientAuth = q.path("clientca.pem"), "request"
	}
	ciphers, err := q.first("tlsserverciphers")
	if err != nil {
		return err
	}
	if ciphers != "" {
		if _, err := tlsconf.ParseCiphers(ciphers); err != nil {
			q.r.notMapped("control/tlsserverciphers", ciphers, err.Error())
		} else {
			q.r.TLS.Ciphers = ciphers
		}
	}
	return nil
}

func (q *qmImport) limits() error {
	v, err := q.first("databytes")
	if err != nil || v == "" {
		return err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return fmt.Errorf("%s:1: databytes %q is not a number", q.path("databytes"), v)
	case n == 0:
		q.r.notMapped("control/databytes", v, "tlsmail always has a limit: limits.message_size")
	case n < 1024:
		q.r.notMapped("control/databytes", v, "below tlsmail's smallest limit (1024)")
	default:
		q.r.MessageSize = n
	}
	return q.queue()
}

// queue maps queuelifetime (seconds) and concurrencyremote to [queue].
func (q *qmImport) queue() error {
	for _, name := range []string{"queuelifetime", "concurrencyremote"} {
		v, err := q.first(name)
		if err != nil || v == "" {
			if err != nil {
				return err
			}
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("%s:1: %s %q is not a positive number", q.path(name), name, v)
		}
		if name == "queuelifetime" {
			q.r.QueueLifetime = strconv.Itoa(n) + "s"
		} else {
			q.r.QueueWorkers = n
			q.r.caveat("control/concurrencyremote", v, "[queue] workers: deliveries at once, local and remote together")
		}
	}
	return nil
}

// rules maps the SMTP tcprules text: RELAYCLIENT rules become
// relay_networks; everything else is a comment.
func (q *qmImport) rules(file string) error {
	if file == "" {
		for _, f := range []string{q.path("rules.smtpd.txt"), q.path("tcp.smtp"), "/etc/tcp.smtp"} {
			if _, err := os.Stat(f); err == nil {
				file = f
				break
			}
		}
		if file == "" {
			q.r.notMapped("tcp.smtp", "(none)", "no tcprules text found (--tcprules FILE): set relay_networks yourself")
			return nil
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	keys, values, err := ucspi.CompileRules(bytes.NewReader(data))
	if err != nil {
		var se *ucspi.RuleSyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%s:%d: %s: %q", file, se.Line, se.Why, se.Text)
		}
		return fmt.Errorf("%s: %w", file, err)
	}
	setting := filepath.Base(file)
	others := map[string]bool{}
	for i, k := range keys {
		key, val := string(k), string(values[i])
		if strings.HasPrefix(val, "D") {
			q.r.notMapped(setting, key+":deny", "connection rules are not checked by tlsmail serve: use a firewall, or tlsmail sslserver with this cdb")
			continue
		}
		relay := false
		for _, env := range strings.Split(val, "\x00") {
			name, _, _ := strings.Cut(strings.TrimPrefix(env, "+"), "=")
			switch {
			case env == "":
			case name == "RELAYCLIENT":
				relay = true
			default:
				others[key+":"+strings.TrimPrefix(env, "+")] = true
			}
		}
		if !relay {
			continue
		}
		n, ok := tcprulesNetwork(key)
		if !ok {
			q.r.notMapped(setting, key+`:allow,RELAYCLIENT=""`, "only IP addresses and a.b.c. prefixes become relay_networks")
			continue
		}
		q.r.addRelayNet(n)
	}
	for _, o := range sortedKeys(others) {
		q.r.notMapped(setting, o, "environment for qmail-smtpd; tlsmail has settings instead (TLS and AUTH per listener)")
	}
	return nil
}

// tcprulesNetwork turns a tcprules address ("127.", "10.1.2.3",
// "192.168.") into a CIDR network.
func tcprulesNetwork(key string) (string, bool) {
	if key == "" || strings.ContainsAny(key, "=@") {
		return "", false
	}
	if n, err := parseNetwork(key); err == nil {
		return n, true
	}
	if !strings.HasSuffix(key, ".") {
		return "", false
	}
	parts := strings.Split(strings.TrimSuffix(key, "."), ".")
	if len(parts) > 3 {
		return "", false
	}
	octets := append(parts, "0", "0", "0")[:4]
	n, err := parseNetwork(strings.Join(octets, ".") + "/" + strconv.Itoa(8*len(parts)))
	return n, err == nil
}

// others comments on the control files that are not mapped.
func (q *qmImport) others() error {
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && !qmailFiles[e.Name()] && !strings.HasSuffix(e.Name(), ".cdb") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		v, _ := q.first(n)
		if strings.HasSuffix(n, ".pem") {
			v = q.path(n)
		}
		q.r.notMapped("control/"+n, v, qmailWhy(n))
	}
	return nil
}

func qmailWhy(name string) string {
	switch name {
	case "dh2048.pem", "dh1024.pem", "rsa2048.pem", "rsa512.pem", "dh4096.pem":
		return "Go's TLS uses ECDHE groups, no DH or temporary RSA parameters"
	case "defaultdomain", "plusdomain":
		return "addresses are never rewritten"
	case "bouncefrom", "bouncehost", "doublebouncehost", "doublebounceto":
		return "bounces come from MAILER-DAEMON at hostname; double bounces go to the postmaster alias"
	case "smtpgreeting":
		return "the greeting is always \"hostname ESMTP\""
	}
	return "no tlsmail equivalent"
}

// aliases maps ~alias/.qmail-NAME files (the alias directory beside the
// control directory): forwards and one "|command" become [aliases].
func (q *qmImport) aliases() error {
	dir := filepath.Join(filepath.Dir(q.dir), "alias")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), ".qmail-")
		if !ok || e.IsDir() {
			continue
		}
		local := strings.ToLower(strings.ReplaceAll(name, ":", "."))
		setting := "alias/" + e.Name()
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if local == "default" || strings.HasSuffix(local, "-default") {
			q.r.notMapped(setting, strings.TrimSpace(string(data)), "catch-all addresses are not supported: list each address")
			continue
		}
		var keep []string
		pipe := ""
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			switch {
			case l == "" || strings.HasPrefix(l, "#"):
			case strings.HasPrefix(l, "|") && pipe == "":
				var why string
				var ok bool
				if pipe, why, ok = pipeTarget(l); !ok {
					q.r.notMapped(setting, l, why)
				}
			case strings.HasPrefix(l, "/") || strings.HasPrefix(l, ".") || strings.HasPrefix(l, "|"):
				q.r.notMapped(setting, l, "tlsmail delivers to Maildirs of users, not to files; one command per alias")
			default:
				keep = append(keep, strings.TrimPrefix(l, "&"))
			}
		}
		if pipe != "" {
			keep = append(keep, pipe)
		}
		if len(keep) > 0 {
			q.r.Aliases = addKV(q.r.Aliases, local, strings.Join(keep, ", "))
		}
	}
	return nil
}
