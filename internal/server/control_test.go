package server

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// emfileOnce is a listener whose first Accept fails as accept(2) does
// with a full descriptor table.
type emfileOnce struct {
	net.Listener
	once sync.Once
}

func (l *emfileOnce) Accept() (net.Conn, error) {
	var err error
	l.once.Do(func() {
		err = &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	})
	if err != nil {
		return nil, err
	}
	return l.Listener.Accept()
}

// TestControlSocketRidesOutEMFILE: before, the control socket's own
// accept loop ended at the first accept error, and `tlsmail queue` got no
// answer until a restart.
func TestControlSocketRidesOutEMFILE(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, ControlSocket))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testpeer.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		serveControlOn(ctx, &emfileOnce{Listener: l}, func(_ context.Context, args []string) ControlReply {
			return ControlReply{OK: true, Text: "answered " + strings.Join(args, " ")}
		}, slog.New(slog.NewTextHandler(logs, nil)))
		close(done)
	}()
	defer func() { cancel(); <-done }()
	r, err := Control(dir, "flush")
	if err != nil || r.Text != "answered flush" {
		t.Fatalf("control after EMFILE: %+v %v", r, err)
	}
	if !strings.Contains(logs.String(), `msg="accept paused" listener=control`) {
		t.Errorf("the pause was not logged:\n%s", logs.String())
	}
}
