package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/server"
)

// devServerConfig is the configuration the dev default writes on its first
// start, relative to where `tlsmail serve` ran.
const devServerConfig = "tlsmail-data/tlsmail.toml"

// serverConfigFile is the server configuration a command reads: --config,
// else $TLSMAIL_CONFIG, else the dev default's tlsmail-data/tlsmail.toml
// when there is one here, else /etc/tlsmail/tlsmail.toml. Every command
// that reads the server's configuration or files finds it the same way.
func serverConfigFile(env *cliEnv, flagValue string) string {
	switch {
	case flagValue != "":
		return flagValue
	case env.getenv("TLSMAIL_CONFIG") != "":
		return env.getenv("TLSMAIL_CONFIG")
	}
	if _, err := os.Stat(devServerConfig); err == nil {
		return devServerConfig
	}
	return defaultServerConfig
}

// serverFiles is the data directory (and the configuration, when one was
// found) of the commands that work on the server's files — user, queue,
// report: an explicit --data names a dev data directory; otherwise the
// configuration serverConfigFile finds; with none at all, the dev default
// directory dataFlag.
func serverFiles(env *cliEnv, fs *flag.FlagSet, cfgFlag, dataFlag string) (string, *config.Config, error) {
	dataSet := false
	fs.Visit(func(f *flag.Flag) { dataSet = dataSet || f.Name == "data" })
	if cfgFlag == "" && dataSet {
		return dataFlag, nil, nil
	}
	file := serverConfigFile(env, cfgFlag)
	if cfgFlag == "" && env.getenv("TLSMAIL_CONFIG") == "" {
		if _, err := os.Stat(file); err != nil {
			return dataFlag, nil, nil
		}
	}
	c, err := config.Load(file)
	if err != nil {
		return "", nil, err
	}
	return c.DataDir, c, nil
}

func runCheck(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Load the configuration, certificates, keys, CA files and users as `serve`\n"+
		"would, without starting anything, and report every problem as FILE:LINE: message\n"+
		"(exit 2) and every warning (exit 0). Like `postfix check`.\n"+
		"The configuration is --config, else $TLSMAIL_CONFIG, else "+devServerConfig+" (the dev\n"+
		"default's) when it exists here, else "+defaultServerConfig+".")
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
		if _, err := os.Stat(file); err != nil {
			fmt.Fprintf(env.stderr, "%s: %s: cannot read the configuration\n", env.name, file)
			return exitUsage
		}
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
