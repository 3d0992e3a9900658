// Package pipe is the pipe delivery agent: it runs a command for a local
// recipient, as Postfix's local(8) does for a "|command" alias and pipe(8)
// for a transport, and qmail for a .qmail "|command" line. The message
// goes to the command's standard input with a Return-Path and a
// Delivered-To header in front (as Maildir delivery writes them), LF line
// ends; the envelope goes into environment variables (see Env). Nothing
// of tlsmail's own environment is passed on.
//
// The command line is run the way Postfix's local(8) runs one: without a
// shell, split on white space, when it has no shell metacharacters
// (Metachars); with "/bin/sh -c command" when it has, so pipes,
// redirections and quoting work as the admin wrote them. The command
// comes only from the configuration (an alias target or a [delivery]
// entry), never from an address a client gave.
//
// The exit status decides, as sysexits.h says and Postfix does: 0 is
// delivered; 75 (EX_TEMPFAIL) and 71 (EX_OSERR, Postfix's "system
// resource problem") are tried again later; the other sysexits codes
// 64–78 fail for good with their enhanced status (67 EX_NOUSER → 5.1.1,
// 77 EX_NOPERM → 5.7.1, …); any other status fails for good with 5.3.0
// (Postfix: "Command died with status N"). A command killed by a signal,
// or still running at the time limit (its whole process group is killed),
// is tried again later. The public text of a failure is the status's
// own words ("user unknown", "command died with status 1"); the first
// line of what the command wrote (stdout and stderr together, bounded,
// control characters taken out) is the status's internal Detail: the log
// and `tlsmail queue` show it, a bounce never does (a command's output
// names paths and files, relative ones too).
//
// At most once, and the window where it cannot hold: the queue records a
// recipient as delivered right after Deliver returns (the message file is
// removed or the state file written at once). A command that has exited 0
// has done its work; if tlsmail is killed between that exit and the
// queue's record, the retry after the restart runs the command again and
// whatever it does happens twice (procmail stores a second copy, a list
// sends twice). The window is the time from the command's exit to the
// record — microseconds to milliseconds. A command has no way to be asked
// "did you do this already", so the alternative would be to risk losing
// mail; Postfix's pipe(8) and local(8) have the same window. A kill while
// the command runs kills the command too only if the process group goes
// with tlsmail (systemd's KillMode=control-group does); the retry runs
// it again either way. A shutdown (Deliver's context cancelled) kills the
// running commands' process groups and leaves their recipients to the
// retry.
package pipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// DefaultTimeout is how long a command may run (Postfix's
// command_time_limit).
const DefaultTimeout = time.Hour

// Metachars are the characters that make a command run through
// "/bin/sh -c" (Postfix local(8)'s list, with # and newline).
const Metachars = "\"'`\\$;&()|<>*?[]~{}#\n"

// maxOutput bounds what is kept of the command's output; more is read and
// thrown away so the command never blocks on a full pipe.
const maxOutput = 4096

// maxDiag bounds the command's line kept in the status's Detail.
const maxDiag = 200

// Agent runs one command for the recipients given to Deliver.
type Agent struct {
	// Command is the command line from the configuration.
	Command string
	// Timeout kills the command's process group after this long; zero
	// means DefaultTimeout.
	Timeout time.Duration
	// Credential, if set, is the user the command runs as (only root
	// can switch). Nil runs it as tlsmail's own user, which must not be
	// root: Deliver refuses that.
	Credential *syscall.Credential
	// Dir is the working directory ("" = "/").
	Dir string
	// Hostname is this server's name (qmail's HOST fallback).
	Hostname string
}

// ErrRoot is why a command is not run as root.
var ErrRoot = errors.New("tlsmail runs as root and no user is configured for commands: refusing to run a pipe command as root (set `user`, or [pipe] user)")

// Argv is how Command is run: split on white space, or /bin/sh -c.
func (a *Agent) Argv() []string {
	if strings.ContainsAny(a.Command, Metachars) {
		return []string{"/bin/sh", "-c", a.Command}
	}
	return strings.Fields(a.Command)
}

// Deliver runs the command once for each recipient (each gets its own
// Delivered-To and environment, as local(8) does).
func (a *Agent) Deliver(ctx context.Context, env *queue.Envelope, rcpts []int, open func() (io.ReadCloser, error)) []queue.Outcome {
	out := make([]queue.Outcome, 0, len(rcpts))
	for _, i := range rcpts {
		o := a.deliverOne(ctx, env, i, open)
		o.Rcpt = i
		out = append(out, o)
	}
	return out
}

