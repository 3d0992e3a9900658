package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/server"
)

func runServe(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Run the mail server. With no --config it starts the dev default on 127.0.0.1\n"+
		"(SMTP: MX 2525, SMTPS 2465, submission 2587; POP3 2110 STLS, POP3S 2995;\n"+
		"IMAP 2143 STARTTLS, IMAPS 2993) with its own dev CA, in --data, and writes its\n"+
		"configuration to --data/tlsmail.toml (edit it and pass it with --config to\n"+
		"change ports).")
	data := fs.String("data", "tlsmail-data", "data directory for the dev default")
	cfgFile := fs.String("config", "", "configuration file (TOML); without it, the dev default")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return usageError(env, "unexpected argument %q", fs.Arg(0))
	}
	var cfg *config.Config
	dev := *cfgFile == ""
	if dev {
		abs, err := filepath.Abs(*data)
		if err != nil {
			return fail(env, "%v", err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return fail(env, "%v", err)
		}
		cfg = config.Dev(abs)
		if _, err := server.DevSetup(cfg); err != nil {
			return fail(env, "dev setup: %v", err)
		}
	} else {
		c, err := config.Load(*cfgFile)
		if err != nil {
			return configError(env, err)
		}
		cfg = c
	}
	log, logCloser, err := server.NewLogger(cfg, env.stderr, server.LogTargets{})
	if err != nil {
		return usageError(env, "%v", err)
	}
	defer logCloser.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	err = server.Run(ctx, server.Options{
		Config: cfg, ConfigFile: *cfgFile, Log: log, Reload: hup,
		Ready: func(addrs map[string]string) {
			if dev {
				server.Banner(env.stdout, cfg, addrs)
			}
		},
	})
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return configError(env, err)
		}
		return fail(env, "%v", err)
	}
	return exitOK
}
