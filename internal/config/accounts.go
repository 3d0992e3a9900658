package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Account is one `tlsmail send` account, msmtp style.
type Account struct {
	Server          string `toml:"server"`           // host[:port]
	TLS             string `toml:"tls"`              // implicit, starttls, opportunistic, none; default by port
	User            string `toml:"user"`             // AUTH user; empty: no AUTH
	From            string `toml:"from"`             // default envelope sender and From
	PasswordCommand string `toml:"password_command"` // run with sh -c; its first line is the password
	PasswordFile    string `toml:"password_file"`
	CAFile          string `toml:"cafile"`
	Insecure        bool   `toml:"insecure"`
	Auth            string `toml:"auth"` // restrict the mechanism: PLAIN, LOGIN, CRAM-MD5, XOAUTH2
}

// Accounts is the send configuration file.
type Accounts struct {
	Default  string             `toml:"default"`
	Accounts map[string]Account `toml:"account"`
	File     string             `toml:"-"`
}

// DefaultAccountsFile is $XDG_CONFIG_HOME/tlsmail/send.toml (or
// ~/.config/tlsmail/send.toml), falling back to /etc/tlsmail/send.toml
// when that does not exist (for cron jobs and daemons).
func DefaultAccountsFile() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".config")
		}
	}
	if dir != "" {
		p := filepath.Join(dir, "tlsmail", "send.toml")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "/etc/tlsmail/send.toml"
}

// ErrNoAccounts means the accounts file does not exist.
var ErrNoAccounts = errors.New("no accounts file")

// LoadAccounts reads an accounts file; errors name the file and line.
func LoadAccounts(path string) (*Accounts, error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoAccounts)
	}
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	var a Accounts
	md, err := toml.Decode(string(src), &a)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: path, Line: pe.Position.Line, Msg: pe.Message}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	loc := locator{src: src}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, &Error{File: path, Line: loc.line(und[0]...), Msg: fmt.Sprintf("unknown setting %q", und[0].String())}
	}
	for name, acc := range a.Accounts {
		if acc.Server == "" {
			return nil, &Error{File: path, Line: loc.line("account", name), Msg: fmt.Sprintf("account %q has no server", name)}
		}
		switch acc.TLS {
		case "", "implicit", "starttls", "opportunistic", "none":
		default:
			return nil, &Error{File: path, Line: loc.line("account", name, "tls"), Msg: fmt.Sprintf("account %q: tls %q: want implicit, starttls, opportunistic or none", name, acc.TLS)}
		}
	}
	if a.Default != "" {
		if _, ok := a.Accounts[a.Default]; !ok {
			return nil, &Error{File: path, Line: loc.line("default"), Msg: fmt.Sprintf("default account %q is not defined", a.Default)}
		}
	}
	for name, acc := range a.Accounts {
		acc.CAFile = accountPath(path, acc.CAFile)
		acc.PasswordFile = accountPath(path, acc.PasswordFile)
		a.Accounts[name] = acc
	}
	a.File = path
	return &a, nil
}

// accountPath resolves a file named in the accounts file at path: "~/" is
// the home directory (as msmtp expands it), and a relative name is
// relative to the accounts file's directory, so the account works from
// any working directory (cron's is $HOME, a service's /).
func accountPath(path, name string) string {
	switch {
	case name == "":
		return ""
	case name == "~" || strings.HasPrefix(name, "~/"):
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, name[1:])
		}
		return name
	case filepath.IsAbs(name):
		return name
	}
	return filepath.Join(filepath.Dir(path), name)
}

// Pick returns the named account, or the default (or the only) one.
func (a *Accounts) Pick(name string) (Account, error) {
	if name == "" {
		name = a.Default
	}
	if name == "" && len(a.Accounts) == 1 {
		for n := range a.Accounts {
			name = n
		}
	}
	acc, ok := a.Accounts[name]
	if !ok {
		if name == "" && len(a.Accounts) == 0 {
			return Account{}, fmt.Errorf("%s: no [account.NAME] sections", a.File)
		}
		if name == "" {
			return Account{}, fmt.Errorf("%s: several accounts and no default; use --account", a.File)
		}
		return Account{}, fmt.Errorf("%s: no account %q", a.File, name)
	}
	return acc, nil
}
