package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/tlsmail/tlsmail/internal/safeio"
	"github.com/tlsmail/tlsmail/internal/ucspi"
)

const rulesUsage = `usage: tlsmail rules <compile|check> ...

  compile TEXT CDB          build a tcprules cdb from rules text (- for stdin); the same bytes
                            Debian's tcprules writes, replaced atomically
  check CDB IP [HOST [INFO]]  show which rule sslserver would apply (like tcprulescheck)`

func runRules(env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.stdout, rulesUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "compile":
		if len(args) != 3 {
			fmt.Fprintln(env.stderr, "tlsmail rules compile: want TEXT CDB")
			return exitUsage
		}
		return rulesCompile(env, args[1], args[2])
	case "check":
		if len(args) < 3 || len(args) > 5 {
			fmt.Fprintln(env.stderr, "tlsmail rules check: want CDB IP [HOST [INFO]]")
			return exitUsage
		}
		return rulesCheck(env, args[1:])
	}
	fmt.Fprintf(env.stderr, "tlsmail rules: unknown subcommand %q (compile, check)\n", args[0])
	return exitUsage
}

func rulesCompile(env *cliEnv, textPath, cdbPath string) int {
	var in io.Reader = env.stdin
	name := "stdin"
	if textPath != "-" {
		f, err := os.Open(textPath)
		if err != nil {
			fmt.Fprintf(env.stderr, "tlsmail rules compile: %v\n", err)
			return exitFail
		}
		defer f.Close()
		in, name = f, textPath
	}
	keys, values, err := ucspi.CompileRules(in)
	var se *ucspi.RuleSyntaxError
	if errors.As(err, &se) {
		fmt.Fprintf(env.stderr, "tlsmail rules compile: %s:%d: %s: %q\n", name, se.Line, se.Why, se.Text)
		return 100
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "tlsmail rules compile: %s: %v\n", name, err)
		return exitFail
	}
	var buf bytes.Buffer
	if err := ucspi.WriteCDB(&buf, keys, values); err != nil {
		fmt.Fprintf(env.stderr, "tlsmail rules compile: %v\n", err)
		return exitFail
	}
	if err := safeio.WriteFile(cdbPath, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintf(env.stderr, "tlsmail rules compile: %v\n", err)
		return exitFail
	}
	return exitOK
}

func rulesCheck(env *cliEnv, args []string) int {
	db, err := ucspi.OpenCDB(args[0])
	if err != nil {
		fmt.Fprintf(env.stderr, "tlsmail rules check: %v\n", err)
		return exitFail
	}
	ip := net.ParseIP(args[1])
	if ip == nil {
		fmt.Fprintf(env.stderr, "tlsmail rules check: %q is not an IP address\n", args[1])
		return exitUsage
	}
	host, info := "", ""
	if len(args) > 2 {
		host = args[2]
	}
	if len(args) > 3 {
		info = args[3]
	}
	d, err := ucspi.Lookup(db, ip, host, info)
	if err != nil {
		fmt.Fprintf(env.stderr, "tlsmail rules check: %s: %v\n", args[0], err)
		return exitFail
	}
	if !d.Found {
		fmt.Fprintln(env.stdout, "default:\nallow connection")
		return exitOK
	}
	fmt.Fprintf(env.stdout, "rule %s:\n", d.Key)
	for _, kv := range d.Env {
		name, value, _ := strings.Cut(kv, "=")
		fmt.Fprintf(env.stdout, "set environment variable %s=%s\n", name, value)
	}
	if d.Deny {
		fmt.Fprintln(env.stdout, "deny connection")
	} else {
		fmt.Fprintln(env.stdout, "allow connection")
	}
	return exitOK
}
