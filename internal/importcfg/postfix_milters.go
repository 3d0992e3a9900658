package importcfg

import (
	"slices"
	"strconv"
	"strings"
)

// Milter is one [[milter]] of the result. Listeners is empty when it
// applies to every listener.
type Milter struct {
	Name, Address, DefaultAction, ConnectTimeout, CommandTimeout string
	Listeners                                                    []string
}

// milters maps smtpd_milters (with milter_default_action and the milter
// timeouts, and Postfix 3's "{ address, name = value ... }" form) to
// [[milter]] tables. A master.cf service's own -o smtpd_milters replaces
// main.cf's for that service, as in Postfix: each milter then lists the
// listeners it applies to (listeners = [...]), or none when it applies to
// all of them.
func (p *pfImport) milters() error {
	defAction := p.get("milter_default_action")
	if defAction == "" {
		defAction = "tempfail"
	}
	connect, command := p.get("milter_connect_timeout"), p.get("milter_command_timeout")
	p.get("milter_protocol")
	global := milterSpecs(p.get("smtpd_milters"))
	var specs [][]string
	type use struct {
		m         Milter
		ok        bool
		listeners []string
	}
	uses := map[string]*use{}
	var order []string
	// want is each listener's milters, in its order.
	want := map[string][]string{}
	add := func(spec []string, listener string) {
		key := strings.Join(spec, ", ")
		u := uses[key]
		if u == nil {
			u = &use{}
			u.m, u.ok = p.milter(spec, defAction, connect, command)
			uses[key] = u
			order = append(order, key)
		}
		// A milter named twice for a listener is asked once: the
		// listener counts once (else its count could reach the number
		// of listeners, and the milter apply to all of them).
		if listener != "" && u.ok && !slices.Contains(u.listeners, listener) {
			u.listeners = append(u.listeners, listener)
			want[listener] = append(want[listener], key)
		}
	}
	if len(p.r.Listeners) == 0 {
		for _, spec := range global {
			add(spec, "")
		}
	}
	src := map[string]string{} // each listener's smtpd_milters, for the notes
	for _, l := range p.r.Listeners {
		specs, src[l.Name] = global, p.m.Raw("smtpd_milters")
		if v, ok := p.milterOverride[l.Name]; ok {
			specs, src[l.Name] = milterSpecs(v), v
		}
		for _, spec := range specs {
			add(spec, l.Name)
		}
	}
	for _, spec := range global {
		if u := uses[strings.Join(spec, ", ")]; u == nil && len(p.r.Listeners) > 0 {
			p.r.notMapped("smtpd_milters", spec[0], "every smtpd service replaces smtpd_milters with its own (-o smtpd_milters), so it applies to no listener")
		}
	}
	for _, key := range order {
		u := uses[key]
		if !u.ok || (len(u.listeners) == 0 && len(p.r.Listeners) > 0) {
			continue
		}
		m := u.m
		if len(u.listeners) < len(p.r.Listeners) {
			m.Listeners = u.listeners
		}
		for _, x := range p.r.Milters {
			if x.Name == m.Name {
				m.Name += "-" + strconv.Itoa(len(p.r.Milters)+1)
			}
		}
		p.r.Milters = append(p.r.Milters, m)
	}
	// tlsmail asks a listener's milters in the order of the tables: say
	// so where a service had them in another order.
	for _, l := range p.r.Listeners {
		var got []string
		for _, key := range order {
			for _, n := range uses[key].listeners {
				if n == l.Name {
					got = append(got, key)
				}
			}
		}
		if strings.Join(got, "; ") != strings.Join(want[l.Name], "; ") {
			p.r.caveat("smtpd_milters", src[l.Name], "listener "+l.Name+" asks its milters in the order of the [[milter]] tables, not in this one: reorder by hand if it matters")
		}
	}
	if v := p.get("non_smtpd_milters"); v != "" {
		p.r.notMapped("non_smtpd_milters", p.m.Raw("non_smtpd_milters"), "mail from sendmail and tlsmail's own bounces and reports do not pass milters; sign them with [[dkim]]")
	}
	return nil
}

