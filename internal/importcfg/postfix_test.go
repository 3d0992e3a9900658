package importcfg

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// Mappings with a difference, and maps the import cannot read, become
// comments; the import goes on.
func TestPostfixCommentsWhatItCannotMap(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) { os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644) }
	write("transport", "example.net smtp:mx.example.net\n.example.net smtp:[x]\n")
	write("main.cf", `myhostname = mx.example.org
inet_interfaces = loopback-only
smtp_tls_security_level = dane
smtpd_tls_cert_file = none
transport_maps = hash:`+dir+`/transport, mysql:/etc/postfix/mysql-transport.cf
virtual_alias_maps = hash:`+dir+`/no-such-text
smtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1
smtpd_tls_mandatory_protocols = >=TLSv1.3
relayhost = [smarthost.example]:587
message_size_limit = 0
smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, reject_rbl_client zen.spamhaus.org
`)
	write("master.cf", "smtp inet n - y - 1 postscreen\n2525 inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n")
	r, err := Postfix(dir, Options{DataDir: "/d", UsersFile: "/u"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Outbound.TLSLevel != "may" || r.TLS.Cert != "" || r.TLS.MinVersion != "TLSv1.1" || r.MessageSize != 0 {
		t.Errorf("outbound %+v tls %+v size %d", r.Outbound, r.TLS, r.MessageSize)
	}
	if len(r.Transport) != 1 || r.Transport[0] != (KV{"example.net", "mx.example.net:25"}) {
		t.Errorf("transport %v", r.Transport)
	}
	if len(r.Listeners) != 2 || r.Listeners[0] != (Listener{"smtp", "127.0.0.1:25", "plain", "none"}) || r.Listeners[1] != (Listener{"2525", "127.0.0.1:2525", "plain", "none"}) {
		t.Errorf("listeners %+v", r.Listeners)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	for _, want := range []string{
		"# postfix: smtp_tls_security_level = dane: mapped (smtp_dns_support_level is not dnssec",
		"# postfix: transport_maps = mysql:/etc/postfix/mysql-transport.cf: not mapped (mysql: tables are read only from",
		"# postfix: virtual_alias_maps = hash:" + dir + "/no-such-text: not mapped (its source text is not there",
		"# postfix: transport_maps = example.net smtp:mx.example.net: mapped (Postfix looks up the MX of mx.example.net",
		"# postfix: transport_maps = .example.net smtp:[x]: not mapped (",
		"# postfix: smtpd_tls_mandatory_protocols = >=TLSv1.3: not mapped (one min_version for every listener",
		"# postfix: relayhost = [smarthost.example]:587: not mapped (",
		"# postfix: message_size_limit = 0: not mapped (",
		"# postfix: master.cf smtp/inet = postscreen: mapped (",
		"# postfix: master.cf 2525/inet = smtpd_tls_auth_only=no: mapped (tlsmail offers AUTH only after TLS)",
		// No certificate: AUTH cannot be offered (the listener had auth =
		// "optional" on a plain port before, which check refused).
		"# postfix: master.cf 2525/inet = smtpd_sasl_auth_enable=yes: not mapped (AUTH needs TLS and there is no certificate",
		// Read for the SASL listener's auth, and still said (it was lost).
		"# postfix: smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, reject_rbl_client zen.spamhaus.org: not mapped (",
		"DNS blocklists (reject_rbl_client, reject_rhsbl_*) are not checked: use a [[milter]] (rspamd) for them)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

// smtpd_tls_chain_files as postconf(5) allows it: a key file before its
// certificate file (it became cert = key = the key file before, which
// check refused), a file holding both, and a second pair, which is left
// for [[tls.sni]].
func TestPostfixChainFiles(t *testing.T) {
	dir := t.TempDir()
	testpeer.LoopbackCert(t, dir) // pf.key, pf.pem
	key, cert := filepath.Join(dir, "pf.key"), filepath.Join(dir, "pf.pem")
	kb, _ := os.ReadFile(key)
	cb, _ := os.ReadFile(cert)
	both := filepath.Join(dir, "both.pem")
	os.WriteFile(both, append(kb, cb...), 0o600)
	for _, c := range []struct {
		chain, key, cert, comment string
	}{
		{key + ", " + cert, key, cert, ""},
		{both, both, both, ""},
		{both + " " + key + " " + cert, both, both, "# postfix: smtpd_tls_chain_files = " + key + " " + cert + ": not mapped (one certificate per name"},
	} {
		os.WriteFile(filepath.Join(dir, "main.cf"), []byte("myhostname = mx.example.org\nsmtpd_tls_chain_files = "+c.chain+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "master.cf"), []byte("smtp inet n - y - - smtpd\n"), 0o644)
		r, err := Postfix(dir, Options{DataDir: "/d", UsersFile: "/u"})
		if err != nil {
			t.Fatal(err)
		}
		if r.TLS.Key != c.key || r.TLS.Cert != c.cert {
			t.Errorf("%s: key %s cert %s, want %s and %s", c.chain, r.TLS.Key, r.TLS.Cert, c.key, c.cert)
		}
		var b bytes.Buffer
		r.WriteTOML(&b)
		if c.comment != "" && !strings.Contains(b.String(), c.comment) {
			t.Errorf("%s: no %q in\n%s", c.chain, c.comment, b.String())
		}
	}
}

// "|command" aliases as local(8) runs them, through the shell's PATH:
// the program is looked up here and written with its absolute path
// (check refused the imported "|procmail" before); a shell built-in is a
// comment, not a configuration that does not start.
func TestPostfixPipeAliases(t *testing.T) {
	dir := t.TempDir()
	catPath, err := exec.LookPath("cat")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "aliases"), []byte("list: \"|cat -u\"\nbounce: |\"exit 67\"\nabs: |/usr/bin/env true\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("myhostname = mx.example.org\nalias_maps = hash:"+dir+"/aliases\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "master.cf"), []byte("smtp inet n - y - - smtpd\n"), 0o644)
	r, err := Postfix(dir, Options{DataDir: "/d", UsersFile: "/u"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range r.Aliases {
		got[kv.Key] = kv.Value
	}
	if got["list"] != "|"+catPath+" -u" || got["abs"] != "|/usr/bin/env true" || got["bounce"] != "" {
		t.Errorf("aliases %v", r.Aliases)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	if !strings.Contains(b.String(), `"exit" is no program found here`) {
		t.Errorf("no comment for the built-in:\n%s", b.String())
	}
}

// mynetworks with "!pattern" exclusions (postconf(5); first match wins):
// the import stopped with "not an IP address". relay_networks has no
// exclusions, so a network after an exclusion becomes the networks it
// leaves (never wider), and says so; an exclusion after it changes
// nothing, as in Postfix.
func TestPostfixMynetworksExclusions(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("myhostname = mx.example.org\nmynetworks = 127.0.0.0/8, !192.168.1.1, 192.168.1.0/29, 10.0.0.0/8, !10.1.0.0/16\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "master.cf"), []byte("smtp inet n - y - - smtpd\n"), 0o644)
	r, err := Postfix(dir, Options{DataDir: "/d", UsersFile: "/u"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.0/8", "192.168.1.0/32", "192.168.1.2/31", "192.168.1.4/30", "10.0.0.0/8"}
	if strings.Join(r.RelayNetworks, " ") != strings.Join(want, " ") {
		t.Errorf("relay networks %v, want %v", r.RelayNetworks, want)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	if !strings.Contains(b.String(), "# postfix: mynetworks = 192.168.1.0/29: mapped (with the exclusions before it (!192.168.1.1/32)") {
		t.Errorf("no comment on the split network:\n%s", b.String())
	}
}

// inline:{ ... } maps (Postfix 3.0) are read, braces grouping a value
// with blanks; they became one comment per word before.
func TestPostfixInlineMaps(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("myhostname = mx.example.org\n"+
		"smtp_tls_policy_maps = inline:{ example.com=secure, { partner.example = verify match=mx.partner.example } }\n"+
		"alias_maps = inline:{ root=alice, { lists = bob, carol } }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "master.cf"), []byte("smtp inet n - y - - smtpd\n"), 0o644)
	r, err := Postfix(dir, Options{DataDir: "/d", UsersFile: "/u"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	r.WriteTOML(&b)
	out := b.String()
	for _, want := range []string{`"example.com" = "secure"`, `"partner.example" = "verify match=mx.partner.example"`, `"root" = "alice"`, `"lists" = "bob, carol"`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "not a map reference") {
		t.Errorf("inline map words taken as map references:\n%s", out)
	}
}
