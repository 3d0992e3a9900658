package importcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/route"
)

// Postfix imports the Postfix configuration in dir (main.cf, master.cf
// and the maps they name, read from their source text).
func Postfix(dir string, opt Options) (*Result, error) {
	m, err := ReadMainCF(filepath.Join(dir, "main.cf"))
	if err != nil {
		return nil, err
	}
	mc, err := ReadMasterCF(filepath.Join(dir, "master.cf"))
	if err != nil {
		return nil, err
	}
	p := &pfImport{m: m, mc: mc, opt: opt, r: &Result{From: "postfix", Dir: dir, DataDir: opt.DataDir, UsersFile: opt.UsersFile}, done: map[string]bool{}, milterOverride: map[string]string{}}
	for _, step := range []func() error{p.names, p.networks, p.aliases, p.serverTLS, p.outbound, p.transport, p.limits, p.services, p.milters, p.senderLogin, p.virtualMailbox, p.dovecot} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	p.rest()
	return p.r, nil
}

type pfImport struct {
	m   *MainCF
	mc  *MasterCF
	opt Options
	r   *Result
	// toRoot are the aliases whose targets include root (rootMailbox).
	toRoot []Entry
	done   map[string]bool // main.cf parameters mapped or commented on
	// milterOverride is a listener's own smtpd_milters (master.cf -o),
	// expanded, by listener name (services, for milters).
	milterOverride map[string]string
}

// get marks name as handled and returns its expanded value.
func (p *pfImport) get(name string) string {
	p.done[name] = true
	return p.m.Get(name)
}

// at is "main.cf:LINE" of a parameter, for errors.
func (p *pfImport) at(name string) string {
	if q, ok := p.m.Params[name]; ok {
		return fmt.Sprintf("%s:%d", q.File, q.Line)
	}
	return p.m.File + " (default " + name + ")"
}

func (p *pfImport) notMapped(name, why string) {
	p.done[name] = true
	p.r.notMapped(name, p.m.Raw(name), why)
}

// readMap reads a map a setting names; a map type that is not a file,
// or a source text that is not there (only the .db), is a comment (ok
// false); a line that does not parse is an error naming file:line.
func (p *pfImport) readMap(setting, ref string, read func(string) ([]Entry, error)) (entries []Entry, ok bool, err error) {
	entries, err = read(ref)
	switch {
	case errors.Is(err, ErrMapType):
		p.r.notMapped(setting, ref, strings.TrimPrefix(err.Error(), ErrMapType.Error()+": ")+"; put its entries into tlsmail.toml by hand")
		return nil, false, nil
	case errors.Is(err, fs.ErrNotExist):
		p.r.notMapped(setting, ref, "its source text is not there (only the indexed file?): run the import where the text is")
		return nil, false, nil
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, false, fmt.Errorf("%s: %s %s: %w", p.at(setting), setting, ref, err)
		}
		return nil, false, err // names file:line already
	}
	return entries, true, nil
}

// mapEntries reads every map the setting names (as readMap: a map it
// cannot read is a comment) and returns their entries in order.
func (p *pfImport) mapEntries(setting string) ([]Entry, error) {
	var all []Entry
	for _, ref := range list(p.get(setting)) {
		entries, ok, err := p.readMap(setting, ref, ReadMap)
		if err != nil {
			return nil, err
		}
		if ok {
			all = append(all, entries...)
		}
	}
	return all, nil
}

func (p *pfImport) names() error {
	p.r.Hostname = p.get("myhostname")
	p.get("mydomain")
	if p.m.Set("myorigin") && p.get("myorigin") != p.r.Hostname {
		p.notMapped("myorigin", "tlsmail has no origin domain for bare local names; senders should use full addresses")
	}
	for _, d := range list(p.get("mydestination")) {
		if strings.ContainsAny(d, ":/") {
			entries, ok, err := p.readMap("mydestination", d, ReadMap)
			if err != nil || !ok {
				if err != nil {
					return err
				}
				continue
			}
			for _, e := range entries {
				p.r.addLocalDomain(e.Key)
			}
			continue
		}
		p.r.addLocalDomain(d)
	}
	if p.m.Set("virtual_alias_domains") {
		for _, d := range list(p.get("virtual_alias_domains")) {
			if !strings.ContainsAny(d, ":/") {
				p.r.addLocalDomain(d)
			}
		}
		p.r.caveat("virtual_alias_domains", p.m.Raw("virtual_alias_domains"), "added to local_domains: their addresses are aliases, other local parts are refused as unknown users")
	}
	return nil
}

