package main

import (
	"fmt"
	"net"
	"os"

	"github.com/tlsmail/tlsmail/internal/ucspi"
)

// ucspiCmd prints sslserver's and sslclient's messages in UCSPI-SSL's
// shape ("sslserver: fatal: …") and returns their exit codes: 111 for a
// fatal error, 100 for a usage error.
type ucspiCmd struct {
	env   *cliEnv
	name  string
	usage string
}

// options handles a lone -h or --help (help; with other arguments -h is
// an option) and splits the rest; done means the command ends with code.
func (c ucspiCmd) options(args []string, withArg string) (opts [][2]string, rest []string, code int, done bool) {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(c.env.stdout, c.usage)
		return nil, nil, exitOK, true
	}
	opts, rest, err := getopt(args, withArg)
	if err != nil {
		return nil, nil, c.usageError("%v\n%s", err, c.usage), true
	}
	return opts, rest, 0, false
}

func (c ucspiCmd) fatal(format string, a ...any) int {
	fmt.Fprintf(c.env.stderr, c.name+": fatal: "+format+"\n", a...)
	return 111
}

func (c ucspiCmd) usageError(format string, a ...any) int {
	c.say(format, a...)
	return 100
}

// say prints a plain "sslserver: …" line.
func (c ucspiCmd) say(format string, a ...any) {
	fmt.Fprintf(c.env.stderr, c.name+": "+format+"\n", a...)
}

func (c ucspiCmd) unknownOption(opt string) int {
	return c.usageError("unknown option -%s\n%s", opt, c.usage)
}

func (c ucspiCmd) warn(format string, a ...any) {
	fmt.Fprintf(c.env.stderr, c.name+": warning: "+format+"\n", a...)
}

// keyPassword reads -3's password from descriptor 3, or -K's from a file.
func keyPassword(file string) ([]byte, error) {
	var f *os.File
	var err error
	if file != "" {
		f, err = os.Open(file)
	} else {
		f, err = ucspi.InheritedFile(3, "fd 3")
	}
	if err != nil {
		return nil, err
	}
	return readKeyPassword(f)
}

// checkInterface is -I's argument, which must name an interface.
func checkInterface(name string) error {
	if _, err := net.InterfaceByName(name); err != nil {
		return fmt.Errorf("-I %s: %w", name, err)
	}
	return nil
}
