package ucspi

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestCompileRulesMatchesDebianTcprules: the same rules text gives the
// same cdb bytes from CompileRules+WriteCDB as from Debian's tcprules,
// and the lines tcprules refuses are refused with the line number.
func TestCompileRulesMatchesDebianTcprules(t *testing.T) {
	bin := testpeer.Require(t, "tcprules")
	texts := []string{
		"",
		"127.0.0.1:allow\n",
		`# s/qmail style
127.0.0.1:allow,RELAYCLIENT="",SMTPAUTH="!"
10.1.2.3-5:allow,RANGE="yes"
10.9.8.250-300:deny
1.2.-2.4:allow
192.168.:allow,PREFIX="192.168"   ` + "\t" + `
joe@192.0.2.7:allow,WHO="joe"

not a rule line
=mail.example.org:allow,HOST="exact",Q=/slash/,E=''
=.example.org:deny
=:allow,X="any"
127.0.0.1:deny
:allow,CIPHERS="HIGH",UCSPITLS="-"
` + "  # indented comment without colon\n" + `5.5.5.5:allow, SPACE="y"`,
	}
	for i, text := range texts {
		dir := t.TempDir()
		want := filepath.Join(dir, "debian.cdb")
		cmd := exec.Command(bin, want, want+".tmp")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("text %d: tcprules: %v %s", i, err, out)
		}
		keys, values, err := CompileRules(strings.NewReader(text))
		if err != nil {
			t.Fatalf("text %d: %v", i, err)
		}
		var got bytes.Buffer
		if err := WriteCDB(&got, keys, values); err != nil {
			t.Fatal(err)
		}
		wantBytes, _ := os.ReadFile(want)
		if !bytes.Equal(got.Bytes(), wantBytes) {
			t.Errorf("text %d: cdb differs from tcprules' (%d vs %d bytes; keys %q)", i, got.Len(), len(wantBytes), keys)
		}
	}
	for _, bad := range []string{"1.2.3.4:allow\n1.2.3.4:bogus\n", "ok:allow\nx:allow,NOEQUALS\n", "a:allow\nb:allow\nc:allow,X=\"open\n", "1.2.3.a-b:allow\n", "x:allow ,X=\"y\"\n"} {
		cmd := exec.Command(bin, filepath.Join(t.TempDir(), "x.cdb"), filepath.Join(t.TempDir(), "x.tmp"))
		cmd.Stdin = strings.NewReader(bad)
		if err := cmd.Run(); err == nil {
			t.Errorf("tcprules accepted %q; the test expects a refusal", bad)
		}
		_, _, err := CompileRules(strings.NewReader(bad))
		var se *RuleSyntaxError
		if !errors.As(err, &se) || se.Line != strings.Count(bad, "\n") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// IPv6 lines, as Debian's IPv6 tcprules (ucspi-tcp-ipv6) reads them: the
// address ends at the first ':' followed by allow or deny, and is kept as
// written (the installed djb tcprules refuses them; so did CompileRules,
// which stopped `tlsmail import qmail` on an s/qmail rules file with one).
func TestCompileRulesIPv6Lines(t *testing.T) {
	keys, values, err := CompileRules(strings.NewReader("::1:allow,RELAYCLIENT=\"\"\n2001:db8::1:deny\n2001:db8::allow\n[::1]:allow\n127.0.0.1:allow,X=\"a:deny\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"::1": "+RELAYCLIENT=\x00", "2001:db8::1": "D\x00", "2001:db8:": "", "[::1]": "", "127.0.0.1": "+X=a:deny\x00"}
	if len(keys) != len(want) {
		t.Fatalf("keys %q", keys)
	}
	for i, k := range keys {
		if v, ok := want[string(k)]; !ok || v != string(values[i]) {
			t.Errorf("key %q value %q, want %q (known: %v)", k, values[i], v, ok)
		}
	}
}