// networks maps mynetworks (or its default, mynetworks_style = host).
func (p *pfImport) networks() error {
	if !p.m.Set("mynetworks") {
		p.done["mynetworks_style"] = true
		switch style := p.m.Get("mynetworks_style"); style {
		case "host":
			p.r.RelayNetworks = []string{"127.0.0.0/8", "::1/128"}
			p.r.caveat("mynetworks_style", style, "relay_networks = loopback; Postfix also trusts this machine's other addresses")
		default:
			p.notMapped("mynetworks_style", "list the networks in relay_networks yourself")
		}
		return nil
	}
	var excluded []netip.Prefix // "!pattern"s so far: Postfix's first match wins
	for _, n := range list(p.get("mynetworks")) {
		if strings.HasPrefix(n, "/") || strings.Contains(n, ":") && !strings.Contains(n, "[") && !strings.Contains(n, "::") {
			if _, err := mapSource(n); err == nil || strings.HasPrefix(n, "/") {
				p.r.notMapped("mynetworks", n, "networks from a file or map are not read; list them in relay_networks")
				continue
			}
		}
		x, isExclusion := strings.CutPrefix(n, "!")
		prefix, err := parseNetwork(x)
		if err != nil {
			return fmt.Errorf("%s: mynetworks %q: %w", p.at("mynetworks"), n, err)
		}
		pr := netip.MustParsePrefix(prefix)
		if isExclusion {
			excluded = append(excluded, pr)
			continue
		}
		parts := []netip.Prefix{pr}
		for _, ex := range excluded {
			var next []netip.Prefix
			for _, q := range parts {
				next = append(next, subtractPrefix(q, ex)...)
			}
			parts = next
		}
		if len(parts) != 1 || parts[0] != pr {
			p.r.caveat("mynetworks", n, fmt.Sprintf("with the exclusions before it (%s): relay_networks has no exclusions, so the network is listed as the %d networks it leaves", excludedList(excluded), len(parts)))
		}
		for _, q := range parts {
			p.r.addRelayNet(q.String())
		}
	}
	return nil
}

// subtractPrefix is p without the addresses of x, as prefixes.
func subtractPrefix(p, x netip.Prefix) []netip.Prefix {
	switch {
	case !p.Overlaps(x):
		return []netip.Prefix{p}
	case x.Bits() <= p.Bits():
		return nil // x covers p
	}
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1).Masked()
	b := lo.Addr().AsSlice()
	b[p.Bits()/8] |= 0x80 >> (p.Bits() % 8)
	hiAddr, _ := netip.AddrFromSlice(b)
	hi := netip.PrefixFrom(hiAddr, p.Bits()+1)
	return append(subtractPrefix(lo, x), subtractPrefix(hi, x)...)
}

func excludedList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = "!" + p.String()
	}
	return strings.Join(s, ", ")
}

// parseNetwork reads a Postfix network ("[::1]/128", "10.0.0.0/8",
// "192.0.2.1") as a prefix; an IPv4-mapped IPv6 prefix becomes the IPv4
// one (tlsmail compares client addresses unmapped).
func parseNetwork(n string) (string, error) {
	addr, bits, hasBits := strings.Cut(n, "/")
	addr = strings.Trim(addr, "[]")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return "", errors.New("not an IP address or CIDR network")
	}
	size := a.BitLen()
	if hasBits {
		if size, err = strconv.Atoi(bits); err != nil || size < 0 || size > a.BitLen() {
			return "", errors.New("bad prefix length")
		}
	}
	if a.Is4In6() && size >= 96 {
		a, size = a.Unmap(), size-96
	}
	pr, err := a.Prefix(size)
	if err != nil {
		return "", err
	}
	return pr.String(), nil
}

