package pickup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSubmitOpenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	msg := []byte("Subject: x\n\nbody\n")
	name, err := Submit(dir, Envelope{From: "a@example.org", Rcpts: []string{"b@example.org", "c@localhost"}, Notify: "NEVER"}, msg, 0)
	if err != nil {
		t.Fatal(err)
	}
	names, err := Names(dir)
	if err != nil || len(names) != 1 || names[0] != name {
		t.Fatalf("Names = %v %v, want [%s]", names, err, name)
	}
	f, err := Open(dir, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(f.Message()); err != nil {
		t.Fatal(err)
	}
	if f.From != "a@example.org" || strings.Join(f.Rcpts, " ") != "b@example.org c@localhost" || f.Notify != "NEVER" ||
		f.UID != uint32(os.Getuid()) || f.Size != int64(len(msg)) || !bytes.Equal(got.Bytes(), msg) {
		t.Errorf("read back %+v %q", f.Entry, got.String())
	}
	if _, err := Submit(dir, Envelope{From: "a@example.org"}, msg, 0); err == nil {
		t.Error("a submission without recipients was accepted")
	}
	if _, err := Submit(dir, Envelope{From: "a@example.org\r\nRCPT TO:<x@y>", Rcpts: []string{"b@c"}}, msg, 0); err == nil {
		t.Error("an address with CRLF was accepted")
	}
}

// TestOpenRefusesWhatAUserCouldPlantForTheServer: the server reads the
// drop with its own rights, so a symlink or hard link to a file the user
// cannot read, or a FIFO that would block it, must never be taken.
func TestOpenRefusesWhatAUserCouldPlantForTheServer(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte(magic+`{"from":"","rcpt":["thief@example.org"]}`+"\nsecret\n"), 0o600)
	if err := os.Symlink(secret, filepath.Join(dir, "1.symlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(secret, filepath.Join(dir, "2.hardlink")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "3.fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "4.garbage"), []byte("From: x\n\nnot a pickup file\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".5.tmp123"), []byte("half written"), 0o644)
	names, _ := Names(dir)
	if strings.Join(names, " ") != "1.symlink 2.hardlink 3.fifo 4.garbage" {
		t.Errorf("Names = %v (temporary dot files must be skipped)", names)
	}
	for _, n := range names {
		f, err := Open(dir, n, 0)
		if !errors.Is(err, ErrNotPickup) {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%s) = %v, want ErrNotPickup", n, err)
		}
	}
	if _, err := Open(dir, "../x", 0); !errors.Is(err, ErrNotPickup) {
		t.Errorf("Open(../x) = %v", err)
	}
}

func TestCRLF(t *testing.T) {
	long := strings.Repeat("x", 200000)
	for in, want := range map[string]string{
		"a\nb\r\nc":        "a\r\nb\r\nc\r\n",
		"":                 "",
		"a\r\r\nb\n":       "a\r\nb\r\n",
		long + "\n" + long: long + "\r\n" + long + "\r\n",
	} {
		var b bytes.Buffer
		n, err := CRLF(&b, strings.NewReader(in))
		if err != nil || b.String() != want || n != int64(len(want)) {
			t.Errorf("CRLF(%.20q) = %.20q (%d, %v), want %.20q", in, b.String(), n, err, want)
		}
	}
}
