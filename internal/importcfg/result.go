// Package importcfg turns another mail server's configuration (Postfix's
// main.cf, master.cf and the maps it names; s/qmail's control files) into
// a tlsmail.toml. It reads only: nothing it is given is changed. Every
// setting it cannot map becomes a comment in the output saying why, so
// an admin reviews a file that hides nothing of the old configuration.
package importcfg

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Options are the settings an import cannot take from the old system.
type Options struct {
	DataDir   string // data_dir of the new configuration
	UsersFile string // users_file of the new configuration
	// RootTo is the user that mail to root goes to (an alias root =
	// RootTo): tlsmail has no root mailbox, and Debian's /etc/aliases
	// sends postmaster to root. Empty: aliases to root are warned about.
	RootTo string
}

// KV is one entry of a TOML table, kept in the order it was read.
type KV struct{ Key, Value string }

// Listener is one [[listener]] of the result.
type Listener struct {
	Name, Address, Mode, Auth string
}

// Note is a setting of the old configuration: one that could not be
// mapped (Mapped false: "not mapped (why)"), or one mapped with a caveat
// the admin should read.
type Note struct {
	Setting, Value, Why string
	Mapped              bool
}

// TLS is the [tls] table of the result.
type TLS struct {
	Cert, Key, Chain, ClientAuth, ClientCAFile, ClientCADir, MinVersion, Ciphers string
}

// Outbound is the [outbound] table of the result.
type Outbound struct {
	TLSLevel, CAFile, Tlsdestinations, Domaincerts string
	Policy                                         []KV
}

// Result is an imported configuration.
type Result struct {
	From             string // "postfix" or "qmail"
	Dir              string // what was read
	Hostname         string
	DataDir          string
	UsersFile        string
	LocalDomains     []string
	RelayNetworks    []string
	RelayClientCerts []string
	Aliases          []KV
	Transport        []KV
	Delivery         []KV   // [delivery]: domain → LMTP target (Dovecot)
	AuthBackend      string // auth_backend ("dovecot:…"), or "" (the users file)
	TLS              TLS
	Outbound         Outbound
	MessageSize      int64
	QueueLifetime    string // [queue] lifetime, a Go duration
	QueueWorkers     int
	Listeners        []Listener
	Milters          []Milter
	SenderLogin      string // "enforce", or "" (off)
	SenderLoginMaps  []KVs
	Notes            []Note
	// Warnings are what the admin must fix before the result works, each
	// naming the file and line of the old configuration (also comments at
	// the top of the output).
	Warnings []string
}

// warn records a warning.
func (r *Result) warn(format string, a ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, a...))
}

// notMapped records a setting that has no tlsmail equivalent.
func (r *Result) notMapped(setting, value, why string) {
	r.Notes = append(r.Notes, Note{Setting: setting, Value: value, Why: why})
}

// caveat records a setting that was mapped, with what differs.
func (r *Result) caveat(setting, value, why string) {
	r.Notes = append(r.Notes, Note{Setting: setting, Value: value, Why: why, Mapped: true})
}

func (r *Result) addLocalDomain(d string) {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	for _, x := range r.LocalDomains {
		if x == d {
			return
		}
	}
	r.LocalDomains = append(r.LocalDomains, d)
}

func (r *Result) addRelayNet(n string) {
	for _, x := range r.RelayNetworks {
		if x == n {
			return
		}
	}
	r.RelayNetworks = append(r.RelayNetworks, n)
}

// addKV adds key to list unless it is there already (postmap keeps the
// first of duplicate keys).
func addKV(list []KV, key, value string) []KV {
	for _, kv := range list {
		if kv.Key == key {
			return list // first one wins, as in a map built from the file
		}
	}
	return append(list, KV{key, value})
}

