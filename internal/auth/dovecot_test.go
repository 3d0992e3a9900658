package auth_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/testpeer"
)

func TestDovecotChecksPasswordsWithARealDovecot(t *testing.T) {
	dc := testpeer.StartDovecot(t, map[string]testpeer.DovecotUser{"alice": {Password: "right-password"}})
	ctx := context.Background()
	for _, b := range []*auth.Dovecot{
		{Network: "unix", Address: dc.Auth},
		{Network: "tcp", Address: dc.AuthAddr},
	} {
		t.Run(b.Network, func(t *testing.T) {
			cred := auth.Credentials{User: "alice", Password: "right-password", Service: "smtp",
				LocalIP: "192.0.2.1", RemoteIP: "192.0.2.7", Secured: true}
			user, err := b.Check(ctx, cred)
			if err != nil || user != "alice" {
				t.Fatalf("right password: user %q, err %v", user, err)
			}
			wrong := cred
			wrong.Password = "wrong-password"
			if _, err := b.Check(ctx, wrong); !errors.Is(err, auth.ErrInvalid) {
				t.Fatalf("wrong password: err %v, want ErrInvalid", err)
			}
			unknown := cred
			unknown.User = "mallory"
			if _, err := b.Check(ctx, unknown); !errors.Is(err, auth.ErrInvalid) {
				t.Fatalf("unknown user: err %v, want ErrInvalid", err)
			}
		})
	}
	// Dovecot's passdb cannot answer: FAIL with "temp" is a temporary
	// error, not a wrong password.
	_, err := (&auth.Dovecot{Network: "unix", Address: dc.Auth}).Check(ctx, auth.Credentials{User: "tempfail", Password: "any-password", Service: "smtp", Secured: true})
	if err == nil || errors.Is(err, auth.ErrInvalid) || !strings.Contains(err.Error(), "temporary failure") {
		t.Fatalf("passdb failing: err %v, want Dovecot's temporary failure", err)
	}
	if strings.Contains(dc.Log(), "right-password") {
		t.Fatal("the password reached Dovecot's log")
	}
	// Dovecot stopped: a temporary error, never ErrInvalid.
	dc.Proc.Stop()
	_, err = (&auth.Dovecot{Network: "unix", Address: dc.Auth}).Check(ctx, auth.Credentials{User: "alice", Password: "right-password", Service: "smtp", Secured: true})
	if err == nil || errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("Dovecot stopped: err %v, want a temporary error", err)
	}
}

// A server that accepts and never answers costs the check its timeout, not
// the session's lifetime.
func TestDovecotTimesOut(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "auth")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	d := &auth.Dovecot{Network: "unix", Address: sock, Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, err = d.Check(context.Background(), auth.Credentials{User: "alice", Password: "pw"})
	if err == nil || errors.Is(err, auth.ErrInvalid) {
		t.Fatalf("err %v, want a temporary error", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestParseDovecot(t *testing.T) {
	for in, want := range map[string]string{
		"/run/dovecot/auth-client":      "dovecot:unix:/run/dovecot/auth-client",
		"unix:/run/dovecot/auth-client": "dovecot:unix:/run/dovecot/auth-client",
		"inet:127.0.0.1:12345":          "dovecot:tcp:127.0.0.1:12345",
	} {
		d, err := auth.ParseDovecot(in)
		if err != nil || d.String() != want {
			t.Errorf("%q: %v %v, want %s", in, d, err, want)
		}
	}
	for _, in := range []string{"run/auth", "inet:localhost", "", "inet:192.0.2.1:12345", "inet:auth.example.org:12345"} {
		if _, err := auth.ParseDovecot(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
