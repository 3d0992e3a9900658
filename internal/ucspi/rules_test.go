package ucspi

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// compile runs Debian's tcprules on rules text and opens the cdb.
func compile(t *testing.T, rules string) *CDB {
	t.Helper()
	db, err := OpenCDB(compileFile(t, rules))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// compileFile runs Debian's tcprules on rules text and returns the cdb's
// path.
func compileFile(t *testing.T, rules string) string {
	t.Helper()
	bin := testpeer.Require(t, "tcprules")
	dir := t.TempDir()
	cdb, tmp := filepath.Join(dir, "rules.cdb"), filepath.Join(dir, "rules.tmp")
	cmd := exec.Command(bin, cdb, tmp)
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tcprules: %v\n%s", err, out)
	}
	return cdb
}

func TestRulesFromDebianTcprules(t *testing.T) {
	db := compile(t, `# s/qmail style rules
127.0.0.1:allow,RELAYCLIENT="",SMTPAUTH="!"
10.1.2.3-5:allow,RANGE="yes"
192.168.:allow,PREFIX="192.168"
joe@192.0.2.7:allow,WHO="joe"
192.0.2.:deny
=mail.example.org:allow,HOST="exact"
=.example.net:allow,HOST=/suffix "quoted"/
=:allow,NAMED="1"
:allow,UCSPITLS=""
`)
	for _, tc := range []struct {
		ip, host, info string
		key            string
		deny           bool
		env            string
	}{
		{"127.0.0.1", "", "", "127.0.0.1", false, "RELAYCLIENT=,SMTPAUTH=!"},
		{"10.1.2.4", "", "", "10.1.2.4", false, "RANGE=yes"},
		{"10.1.2.6", "", "", "", false, "UCSPITLS="},
		{"192.168.7.9", "", "", "192.168.", false, "PREFIX=192.168"},
		{"192.0.2.7", "", "joe", "joe@192.0.2.7", false, "WHO=joe"},
		{"192.0.2.8", "", "", "192.0.2.", true, ""},
		{"198.51.100.1", "mail.example.org", "", "=mail.example.org", false, "HOST=exact"},
		{"198.51.100.1", "a.b.example.net", "", "=.example.net", false, `HOST=suffix "quoted"`},
		{"198.51.100.1", "other.test", "", "=", false, "NAMED=1"},
		{"198.51.100.1", "", "", "", false, "UCSPITLS="},
	} {
		d, err := Lookup(db, net.ParseIP(tc.ip), tc.host, tc.info)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Found || d.Key != tc.key || d.Deny != tc.deny || strings.Join(d.Env, ",") != tc.env {
			t.Errorf("%s %q %q: %+v, want key %q deny %v env %q", tc.ip, tc.host, tc.info, d, tc.key, tc.deny, tc.env)
		}
	}
}

func TestRulesIPv6AndFehcomCIDR(t *testing.T) {
	var keys, vals [][]byte
	add := func(k, v string) { keys = append(keys, []byte(k)); vals = append(vals, []byte(v)) }
	add("2001:db8::25", "+V6=compressed\x00")
	add("2001:0DB8:0000:0000:0000:0000:0000:0026", "+V6=expanded\x00")
	add("2001:db8:1:", "+V6=prefix\x00")
	add(CIDRKey(net.ParseIP("10.0.0.0"), 8), "+CIDR=10/8\x00")
	add(CIDRKey(net.ParseIP("172.16.0.0"), 12)+"\x00", "D\x00")
	add(CIDRKey(net.ParseIP("2001:db8:ff00::"), 40), "+CIDR=v6/40\x00")
	var buf bytes.Buffer
	if err := WriteCDB(&buf, keys, vals); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "r.cdb")
	os.WriteFile(path, buf.Bytes(), 0o644)
	db, err := OpenCDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if CIDRKey(net.ParseIP("10.0.0.0"), 8) != "_0000e0g0" {
		t.Errorf("fehcom encoding of 10.0.0.0/8: %q", CIDRKey(net.ParseIP("10.0.0.0"), 8))
	}
	for ip, want := range map[string]string{
		"2001:db8::25":       "V6=compressed",
		"2001:db8::26":       "V6=expanded",
		"2001:db8:1::9":      "V6=prefix",
		"10.200.3.4":         "CIDR=10/8",
		"2001:db8:ff00::abc": "CIDR=v6/40",
	} {
		d, _ := Lookup(db, net.ParseIP(ip), "", "")
		if strings.Join(d.Env, ",") != want {
			t.Errorf("%s: %+v, want %s", ip, d, want)
		}
	}
	if d, _ := Lookup(db, net.ParseIP("172.20.1.1"), "", ""); !d.Deny {
		t.Errorf("CIDR key with a trailing NUL not matched: %+v", d)
	}
	if d, _ := Lookup(db, net.ParseIP("8.8.8.8"), "", ""); d.Found {
		t.Errorf("no rule should match: %+v", d)
	}
}