// Quote writes s as a TOML basic string.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, c)
			} else {
				b.WriteRune(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// commentSafe keeps a value on its comment line.
func commentSafe(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}

// WriteTOML writes the result as a tlsmail.toml: a header, one comment
// per note, then the settings.
func (r *Result) WriteTOML(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# tlsmail configuration imported from %s (%s) by tlsmail import.\n", r.From, r.Dir)
	b.WriteString("# Review every comment below, then: tlsmail check --config THIS_FILE\n")
	b.WriteString("# Settings: tlsmail.toml(5); the effective values: tlsmail config --all.\n")
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "# WARNING: %s\n", commentSafe(w))
	}
	if len(r.Notes) > 0 {
		b.WriteString("#\n")
	}
	for _, n := range r.Notes {
		verdict := "not mapped"
		if n.Mapped {
			verdict = "mapped"
		}
		fmt.Fprintf(&b, "# %s: %s = %s: %s (%s)\n", r.From, n.Setting, commentSafe(n.Value), verdict, commentSafe(n.Why))
	}
	b.WriteString("\n")
	top := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	if r.Hostname != "" {
		top("hostname", Quote(r.Hostname))
	}
	top("data_dir", Quote(r.DataDir))
	top("users_file", Quote(r.UsersFile))
	if len(r.LocalDomains) > 0 {
		top("local_domains", quoteList(r.LocalDomains))
	}
	if len(r.RelayNetworks) > 0 {
		top("relay_networks", quoteList(r.RelayNetworks))
	}
	if len(r.RelayClientCerts) > 0 {
		top("relay_clientcerts", quoteList(r.RelayClientCerts))
	}
	if r.SenderLogin != "" {
		top("sender_login", Quote(r.SenderLogin))
	}
	if r.AuthBackend != "" {
		top("auth_backend", Quote(r.AuthBackend))
	}
	table := func(name string, kvs []KV) {
		if len(kvs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n[%s]\n", name)
		for _, kv := range kvs {
			fmt.Fprintf(&b, "%s = %s\n", Quote(kv.Key), Quote(kv.Value))
		}
	}
	table("aliases", r.Aliases)
	if len(r.SenderLoginMaps) > 0 {
		b.WriteString("\n[sender_login_maps]\n")
		for _, kv := range r.SenderLoginMaps {
			fmt.Fprintf(&b, "%s = %s\n", Quote(kv.Key), quoteList(kv.Values))
		}
	}
	table("transport", r.Transport)
	table("delivery", r.Delivery)
	var tls []KV
	for _, kv := range []KV{{"cert", r.TLS.Cert}, {"key", r.TLS.Key}, {"chain", r.TLS.Chain},
		{"client_auth", r.TLS.ClientAuth}, {"client_ca_file", r.TLS.ClientCAFile}, {"client_ca_dir", r.TLS.ClientCADir},
		{"min_version", r.TLS.MinVersion}, {"ciphers", r.TLS.Ciphers}} {
		if kv.Value != "" {
			tls = append(tls, kv)
		}
	}
	plainTable := func(name string, kvs []KV) {
		if len(kvs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n[%s]\n", name)
		for _, kv := range kvs {
			fmt.Fprintf(&b, "%s = %s\n", kv.Key, kv.Value)
		}
	}
	for i := range tls {
		tls[i].Value = Quote(tls[i].Value)
	}
	plainTable("tls", tls)
	var out []KV
	for _, kv := range []KV{{"tls_level", r.Outbound.TLSLevel}, {"ca_file", r.Outbound.CAFile},
		{"tlsdestinations", r.Outbound.Tlsdestinations}, {"domaincerts", r.Outbound.Domaincerts}} {
		if kv.Value != "" {
			out = append(out, KV{kv.Key, Quote(kv.Value)})
		}
	}
	plainTable("outbound", out)
	table("outbound.policy", r.Outbound.Policy)
	if r.MessageSize > 0 {
		plainTable("limits", []KV{{"message_size", strconv.FormatInt(r.MessageSize, 10)}})
	}
	var queue []KV
	if r.QueueWorkers > 0 {
		queue = append(queue, KV{"workers", strconv.Itoa(r.QueueWorkers)})
	}
	if r.QueueLifetime != "" {
		queue = append(queue, KV{"lifetime", Quote(r.QueueLifetime)})
	}
	plainTable("queue", queue)
	for _, l := range r.Listeners {
		fmt.Fprintf(&b, "\n[[listener]]\nname = %s\naddress = %s\nmode = %s\nauth = %s\n", Quote(l.Name), Quote(l.Address), Quote(l.Mode), Quote(l.Auth))
	}
	for _, m := range r.Milters {
		fmt.Fprintf(&b, "\n[[milter]]\nname = %s\naddress = %s\ndefault_action = %s\n", Quote(m.Name), Quote(m.Address), Quote(m.DefaultAction))
		if m.ConnectTimeout != "" {
			fmt.Fprintf(&b, "connect_timeout = %s\n", Quote(m.ConnectTimeout))
		}
		if m.CommandTimeout != "" {
			fmt.Fprintf(&b, "command_timeout = %s\n", Quote(m.CommandTimeout))
		}
		if len(m.Listeners) > 0 {
			fmt.Fprintf(&b, "listeners = %s\n", quoteList(m.Listeners))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}
