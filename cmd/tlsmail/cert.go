package main

import (
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/certs"
)

const certUsage = `usage: tlsmail cert <subcommand> [flags] [args]

subcommands:
  show [--json] FILE...         describe certificates (PEM chains or DER)
  hash [--old] FILE             OpenSSL subject hash (openssl x509 -subject_hash)
  rehash DIR                    make HASH.N links like openssl rehash
  new-ca --out DIR [--cn NAME]  make a CA (DIR/ca.pem, DIR/ca.key)
  issue --ca DIR --host a,b,ip --out PREFIX [--client] [--rsa BITS]
                                issue a server (or client) certificate
  verify [--cafile F] [--cadir D] [--host NAME] FILE
                                verify a chain and say why it fails
  rollover --config F [--confirm] [NAME]
                                ACME key rollover: print the next key's TLSA record, then switch`

func runCert(env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, certUsage)
		return exitUsage
	}
	sub, rest := args[0], args[1:]
	env.name = "tlsmail cert " + sub
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(env.stdout, certUsage)
		return exitOK
	case "show":
		return certShow(env, rest)
	case "hash":
		return certHash(env, rest)
	case "rehash":
		return certRehash(env, rest)
	case "new-ca":
		return certNewCA(env, rest)
	case "issue":
		return certIssue(env, rest)
	case "verify":
		return certVerify(env, rest)
	case "rollover":
		return certRollover(env, rest) // certrollover.go
	}
	env.name = "tlsmail cert"
	return usageError(env, "unknown subcommand %q", sub)
}

func certShow(env *cliEnv, args []string) int {
	fs := newFlags(env, "FILE...", "Describe each certificate in each FILE (PEM chain or DER).")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(env, "no certificate file given")
	}
	now := time.Now()
	var all []certs.Description
	for _, path := range fs.Args() {
		cs, err := certs.ReadCertificates(path)
		if err != nil {
			return fail(env, "%v", err)
		}
		for i, c := range cs {
			d := certs.Describe(c, now)
			all = append(all, d)
			if !*asJSON {
				fmt.Fprintf(env.stdout, "%s: certificate %d of %d\n", path, i+1, len(cs))
				d.WriteText(env.stdout)
			}
		}
	}
	if *asJSON {
		return writeJSON(env, all)
	}
	return exitOK
}

func writeJSON(env *cliEnv, v any) int {
	if err := jsonEncoder(env.stdout).Encode(v); err != nil {
		return fail(env, "%v", err)
	}
	return exitOK
}

// jsonEncoder writes indented JSON for people and scripts alike: SMTP
// replies keep their <address> as is (not \u003c…\u003e).
func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc
}

func certHash(env *cliEnv, args []string) int {
	fs := newFlags(env, "FILE", "Print the OpenSSL subject hash of each certificate in FILE.")
	old := fs.Bool("old", false, "the pre-1.0 MD5 form (openssl x509 -subject_hash_old)")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(env, "want exactly one FILE")
	}
	cs, err := certs.ReadCertificates(fs.Arg(0))
	if err != nil {
		return fail(env, "%v", err)
	}
	for _, c := range cs {
		if *old {
			fmt.Fprintln(env.stdout, certs.HashName(certs.SubjectHashOld(c.RawSubject)))
			continue
		}
		h, err := certs.SubjectHash(c.RawSubject)
		if err != nil {
			return fail(env, "%s: %v", fs.Arg(0), err)
		}
		fmt.Fprintln(env.stdout, certs.HashName(h))
	}
	return exitOK
}

func certRehash(env *cliEnv, args []string) int {
	fs := newFlags(env, "DIR", "Link each certificate in DIR as HASH.N, as `openssl rehash` does.")
	verbose := fs.Bool("v", false, "print each link made")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(env, "want exactly one DIR")
	}
	links, err := certs.Rehash(fs.Arg(0), env.stderr)
	if err != nil {
		return fail(env, "%v", err)
	}
	if *verbose {
		for _, l := range links {
			fmt.Fprintf(env.stdout, "link %s -> %s\n", l.Name, l.Target)
		}
	}
	return exitOK
}

