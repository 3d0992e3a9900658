package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/tlsmail/tlsmail/internal/importcfg"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// debianPostfix builds a Postfix configuration directory the way an
// admin of a Debian system has one: Debian's shipped main.cf (the one
// postinst writes, or /usr/share/postfix's when this machine has none)
// and master.cf, changed with Postfix's own postconf -e/-M/-P (submission
// and submissions switched on with Debian's -o overrides), and maps
// checked by postmap/postalias. tlsDir holds server.pem, server.key and
// ca.pem.
func debianPostfix(t *testing.T, tlsDir string) string {
	t.Helper()
	postconf := testpeer.Require(t, "postconf")
	postmap := testpeer.Require(t, "postmap")
	dir := t.TempDir()
	mainSrc := "/etc/postfix/main.cf"
	if _, err := os.Stat(mainSrc); err != nil {
		// postinst makes main.cf from main.cf.debian plus main.cf.tls.
		a, err1 := os.ReadFile("/usr/share/postfix/main.cf.debian")
		b, err2 := os.ReadFile("/usr/share/postfix/main.cf.tls")
		if err1 != nil || err2 != nil {
			t.Fatalf("Debian's Postfix files: %v %v", err1, err2)
		}
		os.WriteFile(filepath.Join(dir, "main.cf"), append(a, b...), 0o644)
	} else {
		copyFile(t, mainSrc, filepath.Join(dir, "main.cf"))
	}
	masterSrc := "/etc/postfix/master.cf"
	if _, err := os.Stat(masterSrc); err != nil {
		masterSrc = "/usr/share/postfix/master.cf.dist"
	}
	copyFile(t, masterSrc, filepath.Join(dir, "master.cf"))

	der := readPEM(t, filepath.Join(tlsDir, "server.pem"))
	fp := sha256.Sum256(der)
	files := map[string]string{
		"transport":  "example.net    smtp:[relay.example.net]:2525\nexample.com    relay:[192.0.2.7]\nlocal.example  lmtp:unix:/run/dovecot/lmtp\n",
		"tls_policy": "example.org    secure match=example.org:.example.org\nexample.net    verify\n.example.edu   encrypt\n[mx.example.com]:25 encrypt\n",
		"virtual":    "virtual.example anything\ninfo@virtual.example   alice, bob@example.net\n@virtual.example    alice\n",
		"aliases":    "postmaster: root\nroot: alice\nlists: alice,\n\t bob\nbackup: \"|/usr/local/bin/backup-mail\"\narchive: /var/mail/archive\n",
		"relay_clientcerts": hex.EncodeToString(fp[:]) + " relay.example.net\n" +
			"D7:04:7E:8A:ED:BE:4F:4C:2F:29:2E:A9:D9:31:F1:9F old-md5\n",
	}
	for name, text := range files {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(text), 0o644)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	for _, m := range []string{"transport", "tls_policy", "virtual", "relay_clientcerts"} {
		run(postmap, "-c", dir, "hash:"+filepath.Join(dir, m))
	}
	run(testpeer.Require(t, "postalias"), "-c", dir, "hash:"+filepath.Join(dir, "aliases"))
	run(postconf, "-c", dir, "-e",
		"myhostname = mx.example.org",
		"mydomain = example.org",
		"mydestination = $myhostname, $mydomain, localhost.$mydomain, localhost",
		"mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128 192.0.2.0/24",
		"smtpd_tls_cert_file = "+filepath.Join(tlsDir, "server.pem"),
		"smtpd_tls_key_file = "+filepath.Join(tlsDir, "server.key"),
		"smtpd_tls_CAfile = "+filepath.Join(tlsDir, "ca.pem"),
		"smtpd_tls_ask_ccert = yes",
		"smtpd_tls_mandatory_protocols = >=TLSv1.2",
		"relay_clientcerts = hash:"+filepath.Join(dir, "relay_clientcerts"),
		"transport_maps = hash:"+filepath.Join(dir, "transport"),
		"smtp_tls_policy_maps = hash:"+filepath.Join(dir, "tls_policy"),
		"virtual_alias_maps = hash:"+filepath.Join(dir, "virtual"),
		"alias_maps = hash:"+filepath.Join(dir, "aliases"),
		"alias_database = hash:"+filepath.Join(dir, "aliases"),
		"smtp_dns_support_level = dnssec",
		"smtp_tls_security_level = dane",
		"message_size_limit = 52428800",
		"smtpd_milters = inet:127.0.0.1:11332",
		// Every expansion form, for the postconf -nx oracle.
		"smtpd_banner = $myhostname ESMTP ${mail_name?{$mail_name in $mydomain}:{x}} ${relayhost:direct} ${relayhost?never} $$literal $(mydomain)",
	)
	run(postconf, "-c", dir, "-Me", "submission/inet=submission inet n - y - - smtpd")
	run(postconf, "-c", dir, "-Me", "submissions/inet=submissions inet n - y - - smtpd")
	run(postconf, "-c", dir, "-P",
		"submission/inet/syslog_name=postfix/submission",
		"submission/inet/smtpd_tls_security_level=encrypt",
		"submission/inet/smtpd_sasl_auth_enable=yes",
		"submission/inet/smtpd_tls_auth_only=yes",
		"submission/inet/smtpd_client_restrictions=permit_sasl_authenticated,reject",
		"submission/inet/smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
		"submissions/inet/syslog_name=postfix/submissions",
		"submissions/inet/smtpd_tls_wrappermode=yes",
		"submissions/inet/smtpd_sasl_auth_enable=yes",
	)
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(to, b, 0o644)
}