func (a *Agent) deliverOne(ctx context.Context, env *queue.Envelope, i int, open func() (io.ReadCloser, error)) queue.Outcome {
	argv := a.Argv()
	if len(argv) == 0 {
		return queue.Outcome{Status: dstatus.Perm("5.3.5", "local configuration error: pipe command is empty")}
	}
	if a.Credential == nil && os.Geteuid() == 0 {
		return queue.Outcome{Status: dstatus.Temp("4.3.5", "local configuration error: pipe commands do not run as root").WithDetail(ErrRoot.Error())}
	}
	rc, err := open()
	if err != nil {
		return queue.Outcome{Status: dstatus.Temp("4.3.0", "cannot read the queued message").WithDetail(err.Error())}
	}
	defer rc.Close()
	r := env.Recipients[i]
	head := fmt.Sprintf("Return-Path: <%s>\nDelivered-To: %s\n", clean(env.From), clean(r.Addr))
	stdin := io.MultiReader(strings.NewReader(head), maildir.LFReader(rc))

	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = Env(env, r, a.Hostname)
	cmd.Dir = a.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: a.Credential}
	var output limitedBuffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	// A daemon the command left behind with our stdout open must not
	// hold the delivery: Wait gives up on the pipes this long after the
	// command exits.
	cmd.WaitDelay = 10 * time.Second
	pw, err := cmd.StdinPipe()
	if err != nil {
		return queue.Outcome{Status: dstatus.Temp("4.3.0", "cannot run the pipe command").WithDetail(err.Error())}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		pw.Close()
		return queue.Outcome{Status: dstatus.Temp("4.3.0", "cannot run the pipe command").WithDetail(err.Error())}
	}
	// Feed stdin from a goroutine: a command that exits without reading
	// everything gets EPIPE, which is its business (Postfix ignores it too).
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(pw, stdin)
		pw.Close()
	}()
	defer func() { <-copied }() // Wait closed pw: the copy ends
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var werr error
	timedOut, cancelled := false, false
	select {
	case werr = <-done:
	case <-timer.C:
		timedOut = true
	case <-ctx.Done():
		cancelled = true
	}
	if timedOut || cancelled {
		// The whole group: a shell's children too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		werr = <-done
	}
	attrs := []any{"command_pid", cmd.Process.Pid, "elapsed", time.Since(start).Round(time.Millisecond)}
	line := firstLine(output.Bytes())
	switch {
	case timedOut:
		return queue.Outcome{Status: dstatus.Temp("4.3.0", "command time limit exceeded").WithDetail(line), Attrs: attrs}
	case cancelled:
		return queue.Outcome{Status: dstatus.Temp("4.3.0", "delivery interrupted (shutdown)").WithDetail(line), Attrs: attrs}
	}
	return outcome(cmd.ProcessState, werr, line, attrs)
}

// outcome turns the command's end into the recipient's result. The
// command's output (line) is Detail: what a command prints may name its
// files, the configuration's or a user's, so it never reaches a bounce.
func outcome(ps *os.ProcessState, werr error, line string, attrs []any) queue.Outcome {
	if ps == nil {
		detail := werr.Error()
		if line != "" {
			detail += "; output: " + line
		}
		return queue.Outcome{Status: dstatus.Temp("4.3.0", "pipe command failed").WithDetail(detail), Attrs: attrs}
	}
	if ps.Success() { // werr may be exec.ErrWaitDelay: the command is done all the same
		return queue.Outcome{Delivered: true, Status: dstatus.Delivered("delivered to command").WithDetail(line), Attrs: attrs}
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return queue.Outcome{Status: dstatus.Temp("4.3.0", fmt.Sprintf("command died with signal %d", ws.Signal())).WithDetail(line), Attrs: attrs}
	}
	code := ws.ExitStatus()
	attrs = append(attrs, "exit", code)
	if e, ok := sysexits[code]; ok {
		st := dstatus.Perm(e.status, e.text)
		if e.status[0] == '4' {
			st = dstatus.Temp(e.status, e.text)
		}
		return queue.Outcome{Status: st.WithDetail(line), Attrs: attrs}
	}
	return queue.Outcome{Status: dstatus.Perm("5.3.0", fmt.Sprintf("command died with status %d", code)).WithDetail(line), Attrs: attrs}
}

