package ucspi

import (
	"os/exec"
	"slices"
	"testing"
)

// TestProgramEnvironmentAsExecMakesIt: the program's environment is what
// exec.Cmd made of this process's environment followed by the
// connection's variables (the last value of a name wins, in the order of
// the last occurrences), so starting programs without os/exec changed no
// program's environment.
func TestProgramEnvironmentAsExecMakesIt(t *testing.T) {
	base := []string{"PATH=/bin", "HOME=/root", "TCPREMOTEIP=stale", "LANG=C", "HOME=/home/x", "=odd", "bogus", "A=1"}
	cases := [][]string{
		nil,
		{"PROTO=TCP", "TCPREMOTEIP=127.0.0.1", "SSLREMOTEIP=127.0.0.1"},
		{"RELAYCLIENT=", "HOME=/rules", "PROTO=TCP", "RELAYCLIENT=x", "A=2", "B=3", "A=4"},
		{"lone", "=x=y", "PATH="},
	}
	// More variables than the small-set path handles (-s adds dozens).
	var many []string
	for i := range 60 {
		many = append(many, "SSL_VAR"+string(rune('A'+i%26))+string(rune('a'+i/26))+"=v")
	}
	cases = append(cases, append(many, "HOME=/many", "SSL_VARAa=last"))
	b := newBaseEnv(base)
	for _, extra := range cases {
		want := (&exec.Cmd{Env: append(slices.Clip(base), extra...)}).Environ()
		got, err := b.with(extra)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("extra %q:\n got %q\nwant %q", extra, got, want)
		}
	}
	if _, err := b.with([]string{"X=a\x00b"}); err == nil {
		t.Error("a NUL in a variable was accepted")
	}
}
