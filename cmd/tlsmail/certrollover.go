package main

import (
	"fmt"
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/server"
)

// certRollover is `tlsmail cert rollover [--confirm] [--config F] [NAME]`:
// a DANE-safe key rollover of an ACME certificate, done by the running
// server (it owns the storage and the challenge ports).
func certRollover(env *cliEnv, args []string) int {
	fs := newFlags(env, "[NAME]", "Roll an ACME certificate's key over: first print the next key's TLSA record to publish;\nwith --confirm (or after [tls.acme] rollover_delay) switch to it. NAME defaults to hostname.")
	cfgFile := fs.String("config", "", "the server's configuration file (required)")
	confirm := fs.Bool("confirm", false, "switch to the next key now (its TLSA record is published)")
	pos, code, done := parseInterspersed(env, fs, args)
	if done {
		return code
	}
	if *cfgFile == "" {
		return usageError(env, "--config is required")
	}
	if len(pos) > 1 {
		return usageError(env, "at most one NAME")
	}
	c, err := config.Load(*cfgFile)
	if err != nil {
		return usageError(env, "%v", err)
	}
	if c.TLS.ACME == nil {
		return fail(env, "%s has no [tls.acme]: a rollover is for ACME certificates (for files, replace the key and publish its TLSA first)", *cfgFile)
	}
	name := c.Hostname
	if len(pos) == 1 {
		name = strings.ToLower(pos[0])
	}
	cmd := "cert-rollover"
	if *confirm {
		cmd = "cert-rollover-confirm"
	}
	r, err := server.Control(c.DataDir, cmd, name)
	if err != nil {
		return fail(env, "%v", err)
	}
	fmt.Fprintln(env.stdout, r.Text)
	return exitOK
}