// aliases maps alias_maps and virtual_alias_maps into [aliases].
func (p *pfImport) aliases() error {
	p.done["alias_database"] = true
	for _, ref := range list(p.get("alias_maps")) {
		if f, err := mapSource(ref); err == nil && !p.m.Set("alias_maps") {
			if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
				continue // the default /etc/aliases is not there
			}
		}
		entries, ok, err := p.readMap("alias_maps", ref, ReadAliases)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for _, e := range entries {
			p.addAlias("alias_maps", e, strings.ToLower(e.Key))
		}
	}
	entries, err := p.mapEntries("virtual_alias_maps")
	if err != nil {
		return err
	}
	for _, e := range entries {
		key := strings.ToLower(e.Key)
		switch at := strings.IndexByte(key, '@'); {
		case at == 0:
			p.r.notMapped("virtual_alias_maps", e.Key+" "+e.Value, "catch-all addresses are not supported: list each address")
		case at < 0 && strings.Contains(key, "."):
			p.r.addLocalDomain(key) // a virtual alias domain
		default:
			if at > 0 {
				p.r.addLocalDomain(key[at+1:])
			}
			p.addAlias("virtual_alias_maps", e, key)
		}
	}
	p.rootMailbox()
	return nil
}

// rootMailbox makes sure no alias silently goes to root, which has no
// mailbox in tlsmail (Debian's /etc/aliases has "postmaster: root"): with
// --root-to USER root becomes an alias of USER, unless the aliases map
// root themselves; without it each alias to root is a warning naming its
// file and line.
func (p *pfImport) rootMailbox() {
	for _, kv := range p.r.Aliases {
		if kv.Key == "root" {
			if p.opt.RootTo != "" {
				p.r.caveat("--root-to", p.opt.RootTo, "not used: the aliases map root to "+kv.Value+" themselves")
			}
			return
		}
	}
	if p.opt.RootTo != "" {
		p.r.Aliases = addKV(p.r.Aliases, "root", p.opt.RootTo)
		p.r.caveat("--root-to", p.opt.RootTo, "root = \""+p.opt.RootTo+"\" added to [aliases]: mail to root and to the aliases that name it goes to that user")
		return
	}
	for _, e := range p.toRoot {
		p.r.warn("%s:%d: alias %s: target root: tlsmail has no root mailbox, so mail to %s would be refused; map root to a real user: tlsmail import --root-to USER (adds root = \"USER\" to [aliases]), or edit [aliases]", e.File, e.Line, e.Key, e.Key)
	}
}

// isRoot reports whether an alias target is root, bare or in a local
// domain.
func (p *pfImport) isRoot(t string) bool {
	local, domain, qualified := strings.Cut(strings.ToLower(t), "@")
	if local != "root" {
		return false
	}
	if !qualified {
		return true
	}
	for _, d := range p.r.LocalDomains {
		if d == domain {
			return true
		}
	}
	return false
}

func (p *pfImport) addAlias(setting string, e Entry, key string) {
	var keep []string
	pipe := ""
	for _, t := range aliasTargets(e.Value) {
		switch {
		case strings.HasPrefix(t, "|") && pipe == "":
			var why string
			var ok bool
			if pipe, why, ok = pipeTarget(t); !ok {
				p.r.notMapped(setting, e.Key+": "+t, why)
			}
		case strings.HasPrefix(t, "|"):
			p.r.notMapped(setting, e.Key+": "+t, "one command per alias; make a second alias for it")
		case strings.HasPrefix(t, "/"), strings.HasPrefix(t, ":include:"):
			p.r.notMapped(setting, e.Key+": "+t, "tlsmail delivers to Maildirs of users, not to files or include lists")
		default:
			keep = append(keep, t)
			if p.isRoot(t) {
				p.toRoot = append(p.toRoot, e)
			}
		}
	}
	if pipe != "" {
		keep = append(keep, pipe) // the command comes last (route.splitPipe)
	}
	if len(keep) > 0 {
		p.r.Aliases = addKV(p.r.Aliases, key, strings.Join(keep, ", "))
	}
}

