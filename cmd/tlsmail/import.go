package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/importcfg"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

func runImport(env *cliEnv, args []string) int {
	flags := newFlags(env, "postfix|qmail [DIR]", "Read another mail server's configuration and write a tlsmail.toml: postfix reads\n"+
		"DIR/main.cf, DIR/master.cf and the maps they name from their source text (default\n"+
		"DIR /etc/postfix); qmail reads the s/qmail control files in DIR (default\n"+
		"/var/qmail/control) and the SMTP tcprules text. Every setting that could not be\n"+
		"mapped is a comment in the output (# postfix: NAME = VALUE: not mapped (why)).\n"+
		"Nothing is changed in DIR. Then: tlsmail check --config FILE. See docs/from-postfix.md\n"+
		"and docs/from-qmail.md.")
	output := flags.String("output", "", "write the configuration to `FILE` (default stdout)")
	force := flags.Bool("force", false, "overwrite an existing --output file")
	dataDir := flags.String("data-dir", "/var/lib/tlsmail", "data_dir of the new configuration")
	usersFile := flags.String("users-file", "/etc/tlsmail/users", "users_file of the new configuration")
	tcprules := flags.String("tcprules", "", "qmail: the SMTP tcprules text (default DIR/rules.smtpd.txt, DIR/tcp.smtp, /etc/tcp.smtp)")
	rootTo := flags.String("root-to", "", "postfix: send root's mail to `USER` (adds root = \"USER\" to [aliases]); tlsmail has\n"+
		"no root mailbox, and aliases to root (Debian's postmaster: root) are warned about without it")
	pos, code, done := parseInterspersed(env, flags, args)
	if done {
		return code
	}
	if len(pos) < 1 || len(pos) > 2 {
		return usageError(env, "want postfix or qmail, and optionally DIR")
	}
	if *rootTo != "" && !auth.ValidName(*rootTo) {
		return usageError(env, "--root-to %q is not a user name", *rootTo)
	}
	opt := importcfg.Options{DataDir: *dataDir, UsersFile: *usersFile, RootTo: *rootTo}
	var res *importcfg.Result
	var err error
	switch pos[0] {
	case "postfix":
		dir := "/etc/postfix"
		if len(pos) == 2 {
			dir = pos[1]
		}
		res, err = importcfg.Postfix(dir, opt)
	case "qmail":
		dir := "/var/qmail/control"
		if len(pos) == 2 {
			dir = pos[1]
		}
		res, err = importcfg.Qmail(dir, importcfg.QmailOptions{Options: opt, TCPRules: *tcprules})
	default:
		return usageError(env, "unknown system %q (want postfix or qmail)", pos[0])
	}
	if err != nil {
		if len(pos) == 1 && errors.Is(err, fs.ErrNotExist) {
			// The default directory: say how to name another one.
			return fail(env, "%v (is the configuration elsewhere? name it: %s import %s DIR)", err, "tlsmail", pos[0])
		}
		return fail(env, "%v", err)
	}
	// What the admin must fix goes to stderr too, not only into comments.
	for _, w := range res.Warnings {
		fmt.Fprintf(env.stderr, "%s: warning: %s\n", env.name, w)
	}
	var b bytes.Buffer
	if err := res.WriteTOML(&b); err != nil {
		return fail(env, "%v", err)
	}
	if *output == "" {
		env.stdout.Write(b.Bytes())
		return exitOK
	}
	if _, err := os.Lstat(*output); err == nil && !*force {
		return fail(env, "%s exists: not overwritten (use --force)", *output)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(env, "%v", err)
	}
	if err := safeio.WriteFile(*output, b.Bytes(), 0o640); err != nil {
		return fail(env, "%v", err)
	}
	return exitOK
}
