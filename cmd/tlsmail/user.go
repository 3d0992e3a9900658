package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/route"
	"github.com/tlsmail/tlsmail/internal/server"
)

const userUsage = `usage: tlsmail user <add|del|passwd|list> [--config FILE | --data DIR] [NAME]

A running server on the data directory is told over its control socket,
so the change applies at once.

  add NAME      add a user (password from stdin or a prompt, never the command line)
  passwd NAME   change a user's password
  del NAME      remove a user
  list          list the users`

func runUser(env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.stdout, userUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub := args[0]
	env.name = "tlsmail user " + sub
	fs := newFlags(env, "NAME", "")
	cfgFile := fs.String("config", "", "configuration file whose users_file to edit")
	data := fs.String("data", "tlsmail-data", "data directory of the dev default")
	names, code, done := parseInterspersed(env, fs, args[1:])
	if done {
		return code
	}
	dataDir, cfg, err := serverFiles(env, fs, *cfgFile, *data)
	if err != nil {
		return configError(env, err)
	}
	path := filepath.Join(dataDir, "users")
	if cfg != nil {
		path = cfg.Path(cfg.UsersFile)
	}
	if _, err := os.Stat(path); err != nil && sub == "list" {
		// No users file: say so rather than list nobody.
		return fail(env, "users file %s: %v", path, err)
	}
	users, err := auth.LoadUsers(path)
	if err != nil {
		return fail(env, "%v", err)
	}
	if err := createForRunAs(cfg, users); err != nil {
		return fail(env, "%v", err)
	}
	switch sub {
	case "list":
		for _, n := range users.Names() {
			fmt.Fprintln(env.stdout, n)
		}
		return exitOK
	case "add", "passwd", "del":
	default:
		env.name = "tlsmail user"
		return usageError(env, "unknown subcommand %q", sub)
	}
	if len(names) != 1 {
		return usageError(env, "want exactly one user NAME")
	}
	name := names[0]
	if canon, ok := users.Lookup(name); ok {
		name = canon // user names are case-insensitive; say the stored one
	}
	switch {
	case sub == "add" && users.Exists(name):
		return fail(env, "user %q exists; use `tlsmail user passwd %s`", name, name)
	case sub != "add" && !users.Exists(name):
		return fail(env, "no user %q in %s", name, path)
	case sub == "del":
		if err := users.Delete(name); err != nil {
			return fail(env, "%v", err)
		}
		fmt.Fprintf(env.stdout, "removed %s\n", name)
		// The mail stays: say where, rather than leave it silently.
		if mbox := filepath.Join(dataDir, "mail", auth.Canonical(name)); dirExists(mbox) {
			fmt.Fprintf(env.stdout, "mailbox %s kept; remove it with rm -r %s\n", mbox, mbox)
		}
		return tellServer(env, dataDir)
	}
	if !auth.ValidName(name) {
		return usageError(env, "invalid user name %q (letters, digits and . _ -, optionally @domain)", name)
	}
	name = auth.Canonical(name) // `user add Alice` stores alice

	pw, err := readPassword(env)
	if err != nil {
		return fail(env, "%v", err)
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return fail(env, "%v", err)
	}
	if err := users.Set(name, hash); err != nil {
		return fail(env, "%v", err)
	}
	fmt.Fprintf(env.stdout, "%s %s in %s\n", map[string]string{"add": "added", "passwd": "changed password of"}[sub], name, path)
	if d := foreignDomain(cfg, name); d != "" {
		fmt.Fprintf(env.stderr, "%s: warning: %s is not in local_domains of %s: mail to %s would be relayed or refused (add the domain to local_domains)\n", env.name, d, cfg.File, name)
	}
	return tellServer(env, dataDir)
}

// foreignDomain is the domain of a user name user@domain when the
// configuration does not list it in local_domains (tlsmail check warns
// about it too); "" otherwise, and without a configuration.
func foreignDomain(cfg *config.Config, name string) string {
	_, d := auth.SplitName(name)
	if cfg == nil || d == "" {
		return ""
	}
	for _, ld := range cfg.LocalDomains {
		if a, err := route.Domain(ld); strings.EqualFold(ld, d) || err == nil && a == d {
			return ""
		}
	}
	return d
}

// tellServer asks a server running on dataDir to re-read the users file
// over its control socket, so the change applies at once (no SIGHUP). No
// server running is fine: it reads the file when it starts.
func tellServer(env *cliEnv, dataDir string) int {
	r, err := server.Control(dataDir, "users-reload")
	switch {
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
		fmt.Fprintf(env.stdout, "no server running on %s: it reads the users file when it starts\n", dataDir)
		return exitOK
	case err != nil:
		return fail(env, "the users file is changed, but the running server did not take it: %v (kill -HUP it)", err)
	}
	fmt.Fprintf(env.stdout, "running server: %s\n", r.Text)
	return exitOK
}

// readPassword reads a password: from a terminal with a prompt and no
// echo (asked twice), else the first line of stdin.
func readPassword(env *cliEnv) (string, error) {
	if f, ok := env.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(env.stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on stdin")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// createForRunAs makes a users file that root creates for a server with a
// `user` root:<that user's group> 0640: the server reads it (at start and
// on SIGHUP) but never writes it, so it gets no more than read access — a
// compromised server cannot add accounts. An existing file keeps its owner
// and mode (auth.Users.Set), and nothing is ever chowned by path: the data
// directory belongs to the server's user, who could swap the name for a
// symlink (to /etc/shadow) between a rename and a chown.
func createForRunAs(cfg *config.Config, users *auth.Users) error {
	if cfg == nil || os.Geteuid() != 0 {
		return nil
	}
	ids, ok, err := cfg.RunAs()
	if err != nil || !ok {
		return err
	}
	users.CreateAs(0, ids.GID, 0o640)
	return nil
}

// dirExists reports whether path is a directory.
func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
