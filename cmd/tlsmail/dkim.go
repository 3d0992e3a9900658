package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/dnsplan"
	"github.com/tlsmail/tlsmail/internal/msgauth"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// runDKIM is `tlsmail dkim keygen DOMAIN SELECTOR [--rsa] [--data DIR]`.
func runDKIM(env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] != "keygen" {
		fmt.Fprintln(env.stderr, "usage: tlsmail dkim keygen [--rsa] [--data DIR] DOMAIN SELECTOR")
		return exitUsage
	}
	env.name = "tlsmail dkim keygen"
	fl := newFlags(env, "DOMAIN SELECTOR", "Make a DKIM signing key (Ed25519, or RSA-2048 with --rsa) in DIR/dkim/,\nreadable by its owner only, and print the [[dkim]] setting and the DNS TXT record to publish.\nRFC 8463 Ed25519 keys are small; not every verifier has them yet: sign with both (two selectors) to be safe.")
	useRSA := fl.Bool("rsa", false, "RSA-2048 instead of Ed25519")
	data := fl.String("data", "tlsmail-data", "the data directory the key goes under")
	pos, code, done := parseInterspersed(env, fl, args[1:])
	if done {
		return code
	}
	if len(pos) != 2 {
		return usageError(env, "want DOMAIN SELECTOR")
	}
	domain, selector := strings.ToLower(strings.TrimSuffix(pos[0], ".")), pos[1]
	if strings.ContainsAny(domain+selector, "/ @") || !strings.Contains(domain, ".") || selector == "" {
		return usageError(env, "bad DOMAIN or SELECTOR: want e.g. example.org 2026a")
	}
	kind := "ed25519"
	if *useRSA {
		kind = "rsa"
	}
	rel := filepath.Join("dkim", domain+"."+selector+"."+kind+".key")
	path := filepath.Join(*data, rel)
	if _, err := os.Stat(path); err == nil {
		return fail(env, "%s exists: choose a new selector for a new key (keys are rotated by selector)", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fail(env, "%v", err)
	}
	pemKey, key, err := msgauth.GenerateKey(*useRSA)
	if err != nil {
		return fail(env, "%v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fail(env, "%v", err)
	}
	if err := safeio.WriteFile(path, pemKey, 0o600); err != nil {
		return fail(env, "%v", err)
	}
	txt, err := msgauth.TXTRecord(key)
	if err != nil {
		return fail(env, "%v", err)
	}
	fmt.Fprintf(env.stdout, "# wrote %s; add to the configuration:\n[[dkim]]\ndomain = %q\nselector = %q\nkey = %q\n\n", path, domain, selector, rel)
	fmt.Fprintf(env.stdout, "# and publish in DNS:\n%s 3600 IN TXT %s\n", msgauth.RecordName(domain, selector), quotedTXT(txt))
	return exitOK
}

func quotedTXT(v string) string {
	var parts []string
	for _, s := range msgauth.SplitTXT(v) {
		parts = append(parts, fmt.Sprintf("%q", s))
	}
	return strings.Join(parts, " ")
}

// dkimKeys are the configured DKIM keys of domain, for `tlsmail dns`.
func dkimKeys(c *config.Config, domain string) ([]dnsplan.DKIMKey, error) {
	var out []dnsplan.DKIMKey
	for _, k := range c.DKIM {
		if k.Domain != domain {
			continue
		}
		key, err := msgauth.LoadKey(c.Path(k.Key))
		if err != nil {
			return nil, err
		}
		txt, err := msgauth.TXTRecord(key)
		if err != nil {
			return nil, err
		}
		out = append(out, dnsplan.DKIMKey{Selector: k.Selector, TXT: txt})
	}
	return out, nil
}