func certNewCA(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Make a CA certificate and key: DIR/ca.pem and DIR/ca.key (mode 0600).")
	out := fs.String("out", "", "directory to write ca.pem and ca.key into (required)")
	cn := fs.String("cn", "tlsmail dev CA", "the CA's common name")
	org := fs.String("o", "", "organisation name")
	rsaBits := fs.Int("rsa", 0, "make an RSA key of this many bits instead of ECDSA P-256")
	days := fs.Int("days", 3650, "validity in days")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if *out == "" || fs.NArg() != 0 {
		return usageError(env, "--out DIR is required and no arguments are taken")
	}
	subject := pkix.Name{CommonName: *cn}
	if *org != "" {
		subject.Organization = []string{*org}
	}
	ca, err := certs.NewCA(certs.Template{Subject: subject, RSABits: *rsaBits, Validity: time.Duration(*days) * 24 * time.Hour})
	if err != nil {
		return fail(env, "%v", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(env, "%v", err)
	}
	certPath, keyPath := filepath.Join(*out, "ca.pem"), filepath.Join(*out, "ca.key")
	if err := refuseOverwrite(certPath, keyPath); err != nil {
		return fail(env, "%v", err)
	}
	if err := ca.WriteFiles(certPath, keyPath); err != nil {
		return fail(env, "%v", err)
	}
	fmt.Fprintf(env.stdout, "wrote %s and %s\n", certPath, keyPath)
	return exitOK
}

func refuseOverwrite(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists; remove it first or choose another --out", p)
		}
	}
	return nil
}

func certIssue(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Issue a certificate signed by the CA in --ca: PREFIX.pem (with the CA appended) and PREFIX.key (0600).")
	caDir := fs.String("ca", "", "directory holding ca.pem and ca.key (required)")
	hosts := fs.String("host", "", "comma-separated DNS names, IP addresses or e-mail addresses")
	cn := fs.String("cn", "", "common name (default: the first host)")
	out := fs.String("out", "", "output prefix, e.g. tls/server (required)")
	client := fs.Bool("client", false, "a client certificate (clientAuth) instead of a server one")
	both := fs.Bool("server-and-client", false, "both serverAuth and clientAuth")
	rsaBits := fs.Int("rsa", 0, "make an RSA key of this many bits instead of ECDSA P-256")
	days := fs.Int("days", 825, "validity in days")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if *caDir == "" || *out == "" || fs.NArg() != 0 {
		return usageError(env, "--ca DIR and --out PREFIX are required and no arguments are taken")
	}
	var hostList []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hostList = append(hostList, h)
		}
	}
	if len(hostList) == 0 && *cn == "" {
		return usageError(env, "give --host or --cn")
	}
	ca, err := certs.LoadIssued(filepath.Join(*caDir, "ca.pem"), filepath.Join(*caDir, "ca.key"))
	if err != nil {
		return fail(env, "%v", err)
	}
	t := certs.Template{Subject: pkix.Name{CommonName: *cn}, Hosts: hostList, Client: *client || *both, Server: !*client || *both,
		RSABits: *rsaBits, Validity: time.Duration(*days) * 24 * time.Hour}
	leaf, err := certs.Issue(ca, t)
	if err != nil {
		return fail(env, "%v", err)
	}
	certPath, keyPath := *out+".pem", *out+".key"
	if err := refuseOverwrite(certPath, keyPath); err != nil {
		return fail(env, "%v", err)
	}
	// Like new-ca, make the directory of PREFIX (the key itself is 0600).
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fail(env, "%v", err)
	}
	if err := leaf.WriteFiles(certPath, keyPath, ca.Cert); err != nil {
		return fail(env, "%v", err)
	}
	fmt.Fprintf(env.stdout, "wrote %s and %s\n", certPath, keyPath)
	return exitOK
}

func certVerify(env *cliEnv, args []string) int {
	fs := newFlags(env, "FILE", "Verify the chain in FILE (leaf first) and say in words why it fails.\nWith neither --cafile nor --cadir the system trust store is used.")
	caFile := fs.String("cafile", "", "trusted CA certificates (PEM)")
	caDir := fs.String("cadir", "", "hashed CA directory (HASH.N links)")
	host := fs.String("host", "", "check that the certificate is valid for this name")
	purpose := fs.String("purpose", "server", "server, client or any")
	at := fs.String("at", "", "verify at this time (RFC 3339) instead of now")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(env, "want exactly one FILE")
	}
	p, ok := map[string]certs.Purpose{"server": certs.PurposeServer, "client": certs.PurposeClient, "any": certs.PurposeAny}[*purpose]
	if !ok {
		return usageError(env, "--purpose must be server, client or any")
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usageError(env, "--at: %v", err)
		}
		now = t
	}
	chain, err := certs.ReadCertificates(fs.Arg(0))
	if err != nil {
		return fail(env, "%v", err)
	}
	roots, err := certs.LoadCAs(*caFile, *caDir)
	if err != nil {
		return fail(env, "%v", err)
	}
	v := certs.Verify(chain, roots, *host, p, now)
	return reportVerification(env.stdout, fs.Arg(0), v.Verified, v.Reason)
}

func reportVerification(w io.Writer, path string, ok bool, reason string) int {
	if ok {
		fmt.Fprintf(w, "%s: OK: %s\n", path, reason)
		return exitOK
	}
	fmt.Fprintf(w, "%s: FAILED: %s\n", path, reason)
	return exitFail
}
