package ucspi

import (
	"fmt"
	"strconv"

	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

// This file holds sslserver's environment rules (ucspi-ssl.md §1.3, §1.5,
// §4.5): what it reads from its own environment at start-up, once. The
// per-connection environment of the program is admit.go's and server.go's.

// IDsFromEnv reads $UID and $GID for -U.
func IDsFromEnv(getenv func(string) string) (uid, gid int, err error) {
	for _, v := range []struct {
		name string
		p    *int
	}{{"UID", &uid}, {"GID", &gid}} {
		name, p := v.name, v.p
		n, err := strconv.Atoi(getenv(name))
		if err != nil || n < 0 {
			return -1, -1, fmt.Errorf("-U: $%s %q is not a number", name, getenv(name))
		}
		*p = n
	}
	return uid, gid, nil
}

// ServerEnv applies sslserver's environment to o and returns the settings
// of its TLS server: the certificate ($CERTCHAINFILE, else $CERTFILE),
// $KEYFILE, the key password of -3 (keyPass), $CIPHERS; client CAs
// ($CAFILE, $CADIR, $CCAFILE over $CAFILE), requested and required only
// with -z/-m (clientCert "z" or "m"; "" for neither) unless $CCAFILE is
// "-"; $VERIFYDEPTH (default 1); $MAXCONIP (default -c). *uid and *gid
// are -u/-g (-1: not given): $SSL_UID/$SSL_GID fill them, and are
// ignored with a warning where they differ, as $SSL_CHROOT always is (TLS
// runs in this process). warn gets the warnings when o.Verbosity ≥ 1.
// requireCert reports whether client certificates are required.
func ServerEnv(o *ServerOptions, getenv func(string) string, clientCert string, keyPass []byte, uid, gid *int, warn func(format string, a ...any)) (settings tlsconf.ServerSettings, requireCert bool, err error) {
	// SSL_UID/SSL_GID name the TLS handler's user; TLS runs in this
	// process, which must also start the programs as -u/-g, so those win
	// when both are given.
	for _, v := range []struct {
		name string
		p    *int
	}{{"SSL_UID", uid}, {"SSL_GID", gid}} {
		val := getenv(v.name)
		if val == "" {
			continue
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return settings, false, fmt.Errorf("$%s %q is not a number", v.name, val)
		}
		if *v.p < 0 {
			*v.p = n
		} else if *v.p != n && o.Verbosity >= 1 {
			warn("$%s=%d ignored: TLS runs in the sslserver process, which runs as -u/-g %d", v.name, n, *v.p)
		}
	}
	if getenv("SSL_CHROOT") != "" && o.Verbosity >= 1 {
		warn("$SSL_CHROOT ignored: TLS runs in the sslserver process, which also starts the programs")
	}
	o.MaxPerIP = o.MaxChildren
	if v := getenv("MAXCONIP"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			o.MaxPerIP = n
		}
	}
	certFile, keyFile := getenv("CERTFILE"), getenv("KEYFILE")
	if chain := getenv("CERTCHAINFILE"); chain != "" {
		certFile = chain
	}
	settings = tlsconf.ServerSettings{Certs: []tlsconf.CertSpec{{CertFile: certFile, KeyFile: keyFile, KeyPassword: keyPass}}, Ciphers: getenv("CIPHERS")}
	o.ClientCAFile, o.ClientCADir = getenv("CAFILE"), getenv("CADIR")
	if f := getenv("CCAFILE"); f != "" && f != "-" {
		o.ClientCAFile = f
	}
	o.ClientCRL = getenv("CRLFILE")
	o.TLSSettings = settings
	// -z/-m ask for a client certificate, unless CCAFILE is "-".
	requireCert = clientCert != "" && getenv("CCAFILE") != "-"
	if requireCert && o.ClientCAFile == "" && o.ClientCADir == "" {
		// ucspi-ssl would ask for no certificate at all here; a -m or -z
		// that checks nothing is refused instead (README).
		return settings, false, fmt.Errorf("-%s needs the client certificates' CA: set CCAFILE (or CAFILE or CADIR); CCAFILE=- turns the check off", clientCert)
	}
	if requireCert {
		settings.ClientAuth = tlsconf.ClientAuthRequire
		settings.ClientCAFile, settings.ClientCADir, settings.ClientCRL = o.ClientCAFile, o.ClientCADir, o.ClientCRL
		o.ClientCertHost = clientCert == "z"
	}
	o.VerifyDepth = 1
	if v := getenv("VERIFYDEPTH"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return settings, false, fmt.Errorf("VERIFYDEPTH %q is not a number", v)
		}
		o.VerifyDepth = n
	}
	return settings, requireCert, nil
}

// StartLines are UCSPI-SSL's -v start-up lines (without "sslserver: "
// and the PID): the files in use, and "param" with the DH file and the
// temporary RSA key length — Go's TLS uses neither, so the length is 0.
func StartLines(getenv func(string) string, requireCert bool, pid int) []string {
	cca := ""
	if requireCert {
		cca = getenv("CCAFILE")
	}
	var lines []string
	for _, l := range [][2]string{{"cafile", getenv("CAFILE")}, {"ccafile", cca}, {"cadir", getenv("CADIR")},
		{"chainfile", getenv("CERTCHAINFILE")}, {"cert", getenv("CERTFILE")}, {"key", getenv("KEYFILE")}} {
		lines = append(lines, fmt.Sprintf("%s %d %s", l[0], pid, l[1]))
	}
	return append(lines, fmt.Sprintf("param %d %s 0", pid, getenv("DHFILE")))
}

// DHFileWarning is the warning for a $DHFILE, which is accepted and
// ignored; "" when it is not set.
func DHFileWarning(getenv func(string) string) string {
	if getenv("DHFILE") == "" {
		return ""
	}
	return "DHFILE is accepted and ignored: Go's TLS has no finite-field DHE; ECDHE and hybrid post-quantum key exchange are used"
}
