package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/internal/ucspi"
)

const sslclientUsage = `usage: sslclient [ -346qQvhHrRxXnNmMsSeEdDyY ] [ -i localip ] [ -p localport ] [ -I interface ] [ -T timeoutconn+timeouttls ] [ -a cafile ] [ -A cadir ] [ -c certfile ] [ -k keyfile ] [ -K keypassfile ] [ -V verifydepth ] [ -z ciphers ] [ -l localname ] [ -t identtimeout ] [ -w progtimeout ] host port program

A drop-in for UCSPI-SSL's sslclient (see the UCSPI-SSL section of tlsmail's
README.md): connects,
does TLS (verifying the server by default), and runs program with fd 6
reading from the server and fd 7 writing to it. -3 (fd 3) and -K file give the
password of an encrypted client key. SNI is sent when the host is a name
(-M turns it off). -V n limits the
intermediate CAs (default 1, as UCSPI-SSL). A server that fails
verification exits 110 (as newer UCSPI-SSL; 111 is a connection failure).
-y is client-side delayed TLS (UCSPI-TLS): fds 6/7 are the raw socket until
the program writes 'y' or 'Y' to SSLCTLFD=3, then it uses SSLREADFD=4 and
SSLWRITEFD=5. -r asks the server's ident service for SSLREMOTEINFO.`

const sslclientArgs = "ipTIKaAckVzltw"

func runSSLClient(env *cliEnv, args []string) int {
	c := ucspiCmd{env: env, name: "sslclient", usage: sslclientUsage}
	opts, rest, code, done := c.options(args, sslclientArgs)
	if done {
		return code
	}
	o := ucspi.ClientOptions{Verbosity: 1, ConnectTimeout: 2 * time.Second, RetryTimeout: 58 * time.Second, TLSTimeout: 60 * time.Second, NoDelay: true,
		Verify: true, VerifyDepth: 1, CheckName: true, SNI: true, LookupHost: true, IdleTimeout: 3600 * time.Second, IdentTimeout: 26 * time.Second, Log: env.stderr}
	var caFile, caDir, certFile, keyFile, ciphers string
	var keyPass []byte
	for _, kv := range opts {
		switch v := kv[1]; kv[0] {
		case "q":
			o.Verbosity = 0
		case "Q":
			o.Verbosity = 1
		case "v":
			o.Verbosity = 2
		case "4", "6": // the address family follows the host argument
		case "r":
			o.Ident = true
		case "R":
			o.Ident = false
		case "y":
			o.Delayed = true
		case "Y":
			o.Delayed = false
		case "i":
			o.LocalIP = v
		case "p":
			n, err := strconv.Atoi(v)
			if err != nil {
				return c.usageError("-p %q is not a port", v)
			}
			o.LocalPort = n
		case "T":
			x, y, _ := strings.Cut(v, "+")
			a, err1 := strconv.Atoi(x)
			b, err2 := strconv.Atoi(y)
			if err1 != nil || (y != "" && err2 != nil) {
				return c.usageError("-T %q: want x+y seconds", v)
			}
			o.ConnectTimeout, o.RetryTimeout = time.Duration(a)*time.Second, time.Duration(b)*time.Second
			o.TLSTimeout = o.ConnectTimeout + o.RetryTimeout
		case "a":
			caFile = v
		case "A":
			caDir = v
		case "c":
			certFile = v
		case "k":
			keyFile = v
		case "z":
			ciphers = v
		case "l":
			o.LocalHost = v
		case "w", "t":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c.usageError("-%s %q is not a number", kv[0], v)
			}
			if kv[0] == "w" {
				o.IdleTimeout = time.Duration(n) * time.Second
			} else {
				o.IdentTimeout = time.Duration(n) * time.Second
			}
		case "x":
			o.Verify = true
		case "X":
			o.Verify = false
		case "n":
			o.CheckName = true
		case "N":
			o.CheckName = false
		case "m":
			o.SNI = true
		case "M":
			o.SNI = false
		case "h":
			o.LookupHost = true
		case "H":
			o.LookupHost = false
		case "s":
			o.SSLEnv = true
		case "S":
			o.SSLEnv = false
		case "e":
			o.TCPEnv = true
		case "E":
			o.TCPEnv = false
		case "d":
			o.NoDelay = false
		case "D":
			o.NoDelay = true
		case "3", "K":
			file := ""
			if kv[0] == "K" {
				file = v
			}
			pw, err := keyPassword(file)
			if err != nil {
				return c.fatal("-%s: %v", kv[0], err)
			}
			keyPass = pw
		case "V":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return c.usageError("-V %q is not a number", v)
			}
			o.VerifyDepth = n
		case "I":
			if err := checkInterface(v); err != nil {
				return c.fatal("%v", err)
			}
			o.Interface = v
		default:
			return c.unknownOption(kv[0])
		}
	}
	if len(rest) < 3 {
		return c.usageError("%s", sslclientUsage)
	}
	o.Host, o.Port, o.Prog = rest[0], rest[1], rest[2:]
	if caFile != "" || caDir != "" {
		pool, err := certs.LoadCAs(caFile, caDir)
		if err != nil {
			return c.fatal("%v", err)
		}
		o.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tlsconf.LoadCertificate(tlsconf.CertSpec{CertFile: certFile, KeyFile: keyFile, KeyPassword: keyPass})
		if err != nil {
			return c.fatal("%v", err)
		}
		o.ClientCert = &cert
	}
	if ciphers != "" {
		cl, err := tlsconf.ParseCiphers(ciphers)
		if err != nil {
			return c.fatal("%v", err)
		}
		o.CipherSuites = cl.Suites
	}
	code, err := ucspi.RunClient(o)
	var f *ucspi.Failure
	if errors.As(err, &f) {
		if o.Verbosity > 0 {
			fmt.Fprintf(env.stderr, "sslclient: %s\n", f.Msg)
		}
		return f.Code
	}
	if err != nil {
		return c.fatal("%v", err)
	}
	return code
}