// milter makes the [[milter]] of one smtpd_milters element (its address,
// then name = value options), or reports false when it cannot.
func (p *pfImport) milter(spec []string, defAction, connect, command string) (Milter, bool) {
	m := Milter{Address: spec[0], DefaultAction: defAction, ConnectTimeout: connect, CommandTimeout: command}
	for _, kv := range spec[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k, v = strings.TrimSpace(k), strings.TrimSpace(v); k {
		case "default_action":
			m.DefaultAction = v
		case "connect_timeout":
			m.ConnectTimeout = v
		case "command_timeout":
			m.CommandTimeout = v
		default:
			p.r.notMapped("smtpd_milters", m.Address+" "+kv, "no per-milter equivalent")
		}
	}
	switch m.DefaultAction {
	case "tempfail", "accept":
	case "reject", "quarantine":
		p.r.caveat("milter_default_action", m.DefaultAction, "tlsmail's default_action is tempfail or accept: tempfail it is (the client retries, nothing is lost)")
		m.DefaultAction = "tempfail"
	default:
		p.r.notMapped("milter_default_action", m.DefaultAction, "tempfail or accept; tempfail it is")
		m.DefaultAction = "tempfail"
	}
	var ok bool
	if m.ConnectTimeout, ok = postfixDuration(m.ConnectTimeout); !ok {
		p.r.notMapped("milter_connect_timeout", connect, "not a Postfix time; the default (30s) applies")
	}
	if m.CommandTimeout, ok = postfixDuration(m.CommandTimeout); !ok {
		p.r.notMapped("milter_command_timeout", command, "not a Postfix time; the default (30s) applies")
	}
	switch {
	case strings.HasPrefix(m.Address, "inet:"):
	case strings.HasPrefix(m.Address, "unix:"), strings.HasPrefix(m.Address, "local:"):
		m.Address = "unix:" + m.Address[strings.IndexByte(m.Address, ':')+1:]
		p.r.caveat("smtpd_milters", spec[0], "a chrooted smtpd (master.cf chroot y) reads a relative unix: path inside the queue directory (/var/spool/postfix): give tlsmail the socket's full path")
	default:
		p.r.notMapped("smtpd_milters", spec[0], "an address is inet:HOST:PORT or unix:PATH")
		return Milter{}, false
	}
	m.Name = milterName(m.Address)
	return m, true
}

