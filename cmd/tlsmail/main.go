// Command tlsmail is the one tlsmail binary: the mail server, the
// submission client, the UCSPI-SSL wrappers and the certificate and probe
// tools. Invoked through a link named sslserver, sslclient or sendmail it
// behaves as that subcommand. This file only dispatches; each subcommand
// parses its flags and calls into the packages that do the work.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Exit codes shared by the subcommands.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// command is one subcommand.
type command struct {
	summary string
	run     func(env *cliEnv, args []string) int
}

// cliEnv is what a subcommand may touch: its streams and environment, so
// tests can run subcommands in-process.
type cliEnv struct {
	name   string // "tlsmail cert", used in messages
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

func commands() map[string]command {
	return map[string]command{
		"serve":     {"run the mail server (dev default on localhost with no config)", runServe},
		"send":      {"send a message over TLS (submission client)", runSend},
		"sendmail":  {"sendmail-compatible entry point", runSendmail},
		"cert":      {"inspect certificates, hash and rehash CA dirs, make a dev CA", runCert},
		"probe":     {"report a mail server's TLS posture", runProbe},
		"queue":     {"list, show, flush, delete and retry queued mail", runQueue},
		"status":    {"ask the running server: listeners, certificates' days left, queue, records", runStatus},
		"report":    {"what TLS each hop got: outbound by domain, inbound TLS mix, failures", runReport},
		"user":      {"manage the users file", runUser},
		"sslserver": {"UCSPI-SSL compatible TLS server wrapper", runSSLServer},
		"sslclient": {"UCSPI-SSL compatible TLS client wrapper", runSSLClient},
		"rules":     {"compile and check tcprules cdb files", runRules},
		"version":   {"print the version, commit, Go version and TLS groups", runVersion},
		"check":     {"check the configuration, certificates and users without starting", runCheck},
		"config":    {"print the effective configuration (--all: with defaults)", runConfig},
		"man":       {"write the manual pages (from this help text)", runMan},
		"dns":       {"print the DNS records to publish; --check compares them with DNS", runDNS},
		"dkim":      {"make a DKIM signing key and print its DNS record (dkim keygen)", runDKIM},
		"import":    {"write a tlsmail.toml from a Postfix or s/qmail configuration", runImport},
	}
}

// multiCall maps a program name (argv[0] of a link) to a subcommand.
var multiCall = map[string]string{"sslserver": "sslserver", "sslclient": "sslclient", "sendmail": "sendmail", "mailq": "sendmail", "newaliases": "sendmail"}

func main() {
	env := &cliEnv{name: "tlsmail", stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(env, os.Args))
}

// run dispatches argv (including argv[0]) and returns the exit code.
func run(env *cliEnv, argv []string) int {
	cmds := commands()
	if len(argv) > 0 {
		if sub, ok := multiCall[filepath.Base(argv[0])]; ok {
			env.name = filepath.Base(argv[0]) // "mailq" is sendmail -bp
			return cmds[sub].run(env, argv[1:])
		}
	}
	if len(argv) < 2 {
		usage(env.stderr, cmds)
		return exitUsage
	}
	name, args := argv[1], argv[2:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 0 {
			if c, ok := cmds[args[0]]; ok {
				env.name = "tlsmail " + args[0]
				return c.run(env, []string{"-h"})
			}
		}
		usage(env.stdout, cmds)
		return exitOK
	}
	c, ok := cmds[name]
	if !ok {
		fmt.Fprintf(env.stderr, "tlsmail: unknown command %q (run `tlsmail help` for the list)\n", name)
		return exitUsage
	}
	env.name = "tlsmail " + name
	return c.run(env, args)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: tlsmail <command> [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun `tlsmail <command> -h` for a command's flags.")
	fmt.Fprintln(w, "Linked as sslserver, sslclient or sendmail (or mailq: sendmail -bp), tlsmail behaves as that command.")
}

// newFlags makes a flag set whose errors are one line and whose -h prints
// usage to stdout.
func newFlags(env *cliEnv, argsHelp, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(env.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(env.stdout, "usage: %s [flags] %s\n", env.name, argsHelp)
		if about != "" {
			fmt.Fprintf(env.stdout, "\n%s\n", about)
		}
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(env.stdout, "\nflags:")
			fs.SetOutput(env.stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	return fs
}

// parse parses flags; done is true when the command should exit with code
// (after -h, or a bad flag reported in one line).
func parse(env *cliEnv, fs *flag.FlagSet, args []string) (code int, done bool) {
	// flag calls Usage on every error; print help only for -h, and a
	// one-line message otherwise.
	help := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = help
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return exitOK, true
	}
	fmt.Fprintf(env.stderr, "%s: %v (see `%s -h`)\n", env.name, err, env.name)
	return exitUsage, true
}

// parseInterspersed is parse for commands whose flags may come before or
// after their arguments ("user add alice --config F"); it returns the
// arguments in order.
func parseInterspersed(env *cliEnv, fs *flag.FlagSet, args []string) (pos []string, code int, done bool) {
	for {
		if code, done := parse(env, fs, args); done {
			return nil, code, true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, false
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// fail prints a one-line error and returns exitFail.
func fail(env *cliEnv, format string, a ...any) int {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintf(env.stderr, "%s: %s\n", env.name, strings.TrimSpace(msg))
	return exitFail
}

// configError prints a configuration problem (FILE:LINE: message) as one
// line and returns exitUsage, as `tlsmail check` does: the file is at
// fault, not the command line, so no "see -h" hint.
func configError(env *cliEnv, err error) int {
	fmt.Fprintf(env.stderr, "%s: %v\n", env.name, err)
	return exitUsage
}

// usageError prints a one-line usage error and returns exitUsage.
func usageError(env *cliEnv, format string, a ...any) int {
	fmt.Fprintf(env.stderr, "%s: %s (see `%s -h`)\n", env.name, fmt.Sprintf(format, a...), env.name)
	return exitUsage
}
