package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/internal/ucspi"
)

const sslserverUsage = `usage: sslserver [ -1346UXpPhHrRoOdDqQvVIeEsSnNmzZ ] [ -c limit ] [ -y ipcdb ] [ -x rules.cdb ] [ -B banner ] [ -g gid ] [ -u uid ] [ -b backlog ] [ -l localname ] [ -t timeout ] [ -T ssltimeout ] [ -w progtimeout ] [ -I interface ] host port program

A drop-in for UCSPI-SSL's sslserver (see the UCSPI-SSL section of tlsmail's
README.md). Certificates come from $CERTFILE / $KEYFILE / $CERTCHAINFILE,
client CAs from $CAFILE / $CADIR / $CCAFILE, revoked client certificates
from $CRLFILE (a CRL file or directory), ciphers from $CIPHERS. TLS is
done in this process; only the program is exec'd. Immediate mode (-N) and
delayed TLS (-n, UCSPI-TLS: SSLCTLFD=3, SSLREADFD=4, SSLWRITEFD=5), ident
(-r, -t), IP-only rules (-y), -U, -3 (key password on fd 3, for PKCS#8
PBES2 or legacy encrypted PEM keys), -I ifname (the scope of an IPv6
link-local host). SSL_UID, SSL_GID and SSL_CHROOT from rules have no
effect: TLS runs in this process.`

// sslserverOpts are the getopt letters: those taking an argument.
const sslserverArgs = "xtTuglbBcwIy"

// readKeyPassword reads a key password as UCSPI-SSL's -3 does: up to a
// NUL byte; at end of file without a NUL one trailing newline is dropped
// so `3<file` works. The descriptor is closed so the program never sees it.
func readKeyPassword(f *os.File) ([]byte, error) {
	if f == nil {
		return nil, fmt.Errorf("descriptor not open")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("reading the key password: %w", err)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return data[:i], nil
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	return bytes.TrimSuffix(data, []byte("\r")), nil
}

// getopt splits combined single-letter options ("-seVn", "-c40", "-c 40").
func getopt(args []string, withArg string) (opts [][2]string, rest []string, err error) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if strings.IndexByte(withArg, c) >= 0 {
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return nil, nil, fmt.Errorf("option -%c needs a value", c)
					}
					i++
					v = args[i]
				}
				opts = append(opts, [2]string{string(c), v})
				break
			}
			opts = append(opts, [2]string{string(c), ""})
		}
	}
	return opts, args[i:], nil
}

// shutdownGrace is how long sslserver's running connections may go on
// after SIGTERM (see ucspi.ServerOptions.ShutdownGrace).
const shutdownGrace = 10 * time.Second