func readPEM(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	return blk.Bytes
}

// importedConfig is what the test reads back from the written file.
type importedConfig struct {
	Hostname      string            `toml:"hostname"`
	LocalDomains  []string          `toml:"local_domains"`
	RelayNetworks []string          `toml:"relay_networks"`
	RelayCerts    []string          `toml:"relay_clientcerts"`
	Aliases       map[string]string `toml:"aliases"`
	Transport     map[string]string `toml:"transport"`
	TLS           map[string]string `toml:"tls"`
	Outbound      struct {
		TLSLevel string            `toml:"tls_level"`
		Policy   map[string]string `toml:"policy"`
	} `toml:"outbound"`
	Limits struct {
		MessageSize int64 `toml:"message_size"`
	} `toml:"limits"`
	Listener []map[string]string `toml:"listener"`
}

// A real Debian Postfix configuration imports into a tlsmail.toml with
// the mapped values, a comment for each setting that has no equivalent,
// and tlsmail check passes on it.
func TestImportDebianPostfixPassesCheck(t *testing.T) {
	dev, _ := devDir(t)
	tlsDir := filepath.Join(dev, "tls")
	pf := debianPostfix(t, tlsDir)
	out := filepath.Join(t.TempDir(), "tlsmail.toml")
	code, _, errs := runCLI(t, "tlsmail", "import", "postfix", pf, "--output", out, "--data-dir", dev, "--users-file", filepath.Join(dev, "users"))
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, errs)
	}
	text, _ := os.ReadFile(out)
	var got importedConfig
	if _, err := toml.Decode(string(text), &got); err != nil {
		t.Fatalf("output is not TOML: %v\n%s", err, text)
	}
	fpDER := sha256.Sum256(readPEM(t, filepath.Join(tlsDir, "server.pem")))
	check := func(what string, got, want any) {
		t.Helper()
		if g, w := strings.TrimSpace(strings.ReplaceAll(toString(got), "\n", " ")), toString(want); g != w {
			t.Errorf("%s = %s, want %s", what, g, w)
		}
	}
	check("hostname", got.Hostname, "mx.example.org")
	check("local_domains", got.LocalDomains, []string{"mx.example.org", "example.org", "localhost.example.org", "localhost", "virtual.example"})
	check("relay_networks", got.RelayNetworks, []string{"127.0.0.0/8", "::1/128", "192.0.2.0/24"})
	check("relay_clientcerts", got.RelayCerts, []string{hex.EncodeToString(fpDER[:])})
	check("aliases", got.Aliases, map[string]string{"postmaster": "root", "root": "alice", "lists": "alice, bob", "backup": "|/usr/local/bin/backup-mail", "info@virtual.example": "alice, bob@example.net"})
	check("transport", got.Transport, map[string]string{"example.net": "relay.example.net:2525", "example.com": "192.0.2.7:25"})
	check("tls", got.TLS, map[string]string{"cert": filepath.Join(tlsDir, "server.pem"), "key": filepath.Join(tlsDir, "server.key"),
		"client_ca_file": filepath.Join(tlsDir, "ca.pem"), "client_auth": "request", "min_version": "TLSv1.2"})
	check("outbound.tls_level", got.Outbound.TLSLevel, "dane")
	check("outbound.policy", got.Outbound.Policy, map[string]string{"example.org": "secure match=example.org:.example.org", "example.net": "verify", ".example.edu": "encrypt"})
	check("limits.message_size", got.Limits.MessageSize, int64(52428800))
	check("listeners", got.Listener, []map[string]string{
		{"name": "smtp", "address": ":25", "mode": "starttls", "auth": "none"},
		{"name": "submission", "address": ":587", "mode": "starttls", "auth": "required"},
		{"name": "submissions", "address": ":465", "mode": "implicit", "auth": "required"},
	})
	for _, want := range []string{
		"[[milter]]\nname = \"rspamd\"\naddress = \"inet:127.0.0.1:11332\"\n",
		"# postfix: smtpd_banner = $myhostname ESMTP ${mail_name?{$mail_name in $mydomain}:{x}} ${relayhost:direct} ${relayhost?never} $$literal $(mydomain): not mapped (",
		"# postfix: smtp_tls_policy_maps = [mx.example.com]:25 encrypt: not mapped (",
		"# postfix: transport_maps = local.example lmtp:unix:/run/dovecot/lmtp: not mapped (",
		"# postfix: virtual_alias_maps = @virtual.example alice: not mapped (",
		"# postfix: alias_maps = archive: /var/mail/archive: not mapped (",
		"# postfix: relay_clientcerts = D7:04:7E:8A:ED:BE:4F:4C:2F:29:2E:A9:D9:31:F1:9F: not mapped (",
		"# postfix: submission/inet/smtpd_client_restrictions = permit_sasl_authenticated,reject: not mapped (",
		"# postfix: smtp_dns_support_level = dnssec: mapped (",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("no comment %q in\n%s", want, text)
		}
	}
	if code, stdout, errs := runCLI(t, "tlsmail", "check", "--config", out); code != 0 {
		t.Fatalf("tlsmail check on the imported file: exit %d %s %s\n%s", code, stdout, errs, text)
	}
	// Never overwritten without --force.
	if code, _, errs := runCLI(t, "tlsmail", "import", "postfix", pf, "--output", out); code == 0 || !strings.Contains(errs, "--force") {
		t.Errorf("import over an existing file: exit %d %q", code, errs)
	}
	if code, _, errs := runCLI(t, "tlsmail", "import", "postfix", pf, "--output", out, "--force", "--data-dir", dev, "--users-file", filepath.Join(dev, "users")); code != 0 {
		t.Errorf("import --force: exit %d %q", code, errs)
	}
}

