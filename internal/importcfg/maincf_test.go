package importcfg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainCFContinuationCommentsAndExpansion(t *testing.T) {
	text := `# a comment
myhostname = mx.example.org
mydomain = example.org
list = a,
    b
# a comment inside a continued value is skipped
	c  
trailing = value # not a comment
all = $myhostname ${mydomain} $(mail_name) $$literal
cond = ${mydomain?{yes $mydomain}:{no}} ${unset_param?x} ${unset_param:fallback} ${mydomain:never}
nested = $all
empty =
`
	m, err := ParseMainCF("main.cf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"list":     "a, b c",
		"trailing": "value # not a comment",
		"all":      "mx.example.org example.org Postfix $literal",
		"cond":     "yes example.org  fallback ",
		"nested":   "mx.example.org example.org Postfix $literal",
		"empty":    "",
	} {
		if got := m.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if p := m.Params["list"]; p.Line != 4 {
		t.Errorf("list is at line %d, want 4", p.Line)
	}
	if got := list(m.Get("list")); strings.Join(got, "|") != "a|b|c" {
		t.Errorf("list(list) = %q", got)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"main.cf", "a = b\nthis is not a parameter\n", "main.cf:2: "},
		{"main.cf", "  continued = x\n", "main.cf:1: "},
		{"master.cf", "smtp inet n - y - - smtpd\nbroken inet\n", "master.cf:2: "},
		{"master.cf", "smtp inet n - y - - smtpd\n  -o\n", "master.cf:1: "},
	} {
		var err error
		if c.name == "main.cf" {
			_, err = ParseMainCF(c.name, []byte(c.text))
		} else {
			_, err = ParseMasterCF(c.name, []byte(c.text))
		}
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line starting %q", c.text, err, c.want)
		}
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "transport")
	os.WriteFile(f, []byte("example.org smtp:[a]\nlonely\n"), 0o644)
	if _, err := ReadMap("hash:" + f); err == nil || !strings.HasPrefix(err.Error(), f+":2: ") {
		t.Errorf("map error %v, want %s:2", err, f)
	}
	if _, err := ReadMap("mysql:/etc/postfix/x.cf"); err == nil {
		t.Error("mysql: map read")
	}
}

func TestMasterCFServicesAndOverrides(t *testing.T) {
	text := `smtp      inet  n       -       y       -       -       smtpd
#submission inet n       -       y       -       -       smtpd
#  -o smtpd_tls_security_level=encrypt
127.0.0.1:2525 inet n - y - - smtpd
  -o { smtpd_tls_security_level = encrypt }
  -o smtpd_sasl_auth_enable=yes -v
pickup    unix  n       -       y       60      1       pickup
`
	mc, err := ParseMasterCF("master.cf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(mc.Services) != 3 {
		t.Fatalf("%d services, want 3 (a commented one is off)", len(mc.Services))
	}
	s := mc.Services[1]
	if s.Name != "127.0.0.1:2525" || s.Overrides["smtpd_tls_security_level"] != "encrypt" || s.Overrides["smtpd_sasl_auth_enable"] != "yes" || len(s.Args) != 1 || s.Line != 4 {
		t.Errorf("service %+v", s)
	}
	if h, p, ok := hostPort(s.Name); h != "127.0.0.1" || p != "2525" || !ok {
		t.Errorf("hostPort = %q %q %v", h, p, ok)
	}
	if _, p, _ := hostPort("submissions"); p != "465" {
		t.Errorf("submissions port %q", p)
	}
}

func TestProtocolFloor(t *testing.T) {
	for in, want := range map[string]string{
		">=TLSv1.2":                        "TLSv1.2",
		"!SSLv2, !SSLv3":                   "TLSv1.0",
		"!SSLv2, !SSLv3, !TLSv1, !TLSv1.1": "TLSv1.2",
		"TLSv1.3":                          "TLSv1.3",
	} {
		if got, err := protocolFloor(in); got != want || err != nil {
			t.Errorf("protocolFloor(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := protocolFloor("TLSv9"); err == nil {
		t.Error("TLSv9 accepted")
	}
}

func TestNetworks(t *testing.T) {
	for in, want := range map[string]string{
		"[::ffff:127.0.0.0]/104": "127.0.0.0/8",
		"[::1]/128":              "::1/128",
		"192.0.2.7":              "192.0.2.7/32",
		"10.0.0.0/8":             "10.0.0.0/8",
	} {
		if got, err := parseNetwork(in); got != want || err != nil {
			t.Errorf("parseNetwork(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"127.": "127.0.0.0/8", "192.168.1.": "192.168.1.0/24", "10.1.2.3": "10.1.2.3/32", "": "", "=host.example": ""} {
		got, ok := tcprulesNetwork(in)
		if got != want || ok != (want != "") {
			t.Errorf("tcprulesNetwork(%q) = %q %v; want %q", in, got, ok, want)
		}
	}
}

// Names that refer to each other end: a loop expands to a bounded string.
func TestExpansionLoopsEnd(t *testing.T) {
	m, err := ParseMainCF("main.cf", []byte("a = $b $b $b $c\nb = $a $a $a ${c?{$a}}\nc = $a$b$c\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v := m.Get("a"); len(v) > 1<<20 {
		t.Errorf("expansion of a loop is %d bytes", len(v))
	}
}

func FuzzMainCF(f *testing.F) {
	f.Add([]byte("a = $b ${c?{x}:{y}} $(d)\n  more\n# c\nb = $$ ${a:z}\n"))
	f.Add([]byte("x = ${{$a} == {b} ? {c} : {d}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMainCF("main.cf", data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error on two lines: %q", err)
			}
			return
		}
		for _, name := range m.Order {
			m.Get(name)
		}
	})
}
