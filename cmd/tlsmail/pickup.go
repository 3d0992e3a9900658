package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/pickup"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/server"
)

// exCantCreat is sysexits(3) EX_CANTCREAT.
const exCantCreat = 73

// defaultServerConfig is where sendmail looks for the local server's
// configuration when neither --config nor $TLSMAIL_CONFIG names one.
const defaultServerConfig = "/etc/tlsmail/tlsmail.toml"

// localDrop is the local server's mail drop as sendmail sees it.
type localDrop struct {
	cfg *config.Config
	dir string // DATA/pickup
}

// findLocalDrop loads the local server's configuration (--config, else
// $TLSMAIL_CONFIG, else /etc/tlsmail/tlsmail.toml). It returns nil when
// there is no local server; a file that was named but cannot be used is
// an error.
func findLocalDrop(env *cliEnv, file string) (*localDrop, error) {
	if file == "" {
		file = env.getenv("TLSMAIL_CONFIG")
	}
	named := file != ""
	if !named {
		file = defaultServerConfig
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	return &localDrop{cfg: cfg, dir: cfg.Path(server.PickupDir)}, nil
}

// submit writes the message into the mail drop for the server to collect.
func (d *localDrop) submit(env *cliEnv, from string, rcpts []string, notify string, msg []byte) int {
	if st, err := os.Stat(d.dir); err != nil || !st.IsDir() {
		return failCode(env, exTempFail, "no local mail drop %s (start `tlsmail serve` once to make it): the message was not sent", d.dir)
	}
	if _, err := pickup.Submit(d.dir, pickup.Envelope{From: from, Rcpts: rcpts, Notify: notify}, msg); err != nil {
		return failCode(env, exCantCreat, "%v: the message was not sent", err)
	}
	return exitOK
}

// localSender is the address of the user running sendmail at the local
// server's first local domain (or its host name): the sender of mail
// dropped without -f or an account.
func (d *localDrop) localSender(env *cliEnv) string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = env.getenv("LOGNAME")
	}
	if name == "" {
		name = env.getenv("USER")
	}
	domain := d.cfg.Hostname
	if len(d.cfg.LocalDomains) > 0 {
		domain = d.cfg.LocalDomains[0]
	}
	return name + "@" + domain
}

// sendmailList is `sendmail -bp` / `mailq`: the mail drop (files the
// server has not collected yet) and the queue.
func sendmailList(env *cliEnv, sa sendmailArgs) int {
	d, err := findLocalDrop(env, sa.config)
	if err != nil {
		return failCode(env, exConfig, "%v", err)
	}
	if d == nil {
		return failCode(env, exConfig, "no local server: give --config FILE or set $TLSMAIL_CONFIG (default %s)", defaultServerConfig)
	}
	fmt.Fprintf(env.stdout, "Mail drop %s (not yet collected by the server):\n", d.dir)
	entries, err := pickup.List(d.dir)
	switch {
	case errors.Is(err, os.ErrPermission):
		fmt.Fprintln(env.stdout, "  not readable by this user (root or the server's user can list it)")
	case err != nil:
		fmt.Fprintf(env.stdout, "  %v\n", err)
	case len(entries) == 0:
		fmt.Fprintln(env.stdout, "  empty")
	default:
		tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  FILE\tAGE\tSIZE\tUSER\tFROM\tTO")
		for _, e := range entries {
			from := e.From
			if from == "" {
				from = "<>"
			}
			who := fmt.Sprint(e.UID)
			if u, err := user.LookupId(who); err == nil {
				who = u.Username
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\t%s\n", e.Name, time.Since(e.Time).Round(time.Second), e.Size, who, from, strings.Join(e.Rcpts, ","))
		}
		tw.Flush()
	}
	fmt.Fprintf(env.stdout, "\nQueue %s:\n", d.cfg.Path("queue"))
	items, err := queue.Inspect(d.cfg.Path("queue"))
	switch {
	case errors.Is(err, os.ErrPermission):
		fmt.Fprintln(env.stdout, "  not readable by this user (root or the server's user can list it)")
	case err != nil:
		fmt.Fprintf(env.stdout, "  %v\n", err)
	default:
		printQueue(env, items)
	}
	return exitOK
}
