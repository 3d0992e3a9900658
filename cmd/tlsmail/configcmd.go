package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
)

// hasShownChild reports whether a setting below key (key.x) was printed.
func hasShownChild(shown map[string]bool, key string) bool {
	for k := range shown {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

func runConfig(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Print the effective configuration as TOML: the settings that differ from the\n"+
		"built-in defaults (like `postconf -n`), or with --all every setting, defaults\n"+
		"marked \"# default\". The configuration is --config, else $TLSMAIL_CONFIG, else\n"+
		defaultServerConfig+"; --dev shows the dev default of `tlsmail serve`.")
	cfgFile := fs.String("config", "", "configuration file (TOML)")
	all := fs.Bool("all", false, "also print the settings left at their defaults, marked")
	dev := fs.String("dev", "", "show the dev default for this data directory instead of a file")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return usageError(env, "unexpected argument %q", fs.Arg(0))
	}
	var cfg *config.Config
	if *dev != "" {
		cfg = config.Dev(*dev)
	} else {
		c, err := config.Load(serverConfigFile(env, *cfgFile))
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return exitUsage
		}
		cfg = c
	}
	settings, tables, err := cfg.Effective()
	if err != nil {
		return fail(env, "%v", err)
	}
	w := env.stdout
	shown := map[string]bool{}
	for _, s := range settings {
		if s.Default && s.Value == `""` {
			continue // an empty default is "not set": listed below with the others
		}
		shown[s.Key] = true
		switch {
		case !s.Default:
			fmt.Fprintf(w, "%s = %s\n", s.Key, s.Value)
		case *all:
			fmt.Fprintf(w, "%s = %s  # default\n", s.Key, s.Value)
		}
	}
	if *all {
		// The settings that are not set and have no value of their own
		// (optional files, tables such as [delivery]): listed as comments,
		// so --all names every setting and its output still loads.
		tables := map[string]bool{}
		for _, si := range config.Schema() {
			if si.Kind == "array of tables" {
				tables[si.Key] = true
			}
		}
		for _, si := range config.Schema() {
			parent := si.Key
			if i := strings.LastIndexByte(parent, '.'); i >= 0 {
				parent = parent[:i]
			}
			if shown[si.Key] || tables[si.Key] || tables[parent] || hasShownChild(shown, si.Key) {
				continue
			}
			fmt.Fprintf(w, "# %s: not set (%s)\n", si.Key, si.Kind)
		}
	}
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, row := range tables[n] {
			fmt.Fprintf(w, "\n[[%s]]\n", n)
			for _, s := range row {
				fmt.Fprintf(w, "%s = %s\n", s.Key, s.Value)
			}
		}
	}
	return exitOK
}
