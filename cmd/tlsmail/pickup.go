package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
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

// dropConfigFile is the local server's configuration file sendmail reads:
// --config, else $TLSMAIL_CONFIG (named), else the default.
func dropConfigFile(env *cliEnv, flagValue string) (file string, named bool) {
	if flagValue == "" {
		flagValue = env.getenv("TLSMAIL_CONFIG")
	}
	if flagValue != "" {
		return flagValue, true
	}
	return defaultServerConfig, false
}

// findLocalDrop loads the local server's configuration (--config, else
// $TLSMAIL_CONFIG, else /etc/tlsmail/tlsmail.toml). It returns nil when
// there is no local server; a file that was named but cannot be used is
// an error.
func findLocalDrop(env *cliEnv, file string) (*localDrop, error) {
	file, named := dropConfigFile(env, file)
	if !named {
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	// Not readable by this user: said apart from a broken file (Load's
	// error does not wrap it), so the caller can treat it as no local
	// server.
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	f.Close()
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	return &localDrop{cfg: cfg, dir: cfg.Path(server.PickupDir)}, nil
}

// localDropFor finds the local mail drop for sending: nil when there is
// none, also when this user may not read the server's configuration
// (that is said on stderr, with the fix); a named configuration that is
// broken is EX_CONFIG.
func localDropFor(env *cliEnv, file string) (*localDrop, int) {
	d, err := findLocalDrop(env, file)
	switch {
	case errors.Is(err, os.ErrPermission):
		fmt.Fprintf(env.stderr, "%s: no local mail drop: %v (local users need to read the server's configuration and search its data directory: chmod 644 the file, chmod 711 the data directory)\n", env.name, err)
		return nil, 0
	case err != nil:
		return nil, failCode(env, exConfig, "%v", err)
	}
	return d, 0
}

// submit writes the message into the mail drop for the server to collect.
func (d *localDrop) submit(env *cliEnv, from string, rcpts []string, notify string, msg []byte) int {
	st, err := os.Stat(d.dir)
	switch {
	case errors.Is(err, os.ErrPermission):
		return failCode(env, exTempFail, "the local mail drop %s is not reachable by this user (%v): the data directory %s must be searchable by all (chmod 711): the message was not sent", d.dir, err, d.cfg.DataDir)
	case err != nil || !st.IsDir():
		return failCode(env, exTempFail, "no local mail drop %s (start `tlsmail serve` once to make it): the message was not sent", d.dir)
	}
	uid := os.Getuid()
	if name := server.UserName(uid); !pickup.Authorized(d.cfg.AuthorizedSubmitUsers, name, uint32(uid)) {
		return failCode(env, exNoPerm, "user %s is not in the server's authorized_submit_users: the message was not sent", name)
	}
	e := pickup.Envelope{From: from, Rcpts: rcpts, Notify: notify}
	if err := e.Check(d.cfg.Limits.Recipients); err != nil {
		return failCode(env, exDataErr, "%v: the message was not sent", err)
	}
	if _, err := pickup.Submit(d.dir, e, msg, d.cfg.Limits.Recipients); err != nil {
		return failCode(env, exCantCreat, "%v: the message was not sent", err)
	}
	return exitOK
}

// localSender is the address of the user running sendmail at the local
// server's first local domain (or its host name): the sender of mail
// dropped without -f or an account.
func (d *localDrop) localSender(env *cliEnv) string {
	name := server.UserName(os.Getuid())
	if _, err := strconv.Atoi(name); err == nil { // unknown to the system
		name = ""
	}
	if name == "" {
		name = env.getenv("LOGNAME")
	}
	if name == "" {
		name = env.getenv("USER")
	}
	return name + "@" + d.origin()
}

// origin is the local server's first local domain, else its host name:
// the domain of bare local names (Postfix's myorigin).
func (d *localDrop) origin() string {
	if len(d.cfg.LocalDomains) > 0 {
		return d.cfg.LocalDomains[0]
	}
	return d.cfg.Hostname
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
	entries, err := pickup.List(d.dir, d.cfg.Limits.Recipients)
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
			who := server.UserName(int(e.UID))
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