// chainPairs splits smtpd_tls_chain_files into (key file, certificate
// file) pairs. Postfix reads the files as one concatenation in which each
// private key comes before its certificate chain: a file may hold both,
// or a key file come before its certificate file (postconf(5)). A file is
// told by its PEM blocks, or by its name ("key" in it) when it cannot be
// read here. Files that fit no pair (a chain file of its own) are left.
func chainPairs(files []string) (pairs [][2]string, left []string) {
	key := ""
	for _, f := range files {
		hasKey, hasCert := pemKinds(f)
		if hasKey && key != "" {
			left, key = append(left, key), "" // a key with no certificate after it
		}
		switch {
		case hasKey && hasCert:
			pairs = append(pairs, [2]string{f, f})
		case hasKey:
			key = f
		case key != "":
			pairs, key = append(pairs, [2]string{key, f}), ""
		default:
			left = append(left, f)
		}
	}
	if key != "" {
		left = append(left, key)
	}
	return pairs, left
}

// pemKinds reports whether the PEM file f holds a private key and a
// certificate; unreadable, it goes by the name.
func pemKinds(f string) (hasKey, hasCert bool) {
	b, err := os.ReadFile(f)
	if err != nil {
		base := strings.ToLower(filepath.Base(f))
		isKey := strings.Contains(base, "key")
		return isKey, !isKey
	}
	return bytes.Contains(b, []byte("PRIVATE KEY-----")), bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----"))
}

// serverTLS maps smtpd_tls_* into [tls].
func (p *pfImport) serverTLS() error {
	t := &p.r.TLS
	if chain := list(p.get("smtpd_tls_chain_files")); len(chain) > 0 {
		pairs, left := chainPairs(chain)
		if len(pairs) > 0 {
			t.Key, t.Cert = pairs[0][0], pairs[0][1]
		}
		for _, kc := range pairs[1:] {
			p.r.notMapped("smtpd_tls_chain_files", kc[0]+" "+kc[1], "one certificate per name: add further ones as [[tls.sni]]")
		}
		if len(left) > 0 {
			p.r.notMapped("smtpd_tls_chain_files", strings.Join(left, " "), "not a private key followed by its certificate: a file of intermediate certificates belongs at the end of the certificate file (cat them into it), as [tls] takes one key file and one certificate chain file")
		}
		p.done["smtpd_tls_cert_file"], p.done["smtpd_tls_key_file"] = true, true
	} else if cert := p.get("smtpd_tls_cert_file"); cert != "" && cert != "none" {
		t.Cert = cert
		t.Key = p.get("smtpd_tls_key_file")
		if t.Key == "" {
			t.Key = cert
		}
	}
	for _, name := range []string{"smtpd_tls_eccert_file", "smtpd_tls_eckey_file", "smtpd_tls_dcert_file", "smtpd_tls_dkey_file"} {
		if p.m.Set(name) {
			p.notMapped(name, "one certificate per name in [tls]: add it as [[tls.sni]] if needed")
		}
	}
	t.ClientCAFile = p.get("smtpd_tls_CAfile")
	t.ClientCADir = p.get("smtpd_tls_CApath")
	if yes(p.get("smtpd_tls_req_ccert")) {
		t.ClientAuth = "require"
		p.r.caveat("smtpd_tls_req_ccert", "yes", "client_auth = require applies to every TLS session, not only under encrypt")
	} else if yes(p.get("smtpd_tls_ask_ccert")) {
		t.ClientAuth = "request"
	}
	entries, err := p.mapEntries("relay_clientcerts")
	if err != nil {
		return err
	}
	for _, e := range entries {
		hex := strings.ReplaceAll(e.Key, ":", "")
		if len(hex) != 64 || strings.Trim(strings.ToLower(hex), "0123456789abcdef") != "" {
			p.r.notMapped("relay_clientcerts", e.Key, "not a SHA-256 fingerprint: tlsmail takes SHA-256 (openssl x509 -noout -fingerprint -sha256)")
			continue
		}
		p.r.RelayClientCerts = append(p.r.RelayClientCerts, e.Key)
	}
	if len(p.r.RelayClientCerts) > 0 && (t.ClientAuth == "" || t.ClientCAFile == "" && t.ClientCADir == "") {
		for _, fp := range p.r.RelayClientCerts {
			p.r.notMapped("relay_clientcerts", fp, "needs smtpd_tls_ask_ccert = yes and smtpd_tls_CAfile, which are not set")
		}
		p.r.RelayClientCerts = nil
	}
	floor, err := protocolFloor(p.get("smtpd_tls_protocols"))
	if err != nil {
		return fmt.Errorf("%s: smtpd_tls_protocols: %w", p.at("smtpd_tls_protocols"), err)
	}
	mand, err := protocolFloor(p.get("smtpd_tls_mandatory_protocols"))
	if err != nil {
		return fmt.Errorf("%s: smtpd_tls_mandatory_protocols: %w", p.at("smtpd_tls_mandatory_protocols"), err)
	}
	if p.m.Set("smtpd_tls_protocols") {
		t.MinVersion = floor
	}
	if p.m.Set("smtpd_tls_mandatory_protocols") {
		switch {
		case t.MinVersion == "" && mand >= "TLSv1.2":
			t.MinVersion = mand
			p.r.caveat("smtpd_tls_mandatory_protocols", p.m.Raw("smtpd_tls_mandatory_protocols"), "min_version applies to every listener, opportunistic TLS on port 25 too")
		case mand != floor && mand > t.MinVersion:
			p.r.notMapped("smtpd_tls_mandatory_protocols", p.m.Raw("smtpd_tls_mandatory_protocols"), "one min_version for every listener; a floor only where TLS is mandatory does not exist")
		}
	}
	for _, name := range []string{"smtpd_tls_ciphers", "smtpd_tls_mandatory_ciphers", "smtpd_tls_exclude_ciphers", "smtpd_tls_mandatory_exclude_ciphers"} {
		if p.m.Set(name) {
			p.notMapped(name, "Postfix cipher grades have no equivalent; tlsmail offers only ECDHE with AES-GCM or ChaCha20 by default ([tls] ciphers takes an OpenSSL list)")
		}
	}
	return nil
}