// milterSpecs splits a Postfix milter list: each element is an address,
// or "{ address, name = value, ... }" (its first item the address).
func milterSpecs(v string) [][]string {
	var out [][]string
	for v = strings.TrimSpace(v); v != ""; v = strings.TrimLeft(v, ", \t\n") {
		if v[0] == '{' {
			end := strings.IndexByte(v, '}')
			if end < 0 {
				end = len(v) - 1
				v += " "
			}
			var items []string
			for _, it := range strings.Split(v[1:end], ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
			if len(items) > 0 {
				out = append(out, items)
			}
			v = v[end+1:]
			continue
		}
		f := list(v)[0]
		out = append(out, []string{f})
		v = v[strings.Index(v, f)+len(f):]
	}
	return out
}

// milterName names a milter after its address's well-known port or
// socket (rspamd, opendkim), else the address.
func milterName(addr string) string {
	switch low := strings.ToLower(addr); {
	case strings.HasSuffix(low, ":11332") || strings.Contains(low, "rspamd"):
		return "rspamd"
	case strings.HasSuffix(low, ":8891") || strings.Contains(low, "opendkim"):
		return "opendkim"
	case strings.HasSuffix(low, ":8893") || strings.Contains(low, "opendmarc"):
		return "opendmarc"
	}
	return addr
}

// postfixDuration turns a Postfix time ("30s", "30", "1m", "2h", "1d",
// "1w") into a Go duration; "" stays "" (tlsmail's default).
func postfixDuration(v string) (string, bool) {
	if v == "" {
		return "", true
	}
	unit := v[len(v)-1]
	num := v
	if unit < '0' || unit > '9' {
		num = v[:len(v)-1]
	} else {
		unit = 's'
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return "", false
	}
	switch unit {
	case 's', 'm', 'h':
		return strconv.Itoa(n) + string(unit), true
	case 'd':
		return strconv.Itoa(n*24) + "h", true
	case 'w':
		return strconv.Itoa(n*24*7) + "h", true
	}
	return "", false
}

// senderLogin maps smtpd_sender_login_maps (sender -> logins) to
// sender_login_maps (login -> senders), and reject_sender_login_mismatch
// in the restrictions to sender_login = "enforce".
func (p *pfImport) senderLogin() error {
	restr := p.m.Get("smtpd_sender_restrictions") + " " + p.m.Get("smtpd_recipient_restrictions") + " " + p.m.Get("smtpd_relay_restrictions")
	for _, s := range p.mc.Services {
		for _, name := range []string{"smtpd_sender_restrictions", "smtpd_recipient_restrictions", "smtpd_relay_restrictions"} {
			restr += " " + s.Overrides[name]
		}
	}
	enforce := false
	for _, r := range list(restr) {
		switch r {
		case "reject_sender_login_mismatch", "reject_authenticated_sender_login_mismatch", "reject_known_sender_login_mismatch":
			enforce = true
		}
	}
	if enforce {
		only := true
		for _, r := range list(p.m.Get("smtpd_sender_restrictions")) {
			only = only && strings.HasSuffix(r, "sender_login_mismatch")
		}
		if only {
			p.done["smtpd_sender_restrictions"] = true // else rest() comments on the others
		}
		p.r.SenderLogin = "enforce"
		p.r.caveat("smtpd_sender_restrictions", "reject_*sender_login_mismatch", "sender_login = \"enforce\" for every listener; a user also owns their own addresses and the aliases that reach them, and an unauthenticated client is not checked")
	}
	ref := p.get("smtpd_sender_login_maps")
	if ref == "" {
		return nil
	}
	entries, err := p.mapEntries("smtpd_sender_login_maps")
	if err != nil {
		return err
	}
	for _, e := range entries {
		sender := strings.ToLower(e.Key)
		if !strings.Contains(sender, "@") {
			p.r.notMapped("smtpd_sender_login_maps", e.Key+" "+e.Value, "a key is an address or @domain")
			continue
		}
		for _, login := range list(e.Value) {
			p.r.addSenderLogin(strings.ToLower(login), sender)
		}
	}
	if !enforce {
		p.r.caveat("smtpd_sender_login_maps", ref, "sender_login_maps written, but no reject_sender_login_mismatch was found: sender_login stays off")
	}
	return nil
}

func (r *Result) addSenderLogin(login, sender string) {
	for i, kv := range r.SenderLoginMaps {
		if kv.Key == login {
			for _, s := range kv.Values {
				if s == sender {
					return
				}
			}
			r.SenderLoginMaps[i].Values = append(kv.Values, sender)
			return
		}
	}
	r.SenderLoginMaps = append(r.SenderLoginMaps, KVs{login, []string{sender}})
}

// KVs is one entry of a TOML table whose values are lists.
type KVs struct {
	Key    string
	Values []string
}

// virtualMailbox adds virtual_mailbox_domains to local_domains; their
// users are users file entries named with the domain.
func (p *pfImport) virtualMailbox() error {
	if !p.m.Set("virtual_mailbox_domains") {
		return nil
	}
	for _, d := range list(p.get("virtual_mailbox_domains")) {
		if strings.ContainsAny(d, ":/") {
			p.r.notMapped("virtual_mailbox_domains", d, "domains from a map are not read; add them to local_domains")
			continue
		}
		p.r.addLocalDomain(d)
	}
	p.r.caveat("virtual_mailbox_domains", p.m.Raw("virtual_mailbox_domains"), "added to local_domains: add each mailbox as a user with its domain (tlsmail user add alice@example.net); its mail goes to DATA/mail/alice@example.net")
	p.get("virtual_mailbox_maps")
	if p.m.Set("virtual_mailbox_maps") {
		p.r.notMapped("virtual_mailbox_maps", p.m.Raw("virtual_mailbox_maps"), "mailboxes are users file entries (tlsmail user add USER@DOMAIN); mail lands in DATA/mail/USER@DOMAIN, not virtual_mailbox_base")
	}
	return nil
}