// postconf is the oracle for main.cf: every parameter postconf -n finds
// has the raw value we read, and postconf -nx's expansion of $variables
// is ours; postconf -M and -P list the services and -o overrides we read.
func TestImportReadsMainCFAndMasterCFAsPostconf(t *testing.T) {
	dev, _ := devDir(t)
	pf := debianPostfix(t, filepath.Join(dev, "tls"))
	postconf := testpeer.Require(t, "postconf")
	m, err := importcfg.ReadMainCF(filepath.Join(pf, "main.cf"))
	if err != nil {
		t.Fatal(err)
	}
	raw, expanded := postconfLines(t, postconf, "-c", pf, "-n"), postconfLines(t, postconf, "-c", pf, "-nx")
	if len(raw) < 20 {
		t.Fatalf("postconf -n found only %d parameters", len(raw))
	}
	for name, v := range raw {
		if name == "config_directory" { // postconf's own for -c
			continue
		}
		if !m.Set(name) {
			t.Errorf("%s: postconf -n has it, we do not", name)
			continue
		}
		if got := strings.Join(strings.Fields(m.Raw(name)), " "); got != v {
			t.Errorf("%s: raw %q, postconf -n %q", name, got, v)
		}
		if got := strings.Join(strings.Fields(m.Get(name)), " "); got != expanded[name] {
			t.Errorf("%s: expanded %q, postconf -nx %q", name, got, expanded[name])
		}
	}
	for _, name := range m.Order {
		if _, ok := raw[name]; !ok {
			t.Errorf("%s: we read it, postconf -n does not", name)
		}
	}
	mc, err := importcfg.ReadMasterCF(filepath.Join(pf, "master.cf"))
	if err != nil {
		t.Fatal(err)
	}
	var ours, theirs []string
	for _, s := range mc.Services {
		ours = append(ours, s.Name+"/"+s.Type)
		for name, v := range s.Overrides {
			ours = append(ours, s.Name+"/"+s.Type+"/"+name+" = "+v)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(run1(t, postconf, "-c", pf, "-M")), "\n") {
		f := strings.Fields(l)
		theirs = append(theirs, f[0]+"/"+f[1])
	}
	theirs = append(theirs, strings.Split(strings.TrimSpace(run1(t, postconf, "-c", pf, "-P")), "\n")...)
	sort.Strings(ours)
	sort.Strings(theirs)
	if strings.Join(ours, "\n") != strings.Join(theirs, "\n") {
		t.Errorf("master.cf:\nours:\n%s\npostconf -M/-P:\n%s", strings.Join(ours, "\n"), strings.Join(theirs, "\n"))
	}
}

func run1(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return string(out)
}

func postconfLines(t *testing.T, postconf string, args ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(run1(t, postconf, args...)), "\n") {
		k, v, _ := strings.Cut(l, " = ")
		out[k] = strings.Join(strings.Fields(v), " ")
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			b.WriteString(k + "=" + x[k] + ";")
		}
		return b.String()
	case []map[string]string:
		var b strings.Builder
		for _, m := range x {
			b.WriteString("{" + toString(m) + "}")
		}
		return b.String()
	case []string:
		return strings.Join(x, ",")
	}
	return strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " "))
}