func FuzzCDB(f *testing.F) {
	f.Add([]byte("key"), []byte("value"), []byte("other"))
	f.Fuzz(func(t *testing.T, k1, v1, k2 []byte) {
		var buf bytes.Buffer
		if err := WriteCDB(&buf, [][]byte{k1, k2}, [][]byte{v1, nil}); err != nil {
			t.Fatal(err)
		}
		db := &CDB{data: buf.Bytes()}
		got, ok, err := db.Get(k1)
		if err != nil || !ok || !bytes.Equal(got, v1) {
			t.Fatalf("round trip: %q %v %v", got, ok, err)
		}
		// A corrupted file must give errors, not panics.
		b := append([]byte(nil), buf.Bytes()...)
		for i := 2048; i < len(b); i += 7 {
			b[i] ^= 0xff
		}
		_, _, _ = (&CDB{data: b}).Get(k2)
	})
}

// TestRulesCompetingKeys: when several rules match one client, the first
// key in tcpserver's order wins: INFO@IP, INFO@=HOST, the exact IP,
// =HOST, IP prefixes (longest first), =.suffixes (longest first), "=",
// then the default. Every client below matches several rules of a cdb
// built by Debian's tcprules, and Debian's tcprulescheck must name the
// same rule, so the order is ucspi-tcp's, not only this table's.
func TestRulesCompetingKeys(t *testing.T) {
	check := testpeer.Require(t, "tcprulescheck")
	rules := `joe@192.0.2.7:allow,WHO="info@ip"
joe@=mail.example.org:allow,WHO="info@host"
192.0.2.7:allow,WHO="ip"
=mail.example.org:allow,WHO="host"
192.0.2.:allow,WHO="prefix3"
192.0.:allow,WHO="prefix2"
=.mail.example.org:allow,WHO="suffix-long"
=.example.org:allow,WHO="suffix"
=:allow,WHO="named"
:allow,WHO="default"
`
	cdb := compileFile(t, rules)
	db, err := OpenCDB(cdb)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip, host, info string
		key            string
	}{
		{"192.0.2.7", "mail.example.org", "joe", "joe@192.0.2.7"},         // info@ip over everything
		{"192.0.2.8", "mail.example.org", "joe", "joe@=mail.example.org"}, // info@=host over ip, =host
		{"192.0.2.7", "mail.example.org", "ann", "192.0.2.7"},             // other info: exact ip over =host
		{"192.0.2.7", "mail.example.org", "", "192.0.2.7"},                // exact ip over =host, prefixes
		{"192.0.2.8", "mail.example.org", "", "=mail.example.org"},        // =host over prefixes, suffixes
		{"192.0.2.8", "a.mail.example.org", "", "192.0.2."},               // prefix over suffixes
		{"192.0.9.9", "a.mail.example.org", "", "192.0."},                 // shorter prefix still over suffixes
		{"198.51.100.1", "a.mail.example.org", "", "=.mail.example.org"},  // longest suffix first
		{"198.51.100.1", "other.example.org", "", "=.example.org"},        // suffix over "="
		{"198.51.100.1", "other.test", "", "="},                           // "=" over the default
		{"198.51.100.1", "", "", ""},                                      // no name: default
	} {
		d, err := Lookup(db, net.ParseIP(tc.ip), tc.host, tc.info)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Found || d.Key != tc.key {
			t.Errorf("%s %q %q: key %q, want %q", tc.ip, tc.host, tc.info, d.Key, tc.key)
		}
		c := exec.Command(check, cdb)
		c.Env = []string{"TCPREMOTEIP=" + tc.ip}
		if tc.host != "" {
			c.Env = append(c.Env, "TCPREMOTEHOST="+tc.host)
		}
		if tc.info != "" {
			c.Env = append(c.Env, "TCPREMOTEINFO="+tc.info)
		}
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("tcprulescheck: %v\n%s", err, out)
		}
		first, _, _ := strings.Cut(string(out), "\n")
		if want := "rule " + tc.key + ":"; first != want {
			t.Errorf("%s %q %q: tcprulescheck says %q, the table %q", tc.ip, tc.host, tc.info, first, want)
		}
	}
}
