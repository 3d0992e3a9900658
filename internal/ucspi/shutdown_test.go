package ucspi

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// At shutdown the listener closes at once, and a running connection goes
// on until it ends by itself (well within the grace).
func TestShutdownLetsRunningConnectionsFinish(t *testing.T) {
	f := newServerFixture(t)
	addr, _, log, stop, served := f.startStoppable(t, ServerOptions{MaxChildren: 1, Prog: []string{"cat"}, ShutdownGrace: time.Minute})
	c, err := f.dial(addr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo := func(s string) {
		t.Helper()
		if _, err := io.WriteString(c, s); err != nil {
			t.Fatal(err)
		}
		if got, err := readLine(c); got != s {
			t.Fatalf("echo %q: %q %v\n%s", s, got, err, log)
		}
	}
	echo("before\n")
	stop()
	waitFor(t, "the listener to close", log, func() bool {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			nc.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	echo("during shutdown\n")
	select {
	case <-served:
		t.Fatal("Serve returned while a connection was still running")
	default:
	}
	c.Close()
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatalf("Serve did not return after the last connection ended:\n%s", log)
	}
	if strings.Contains(log.String(), "shutting down") {
		t.Errorf("a connection that ended by itself was cut:\n%s", log)
	}
}

// A connection that does not end within the grace has its program
// terminated; Serve returns even while it waits at the -c limit.
func TestShutdownEndsConnectionsAfterGrace(t *testing.T) {
	f := newServerFixture(t)
	addr, _, log, stop, served := f.startStoppable(t, ServerOptions{MaxChildren: 1, Prog: holdProgram, ShutdownGrace: 300 * time.Millisecond})
	c, err := f.dial(addr, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if l, err := readLine(c); l != "hi\n" {
		t.Fatalf("greeting %q %v", l, err)
	}
	stop()
	select {
	case <-served:
	case <-time.After(20 * time.Second):
		t.Fatalf("Serve did not return after the grace:\n%s", log)
	}
	if !strings.Contains(log.String(), "warning: shutting down: ending 1 connections still running after 300ms") {
		t.Errorf("no shutdown warning:\n%s", log)
	}
	// The program got SIGTERM, so the connection ends.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(c); err != nil && isTimeout(err) {
		t.Fatalf("the connection outlived the shutdown: %v\n%s", err, log)
	}
	waitFor(t, "the program's end", log, func() bool { return strings.Contains(log.String(), "status 15") })
}
