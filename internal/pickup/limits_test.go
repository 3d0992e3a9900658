package pickup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenEnforcesLimitsBeforeTheServerHoldsTheEnvelope: an envelope line
// longer than MaxHeader(limit) is refused before it is parsed, and a
// parsed one with too many recipients or a NOTIFY that SMTP's RCPT would
// refuse is not a pickup file; a good one with lowercase NOTIFY passes
// (made uppercase).
func TestOpenEnforcesLimitsBeforeTheServerHoldsTheEnvelope(t *testing.T) {
	dir := t.TempDir()
	write := func(name, head string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(magic+head+"\nSubject: x\n\nbody\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := strings.Repeat("x", 1<<20)
	write("1.bignotify", `{"from":"a@example.org","rcpt":["b@example.org","c@example.org"],"notify":"`+big+`"}`)
	rcpts := make([]string, 11)
	for i := range rcpts {
		rcpts[i] = `"r@example.org"`
	}
	write("2.manyrcpts", `{"from":"a@example.org","rcpt":[`+strings.Join(rcpts, ",")+`]}`)
	write("3.badnotify", `{"from":"a@example.org","rcpt":["b@example.org"],"notify":"NEVER,SUCCESS"}`)
	write("4.nrcpt", `{"from":"a@example.org","rcpt":[]}`)
	write("5.good", `{"from":"a@example.org","rcpt":["b@example.org"],"notify":"success,delay"}`)
	for name, why := range map[string]string{"1.bignotify": "envelope line longer than", "2.manyrcpts": "too many recipients",
		"3.badnotify": "bad NOTIFY", "4.nrcpt": "no recipients"} {
		f, err := Open(dir, name, 10)
		if err == nil {
			f.Close()
		}
		if !errors.Is(err, ErrNotPickup) || !strings.Contains(err.Error(), why) {
			t.Errorf("Open(%s) = %v, want ErrNotPickup: %s", name, err, why)
		}
	}
	f, err := Open(dir, "5.good", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Notify != "SUCCESS,DELAY" {
		t.Errorf("Notify = %q", f.Notify)
	}
	if _, err := Submit(dir, Envelope{From: "a@x", Rcpts: []string{"b@x"}, Notify: "sometimes"}, nil, 10); err == nil {
		t.Error("Submit took a bad NOTIFY")
	}
	if _, err := Submit(dir, Envelope{From: "a@x", Rcpts: strings.Split(strings.Repeat("b@x ", 11), " ")[:11]}, nil, 10); err == nil {
		t.Error("Submit took 11 recipients with a limit of 10")
	}
	// A full envelope at the limit fits: 10 addresses of 512 octets.
	long := strings.Repeat("l", 500) + "@example.org"
	full := Envelope{From: long, Notify: "SUCCESS,FAILURE,DELAY"}
	for range 10 {
		full.Rcpts = append(full.Rcpts, long)
	}
	name, err := Submit(dir, full, []byte("x\n"), 10)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := Open(dir, name, 10); err != nil {
		t.Errorf("a full envelope within the limits: %v", err)
	} else {
		f.Close()
	}
}

func TestValidNotify(t *testing.T) {
	for n, want := range map[string]bool{"": true, "NEVER": true, "never": true, "SUCCESS,FAILURE,DELAY": true, "failure": true,
		"NEVER,FAILURE": false, "SUCCESS,": false, "ALWAYS": false, strings.Repeat("DELAY,", 1000) + "X": false} {
		if ValidNotify(n) != want {
			t.Errorf("ValidNotify(%.30q) = %v", n, !want)
		}
	}
}

func TestAuthorized(t *testing.T) {
	for _, c := range []struct {
		list []string
		name string
		uid  uint32
		want bool
	}{
		{nil, "www-data", 33, true},
		{[]string{"!www-data", "static:anyone"}, "www-data", 33, false},
		{[]string{"!www-data", "static:anyone"}, "alice", 1000, true},
		{[]string{"root", "alice"}, "alice", 1000, true},
		{[]string{"root", "alice"}, "bob", 1001, false},
		{[]string{"!www-data"}, "alice", 1000, false}, // no match: refused, as Postfix
		{[]string{"1000"}, "1000", 1000, true},
		{[]string{"*"}, "bob", 1001, true},
	} {
		if got := Authorized(c.list, c.name, c.uid); got != c.want {
			t.Errorf("Authorized(%q, %s) = %v", c.list, c.name, got)
		}
	}
}

func TestHeaderEnd(t *testing.T) {
	for msg, want := range map[string]int{"A: b\r\n\r\nbody": 6, "A: b\n\nbody": 5, "A: b\nC: d\n": -1, "\nbody": 0, "": -1} {
		if got := HeaderEnd([]byte(msg)); got != want {
			t.Errorf("HeaderEnd(%q) = %d, want %d", msg, got, want)
		}
	}
}
