package main

import (
	"fmt"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/server"
)

// serverConfigFile is the server configuration a command reads: --config,
// else $TLSMAIL_CONFIG, else /etc/tlsmail/tlsmail.toml.
func serverConfigFile(env *cliEnv, flagValue string) string {
	switch {
	case flagValue != "":
		return flagValue
	case env.getenv("TLSMAIL_CONFIG") != "":
		return env.getenv("TLSMAIL_CONFIG")
	}
	return defaultServerConfig
}

func runCheck(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Load the configuration, certificates, keys, CA files and users as `serve`\n"+
		"would, without starting anything, and report every problem as FILE:LINE: message\n"+
		"(exit 2) and every warning (exit 0). Like `postfix check`.\n"+
		"The configuration is --config, else $TLSMAIL_CONFIG, else "+defaultServerConfig+".")
	cfgFile := fs.String("config", "", "configuration file (TOML)")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return usageError(env, "unexpected argument %q", fs.Arg(0))
	}
	file := serverConfigFile(env, *cfgFile)
	cfg, loadProblems := config.LoadAll(file)
	if len(loadProblems) > 0 {
		for _, p := range loadProblems {
			fmt.Fprintln(env.stderr, p)
		}
		n := len(loadProblems)
		fmt.Fprintf(env.stderr, "%s: %s: %d problem%s (the files it names are checked once these are fixed)\n", env.name, file, n, plural(n))
		return exitUsage
	}
	problems, warnings := server.Check(cfg)
	for _, w := range warnings {
		fmt.Fprintln(env.stderr, w)
	}
	for _, p := range problems {
		fmt.Fprintln(env.stderr, p)
	}
	if n := len(problems); n > 0 {
		fmt.Fprintf(env.stderr, "%s: %s: %d problem%s\n", env.name, file, n, plural(n))
		return exitUsage
	}
	fmt.Fprintf(env.stdout, "%s: OK (%d warning%s)\n", file, len(warnings), plural(len(warnings)))
	return exitOK
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