func fmtAny(v any) string { return strings.TrimSpace(fmt.Sprint(v)) }

// The hand-made s/qmail control directory imports into a file tlsmail
// check passes (its servercert.pem is a real certificate and key).
func TestImportQmailPassesCheck(t *testing.T) {
	dev, _ := devDir(t)
	control, _ := filepath.Abs("../../internal/importcfg/testdata/qmail/control")
	out := filepath.Join(t.TempDir(), "tlsmail.toml")
	code, _, errs := runCLI(t, "tlsmail", "import", "qmail", control, "--output", out, "--data-dir", dev, "--users-file", filepath.Join(dev, "users"))
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, errs)
	}
	text, _ := os.ReadFile(out)
	for _, want := range []string{`hostname = "mx.example.org"`, `tlsdestinations = "` + control + `/tlsdestinations"`, `"partner.example" = "relay.partner.example:2525"`, `relay_networks = ["127.0.0.0/8", "192.168.10.0/24", "10.1.2.3/32"]`} {
		if !strings.Contains(string(text), want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	if code, stdout, errs := runCLI(t, "tlsmail", "check", "--config", out); code != 0 {
		t.Fatalf("tlsmail check on the imported file: exit %d %s %s\n%s", code, stdout, errs, text)
	}
}

func TestImportUsageAndErrors(t *testing.T) {
	if code, _, errs := runCLI(t, "tlsmail", "import", "exim"); code != exitUsage || !strings.Contains(errs, "exim") {
		t.Errorf("import exim: exit %d %q", code, errs)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("myhostname = mx.example.org\nnot a parameter\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "master.cf"), []byte("smtp inet n - y - - smtpd\n"), 0o644)
	code, _, errs := runCLI(t, "tlsmail", "import", "postfix", dir)
	if want := filepath.Join(dir, "main.cf") + ":2: "; code != exitFail || !strings.Contains(errs, want) || strings.Count(errs, "\n") != 1 {
		t.Errorf("bad main.cf: exit %d %q, want one line naming %s", code, errs, want)
	}
}

// TestImportDefaultDirMissingSaysHowToNameOne: without DIR the import
// reads the system's own directory; where there is none, the error says
// how to name another one.
func TestImportDefaultDirMissingSaysHowToNameOne(t *testing.T) {
	if _, err := os.Stat("/var/qmail/control"); err == nil {
		t.Skip("this machine has a real /var/qmail/control")
	}
	code, _, errs := runCLI(t, "tlsmail", "import", "qmail")
	if code == 0 || !strings.Contains(errs, "tlsmail import qmail DIR") {
		t.Errorf("import qmail without DIR: exit %d, %q", code, errs)
	}
}

// TestImportWarnsAboutAliasesToRoot: Debian's /etc/aliases sends
// postmaster to root, which has no tlsmail mailbox: the import says so on
// stderr with the file and line (exit 0, the configuration is still
// written); --root-to USER maps root instead, and a name that is no user
// name is a usage error.
func TestImportWarnsAboutAliasesToRoot(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "aliases"), []byte("# See man 5 aliases for format\npostmaster:    root\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("myhostname = mx.example.org\nalias_maps = hash:"+dir+"/aliases\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "master.cf"), []byte("smtp inet n - y - - smtpd\n"), 0o644)
	code, out, errs := runCLI(t, "tlsmail", "import", "postfix", dir)
	want := "tlsmail import: warning: " + dir + "/aliases:2: alias postmaster: target root: tlsmail has no root mailbox"
	if code != 0 || !strings.Contains(errs, want) || !strings.Contains(errs, "--root-to USER") || !strings.Contains(out, `"postmaster" = "root"`) {
		t.Errorf("import: exit %d, stderr %q, want %q\n%s", code, errs, want, out)
	}
	code, out, errs = runCLI(t, "tlsmail", "import", "--root-to", "alice", "postfix", dir)
	if code != 0 || errs != "" || !strings.Contains(out, "\"root\" = \"alice\"\n") {
		t.Errorf("import --root-to alice: exit %d, stderr %q\n%s", code, errs, out)
	}
	if code, _, errs := runCLI(t, "tlsmail", "import", "--root-to", "a b", "postfix", dir); code != exitUsage {
		t.Errorf("--root-to 'a b': exit %d %q", code, errs)
	}
}
