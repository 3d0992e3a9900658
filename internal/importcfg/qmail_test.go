package importcfg

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The hand-made s/qmail control directory in testdata has every file
// the import reads; each lands in its tlsmail setting or in a comment.
func TestQmailControlDir(t *testing.T) {
	dir, _ := filepath.Abs("testdata/qmail/control")
	r, err := Qmail(dir, QmailOptions{Options: Options{DataDir: "/var/lib/tlsmail", UsersFile: "/etc/tlsmail/users"}})
	if err != nil {
		t.Fatal(err)
	}
	eq := func(what string, got, want any) {
		t.Helper()
		if g, w := strings.TrimSpace(strings.ReplaceAll(sprint(got), "\n", " ")), sprint(want); g != w {
			t.Errorf("%s = %s, want %s", what, g, w)
		}
	}
	eq("hostname", r.Hostname, "mx.example.org")
	eq("local_domains", r.LocalDomains, []string{"example.org", "mx.example.org", "example.net"})
	eq("relay_networks", r.RelayNetworks, []string{"127.0.0.0/8", "192.168.10.0/24", "10.1.2.3/32"})
	eq("transport", r.Transport, []KV{{"partner.example", "relay.partner.example:2525"}, {"[192.0.2.1]", "192.0.2.9:25"}})
	eq("aliases", r.Aliases, []KV{{"backup", "|/usr/local/bin/backup-mail"}, {"info.desk", "alice"}, {"lists", "alice, bob@example.net"}, {"postmaster", "alice"}, {"root", "alice"}})
	eq("tls", r.TLS, TLS{Cert: dir + "/servercert.pem", Key: dir + "/servercert.pem", ClientAuth: "request", ClientCAFile: dir + "/clientca.pem",
		Ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"})
	eq("outbound", r.Outbound, Outbound{Tlsdestinations: dir + "/tlsdestinations", Domaincerts: dir + "/domaincerts"})
	eq("message_size", r.MessageSize, int64(20000000))
	var b bytes.Buffer
	r.WriteTOML(&b)
	for _, want := range []string{
		"# qmail: control/defaulthost = example.org: not mapped (",
		"# qmail: control/rcpthosts = backup.example: not mapped (",
		"# qmail: control/smtproutes = :smarthost.example: not mapped (",
		"# qmail: rules.smtpd.txt = 198.51.100.66:deny: not mapped (",
		"# qmail: rules.smtpd.txt = 192.168.10.:SMTPAUTH=!: not mapped (",
		"\n[queue]\nlifetime = \"604800s\"\n",
		"# qmail: alias/.qmail-default = ./Maildir/: not mapped (",
		"# qmail: control/virtualdomains = example.net:vnet: mapped (",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

// A line the import cannot parse is one error naming file:line; the
// tlsdestinations and domaincerts files are checked by internal/policy's
// own reader (the one delivery uses).
func TestQmailBadLinesNameFileAndLine(t *testing.T) {
	for file, text := range map[string]string{
		"tlsdestinations": "*:\nexample.org:/ca|x|notanumber\n",
		"domaincerts":     "*:/a.pem\nexample.org:/c.pem|/k.pem|secret\n",
		"smtproutes":      "a.example:relay\nnocolon\n",
		"rules.smtpd.txt": "127.:allow\n10.:maybe\n",
		"virtualdomains":  "a.example:a\nnocolon\n",
	} {
		dir := filepath.Join(t.TempDir(), "control")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "me"), []byte("mx.example.org\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "rules.smtpd.txt"), []byte("127.:allow,RELAYCLIENT=\"\"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644)
		_, err := Qmail(dir, QmailOptions{})
		want := filepath.Join(dir, file) + ":2: "
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line starting %q", file, err, want)
		}
	}
}
