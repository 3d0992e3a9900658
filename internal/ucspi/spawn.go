package ucspi

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Starting a program is most of sslserver's per-connection work outside
// the handshake, so it skips os/exec: the program's descriptors are raw
// ones (its pipe ends never become *os.File), its environment is
// sslserver's own, deduplicated once at start, plus the connection's
// variables (an exec.Cmd deduplicates all of it through a map on every
// start), and the process is waited for on the pidfd clone(2) returns
// (an exec.Cmd keeps that one to itself, so a second had to be opened
// with pidfd_open).

// baseEnv is sslserver's environment, deduplicated as os/exec does it
// (the last value of a name wins), read once.
type baseEnv struct {
	vars  []string
	index map[string]int // name → position in vars
}

func newBaseEnv(env []string) *baseEnv {
	vars, _ := dedupEnv(env)
	b := &baseEnv{vars: vars, index: make(map[string]int, len(vars))}
	for i, kv := range vars {
		if k, ok := envKey(kv); ok {
			b.index[k] = i
		}
	}
	return b
}

// with is the environment of a program: the base with extra added, each
// name once, its last value winning: what exec.Cmd makes of
// append(base, extra...), in the same order.
func (b *baseEnv) with(extra []string) ([]string, error) {
	extra, err := dedupEnv(extra)
	if err != nil {
		return nil, err
	}
	var drop []bool
	for _, kv := range extra {
		k, ok := envKey(kv)
		if !ok {
			continue
		}
		if i, found := b.index[k]; found {
			if drop == nil {
				drop = make([]bool, len(b.vars))
			}
			drop[i] = true
		}
	}
	out := make([]string, 0, len(b.vars)+len(extra))
	for i, kv := range b.vars {
		if drop == nil || !drop[i] {
			out = append(out, kv)
		}
	}
	return append(out, extra...), nil
}

// dedupEnv is os/exec's: the last occurrence of each name is kept, in
// the order of those last occurrences; an entry with a NUL is an error.
// The connection's variables are few, so no map.
func dedupEnv(env []string) ([]string, error) {
	out := make([]string, 0, len(env))
	var seen map[string]bool
	if len(env) > 32 {
		seen = make(map[string]bool, len(env))
	}
	var keys []string
	for n := len(env); n > 0; n-- {
		kv := env[n-1]
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, errors.New("exec: environment variable contains NUL")
		}
		k, ok := envKey(kv)
		if !ok {
			if kv != "" {
				out = append(out, kv)
			}
			continue
		}
		if seen != nil {
			if seen[k] {
				continue
			}
			seen[k] = true
		} else {
			dup := false
			for _, s := range keys {
				if s == k {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
			keys = append(keys, k)
		}
		out = append(out, kv)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// envKey is the name of NAME=value as os/exec sees it (a leading '=' is
// part of the name); ok is false for an entry without '='.
func envKey(kv string) (string, bool) {
	i := strings.Index(kv, "=")
	if i == 0 {
		i = strings.Index(kv[1:], "=") + 1
	}
	if i < 0 {
		return "", false
	}
	return kv[:i], true
}

// program is a started program.
type program struct {
	pid   int
	pidfd *os.File // from clone(CLONE_PIDFD), in Go's poller; nil without pidfds

	mu     sync.Mutex // reaped and pidfd's closing, against signal
	reaped bool
}

// pidfdsWork reports whether this kernel gives pidfds (Linux 5.3).
var pidfdsWork = sync.OnceValue(func() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// startProgram runs argv (a name without a slash searched in $PATH, as
// exec.Command does) with env and the descriptors files as its 0, 1, 2,
// ....
func startProgram(argv, env []string, files []uintptr) (*program, error) {
	path := argv[0]
	if !strings.Contains(path, "/") {
		lp, err := exec.LookPath(path)
		if err != nil {
			return nil, err
		}
		path = lp
	}
	pidfd := -1
	sys := &syscall.SysProcAttr{}
	if pidfdsWork() {
		sys.PidFD = &pidfd
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: files, Sys: sys})
	if err != nil {
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	p := &program{pid: pid}
	if pidfd >= 0 {
		// Non-blocking, so that os.NewFile puts it in Go's poller: a
		// wait then holds no OS thread.
		if _, err := unix.FcntlInt(uintptr(pidfd), unix.F_SETFL, unix.O_NONBLOCK); err == nil {
			p.pidfd = os.NewFile(uintptr(pidfd), "pidfd")
		} else {
			unix.Close(pidfd)
		}
	}
	return p, nil
}

// signal sends sig unless the program has been reaped.
func (p *program) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return
	}
	if p.pidfd != nil {
		_ = onFD(p.pidfd, func(fd int) error { return unix.PidfdSendSignal(fd, sig, nil, 0) })
		return
	}
	_ = syscall.Kill(p.pid, sig)
}

// awaitExit waits until the program has exited (without reaping it), or
// for at most limit if limit > 0, and reports whether it exited. Without
// a pidfd it reports limit <= 0 at once.
func (p *program) awaitExit(limit time.Duration) bool {
	if p.pidfd == nil {
		return limit <= 0
	}
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return limit <= 0
	}
	if limit > 0 {
		_ = p.pidfd.SetReadDeadline(time.Now().Add(limit))
		defer func() { _ = p.pidfd.SetReadDeadline(time.Time{}) }()
	}
	exited := false
	// The callback checks the real state first, so an exit before the
	// poller saw the pidfd is not missed; then the pidfd becoming
	// readable means the program ended.
	_ = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		exited = err != nil || info.Signo != 0
		return exited
	})
	return exited || limit <= 0
}

// wait waits for the program to exit, reaps it and returns its raw wait
// status (sslserver's "end PID status WSTAT"). Call it once.
func (p *program) wait() syscall.WaitStatus {
	if p.pidfd != nil {
		p.awaitExit(0)
	} else {
		// No pidfd: wait for the exit without reaping, so signal can
		// still reach the program meanwhile.
		var info unix.Siginfo
		for unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil) == unix.EINTR {
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(p.pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	p.reaped = true
	if p.pidfd != nil {
		p.pidfd.Close()
	}
	return ws
}
