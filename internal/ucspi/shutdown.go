package ucspi

import (
	"syscall"
	"time"
)

// fehcom's sslserver exits at SIGTERM while each connection's own
// process goes on to the end of its session. Here the connections live in
// this process, so it stays while they finish, for ShutdownGrace (the
// listener is closed, so a restarted sslserver can bind at once), and
// then ends the rest as their TLS handlers would at a connection's end:
// SIGTERM to the program.

// started records a running program, for drain.
func (s *Server) started(cmd *program) {
	s.mu.Lock()
	s.programs[cmd] = struct{}{}
	s.mu.Unlock()
}

// ended forgets a program that has been waited for and logs UCSPI-SSL's
// "end PID status WSTAT" (the raw wait status).
func (s *Server) ended(cmd *program, status syscall.WaitStatus) {
	s.mu.Lock()
	delete(s.programs, cmd)
	s.mu.Unlock()
	s.logf(2, "end %d status %d", cmd.pid, int(status))
}

// drain waits until no connection is active or ShutdownGrace has passed,
// then sends SIGTERM to the programs still running.
func (s *Server) drain() {
	over := false
	timer := time.AfterFunc(s.o.ShutdownGrace, func() {
		s.mu.Lock()
		over = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	for s.active > 0 && !over {
		s.cond.Wait()
	}
	active := s.active
	var programs []*program
	for p := range s.programs {
		programs = append(programs, p)
	}
	s.mu.Unlock()
	if active > 0 {
		s.logf(1, "warning: shutting down: ending %d connections still running after %v", active, s.o.ShutdownGrace)
	}
	for _, p := range programs {
		p.signal(syscall.SIGTERM)
	}
}