type sysexit struct{ status, text string }

// sysexits maps sysexits.h codes to enhanced status codes (Postfix's
// sys_exits.c, with EX_NOPERM as 5.7.1).
var sysexits = map[int]sysexit{
	64: {"5.3.0", "command line usage error"},
	65: {"5.6.0", "data format error"},
	66: {"5.3.0", "cannot open input"},
	67: {"5.1.1", "user unknown"},
	68: {"5.1.2", "host name unknown"},
	69: {"5.3.0", "service unavailable"},
	70: {"5.3.0", "internal software error"},
	71: {"4.3.0", "system resource problem"},
	72: {"5.3.0", "critical OS file missing"},
	73: {"5.2.0", "can't create user output file"},
	74: {"5.3.0", "input/output error"},
	75: {"4.3.0", "temporary failure"},
	76: {"5.5.0", "remote error in protocol"},
	77: {"5.7.1", "permission denied"},
	78: {"5.3.5", "local configuration error"},
}

// Env is the command's environment: Postfix local(8)'s variables
// (SENDER, RECIPIENT, USER, EXTENSION, DOMAIN, LOCAL, ORIGINAL_RECIPIENT,
// HOME, LOGNAME, SHELL, PATH) and qmail's (HOST, EXT, RPLINE, DTLINE;
// SENDER, RECIPIENT and LOCAL are shared). Values have control
// characters replaced by "_". USER is the local part without its
// "+extension"; for a mailbox user it is the user name.
// ORIGINAL_RECIPIENT is the ORCPT the client gave, else RECIPIENT (the
// queue keeps no address from before alias expansion).
func Env(env *queue.Envelope, r queue.Recipient, hostname string) []string {
	local, domain := r.Addr, hostname
	if at := strings.LastIndexByte(r.Addr, '@'); at >= 0 {
		local, domain = r.Addr[:at], r.Addr[at+1:]
	}
	user, ext, _ := strings.Cut(local, "+")
	if r.Local != "" && !strings.HasPrefix(r.Local, "|") {
		user = r.Local
	}
	orig := r.ORcpt // "rfc822;addr" in xtext, as the client gave it
	if _, a, ok := strings.Cut(orig, ";"); ok {
		orig = a
	}
	if d, err := smtpwire.DecodeXtext(orig); err == nil {
		orig = d
	}
	if orig == "" {
		orig = r.Addr
	}
	vars := [][2]string{
		{"PATH", "/usr/local/bin:/usr/bin:/bin"},
		{"SHELL", "/bin/sh"},
		{"HOME", "/"},
		{"LOGNAME", strings.ToLower(user)},
		{"USER", strings.ToLower(user)},
		{"SENDER", env.From},
		{"RECIPIENT", r.Addr},
		{"ORIGINAL_RECIPIENT", orig},
		{"LOCAL", local},
		{"EXTENSION", ext},
		{"EXT", ext},
		{"DOMAIN", domain},
		{"HOST", domain},
		{"RPLINE", "Return-Path: <" + env.From + ">\n"},
		{"DTLINE", "Delivered-To: " + r.Addr + "\n"},
	}
	out := make([]string, len(vars))
	for i, v := range vars {
		val := v[1]
		if v[0] != "RPLINE" && v[0] != "DTLINE" {
			val = clean(val)
		} else {
			val = clean(strings.TrimSuffix(val, "\n")) + "\n"
		}
		out[i] = v[0] + "=" + val
	}
	return out
}

// clean replaces control characters (and NUL, which exec refuses).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// firstLine is the first non-empty line of the output, printable ASCII
// only, bounded.
func firstLine(b []byte) string {
	for _, l := range bytes.Split(b, []byte("\n")) {
		s := strings.TrimSpace(strings.Map(func(r rune) rune {
			if r < 0x20 || r >= 0x7f {
				if r == '\t' {
					return ' '
				}
				return -1
			}
			return r
		}, string(l)))
		if s != "" {
			if len(s) > maxDiag {
				s = s[:maxDiag] + "..."
			}
			return s
		}
	}
	return ""
}

// limitedBuffer keeps the first maxOutput bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - l.Len(); room > 0 {
		l.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