func runSSLServer(env *cliEnv, args []string) int {
	c := ucspiCmd{env: env, name: "sslserver", usage: sslserverUsage}
	opts, rest, code, done := c.options(args, sslserverArgs)
	if done {
		return code
	}
	o := ucspi.ServerOptions{Verbosity: 1, MaxChildren: 40, LookupHost: true, TCPEnv: true, NoDelay: true,
		HandshakeTimeout: 26 * time.Second, IdentTimeout: 26 * time.Second, IdleTimeout: 3600 * time.Second, Log: env.stderr}
	clientCert := ""
	var uid, gid int = -1, -1
	backlog := 0 // 0: the kernel's somaxconn, as Go listens
	var keyPass []byte
	iface := ""
	for _, kv := range opts {
		switch v := kv[1]; kv[0] {
		case "q":
			o.Verbosity = 0
		case "Q":
			o.Verbosity = 1
		case "v":
			o.Verbosity = 2
		case "V":
			o.Verbosity = 3
		case "1":
			o.PrintPort = true
		case "4", "6":
			// The address family follows the host argument.
		case "o":
			o.KeepIPOptions = true
		case "O":
			o.KeepIPOptions = false
		case "p":
			o.Paranoid = true
		case "P":
			o.Paranoid = false
		case "r":
			o.Ident = true
		case "R":
			o.Ident = false
		case "y":
			o.IPRules = v
		case "U":
			u, g, err := ucspi.IDsFromEnv(env.getenv)
			if err != nil {
				return c.usageError("fatal: %v", err)
			}
			uid, gid = u, g
		case "c", "b", "t", "T", "w", "u", "g":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c.usageError("-%s %q is not a number", kv[0], v)
			}
			switch kv[0] {
			case "c":
				o.MaxChildren = n
			case "b":
				backlog = n
			case "t":
				o.IdentTimeout = time.Duration(n) * time.Second
			case "T":
				o.HandshakeTimeout = time.Duration(n) * time.Second
			case "w":
				o.IdleTimeout = time.Duration(n) * time.Second
			case "u":
				uid = n
			case "g":
				gid = n
			}
		case "x":
			o.Rules = v
		case "X":
			o.RulesMissingOK = true
		case "B":
			o.Banner = v
		case "l":
			o.LocalHost = v
		case "h":
			o.LookupHost = true
		case "H":
			o.LookupHost = false
		case "e":
			o.TCPEnv = true
		case "E":
			o.TCPEnv = false
		case "s":
			o.SSLEnv = true
		case "S":
			o.SSLEnv = false
		case "d":
			o.NoDelay = false
		case "D":
			o.NoDelay = true
		case "N":
			o.Delayed = false
		case "n":
			o.Delayed = true
		case "z", "m":
			clientCert = kv[0]
		case "Z":
			clientCert = ""
		case "3":
			pw, err := keyPassword("")
			if err != nil {
				return c.fatal("-3: %v", err)
			}
			keyPass = pw
		case "I":
			if err := checkInterface(v); err != nil {
				return c.fatal("%v", err)
			}
			iface = v
		default:
			return c.unknownOption(kv[0])
		}
	}
	if len(rest) < 3 {
		return c.usageError("%s", sslserverUsage)
	}
	o.Host, o.Port, o.Prog = rest[0], rest[1], rest[2:]
	if o.Host == "0" || o.Host == "" {
		o.Host = "::"
	}
	// The environment rules (ucspi-ssl.md §1.3) are ucspi's.
	settings, requireCert, err := ucspi.ServerEnv(&o, env.getenv, clientCert, keyPass, &uid, &gid, c.warn)
	if err != nil {
		return c.fatal("%v", err)
	}
	srv, err := tlsconf.NewServer(settings)
	if err != nil {
		return c.fatal("%v", err)
	}
	o.TLS = srv
	if o.Verbosity >= 2 {
		for _, l := range ucspi.StartLines(env.getenv, requireCert, os.Getpid()) {
			c.say("%s", l)
		}
	}
	if w := ucspi.DHFileWarning(env.getenv); w != "" && o.Verbosity >= 1 {
		c.warn("%s", w)
	}
	port := o.Port
	if _, err := strconv.Atoi(port); err != nil {
		p, err := net.LookupPort("tcp", port)
		if err != nil {
			return c.fatal("unable to figure out port number for %s", port)
		}
		port = strconv.Itoa(p)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ucspi.ScopedHost(o.Host, iface), port))
	if err != nil {
		return c.fatal("unable to bind: %v", err)
	}
	if backlog > 0 {
		if err := ucspi.SetBacklog(l.(*net.TCPListener), backlog); err != nil {
			return c.fatal("unable to listen: %v", err)
		}
	}
	if o.PrintPort {
		fmt.Fprintln(env.stdout, l.Addr().(*net.TCPAddr).Port)
	}
	// Bound, keys read: drop to -u/-g for good; the programs inherit it.
	if err := ucspi.DropPrivileges(uid, gid); err != nil {
		return c.fatal("%v", err)
	}
	for _, f := range []string{o.Rules, o.IPRules} {
		if f == "" {
			continue
		}
		if err := ucspi.CheckReadable(f); err != nil {
			return c.fatal("%v", err)
		}
	}
	// SIGTERM closes the listener; running connections get
	// shutdownGrace to finish. A second SIGTERM ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	context.AfterFunc(ctx, stop)
	o.ShutdownGrace = shutdownGrace
	if err := ucspi.NewServer(o).Serve(ctx, l); err != nil {
		return c.fatal("%v", err)
	}
	return 0
}