// protocolFloor turns a Postfix protocol list (">=TLSv1.2" or
// "!SSLv2, !SSLv3, !TLSv1") into the lowest version it allows.
func protocolFloor(v string) (string, error) {
	versions := []string{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
	items := list(v)
	if len(items) == 1 && strings.HasPrefix(items[0], ">=") {
		want := items[0][2:]
		for _, x := range versions {
			if strings.EqualFold(x, want) {
				return x, nil
			}
		}
		return "", fmt.Errorf("unknown protocol %q", want)
	}
	excluded, included := map[string]bool{}, map[string]bool{}
	for _, it := range items {
		name := strings.TrimPrefix(it, "!")
		switch strings.ToUpper(name) {
		case "SSLV2", "SSLV3":
			continue
		}
		found := ""
		for _, x := range versions {
			if strings.EqualFold(x, name) {
				found = x
			}
		}
		if found == "" {
			return "", fmt.Errorf("unknown protocol %q", name)
		}
		if strings.HasPrefix(it, "!") {
			excluded[found] = true
		} else {
			included[found] = true
		}
	}
	for _, x := range versions {
		if !excluded[x] && (len(included) == 0 || included[x]) {
			if x == "TLSv1" {
				return "TLSv1.0", nil
			}
			return x, nil
		}
	}
	return "", errors.New("every TLS version is excluded")
}

// outbound maps smtp_tls_* and the TLS policy maps into [outbound].
func (p *pfImport) outbound() error {
	o := &p.r.Outbound
	level := p.get("smtp_tls_security_level")
	if level == "" {
		switch {
		case yes(p.get("smtp_enforce_tls")):
			level = "encrypt"
		case yes(p.get("smtp_use_tls")):
			level = "may"
		default:
			level = "none"
		}
	}
	dnssec := p.get("smtp_dns_support_level") == "dnssec"
	if (level == "dane" || level == "dane-only") && !dnssec {
		p.r.caveat("smtp_tls_security_level", level, "smtp_dns_support_level is not dnssec, so Postfix uses may: mapped to may")
		level = "may"
	}
	if _, err := policy.ParseLevel(level); err != nil {
		return fmt.Errorf("%s: smtp_tls_security_level: %w", p.at("smtp_tls_security_level"), err)
	}
	o.TLSLevel = level
	if dnssec {
		p.r.caveat("smtp_dns_support_level", "dnssec", "tlsmail trusts DNSSEC (the AD bit) from a resolver on loopback, or set [outbound] dns_trust_ad")
	}
	o.CAFile = p.get("smtp_tls_CAfile")
	if dir := p.get("smtp_tls_CApath"); dir != "" {
		if strings.TrimSuffix(dir, "/") == "/etc/ssl/certs" {
			p.r.caveat("smtp_tls_CApath", dir, "the system's roots, which tlsmail uses by default")
		} else {
			p.notMapped("smtp_tls_CApath", "no CA directory for delivery: use [outbound] ca_file")
		}
	}
	entries, err := p.mapEntries("smtp_tls_policy_maps")
	if err != nil {
		return err
	}
	for _, e := range entries {
		key := strings.ToLower(e.Key)
		if strings.HasPrefix(key, "[") {
			p.r.notMapped("smtp_tls_policy_maps", e.Key+" "+e.Value, "policies are by destination domain, not by next-hop host")
			continue
		}
		if _, err := route.Domain(strings.TrimPrefix(key, ".")); err != nil {
			p.r.notMapped("smtp_tls_policy_maps", e.Key+" "+e.Value, err.Error())
			continue
		}
		if _, err := policy.ParsePolicy(e.Value); err != nil {
			p.r.notMapped("smtp_tls_policy_maps", e.Key+" "+e.Value, err.Error())
			continue
		}
		o.Policy = addKV(o.Policy, key, e.Value)
	}
	return nil
}

// transport maps transport_maps (smtp/relay next hops) into [transport].
func (p *pfImport) transport() error {
	entries, err := p.mapEntries("transport_maps")
	if err != nil {
		return err
	}
	for _, e := range entries {
		p.transportEntry(e)
	}
	if p.m.Set("relayhost") {
		p.notMapped("relayhost", "no default relay host: [transport] names next hops per domain")
	}
	return nil
}

func (p *pfImport) transportEntry(e Entry) {
	key := strings.ToLower(e.Key)
	what := e.Key + " " + e.Value
	if strings.ContainsAny(key, "@*") || strings.HasPrefix(key, ".") {
		p.r.notMapped("transport_maps", what, "transport entries are for whole domains only")
		return
	}
	if _, err := route.Domain(key); err != nil {
		p.r.notMapped("transport_maps", what, err.Error())
		return
	}
	tr, hop, _ := strings.Cut(e.Value, ":")
	switch tr {
	case "smtp", "relay", "":
	case "lmtp":
		p.r.notMapped("transport_maps", what, "local delivery by LMTP is [delivery] \""+key+"\" = \"lmtp:"+hop+"\" for local domains")
		return
	default:
		p.r.notMapped("transport_maps", what, "only smtp and relay next hops have an equivalent")
		return
	}
	if hop == "" {
		return // the default: MX
	}
	host, port := hop, "25"
	if strings.HasPrefix(hop, "[") {
		end := strings.IndexByte(hop, ']')
		if end < 0 {
			p.r.notMapped("transport_maps", what, "next hop [host without ]")
			return
		}
		host = hop[1:end]
		if rest := hop[end+1:]; strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
	} else {
		if h, pt, ok := strings.Cut(hop, ":"); ok {
			host, port = h, pt
		}
		p.r.caveat("transport_maps", what, "Postfix looks up the MX of "+host+"; tlsmail connects to "+host+" itself")
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		p.r.notMapped("transport_maps", what, "port "+port+" is not a number")
		return
	}
	p.r.Transport = addKV(p.r.Transport, key, joinHostPort(host, port))
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

func (p *pfImport) limits() error {
	if !p.m.Set("message_size_limit") {
		return nil
	}
	v := p.get("message_size_limit")
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil:
		return fmt.Errorf("%s: message_size_limit %q is not a number", p.at("message_size_limit"), v)
	case n == 0:
		p.notMapped("message_size_limit", "tlsmail always has a limit: limits.message_size")
	case n < 1024:
		p.notMapped("message_size_limit", "below tlsmail's smallest limit (1024)")
	default:
		p.r.MessageSize = n
	}
	return nil
}
