package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/mail"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/pickup"
	"github.com/tlsmail/tlsmail/smtpclient"
)

const sendmailUsage = `usage: sendmail [-t] [-i] [-f sender] [-F name] [-v] [-C accounts.toml] [--account NAME] [--config FILE] [recipient ...]
       sendmail -bp [--config FILE]      (also: mailq)

A sendmail-compatible entry point: reads a message on stdin and relays it
through the default account of the accounts file (~/.config/tlsmail/send.toml,
else /etc/tlsmail/send.toml; $TLSMAIL_ACCOUNT picks another account).
Without an accounts file, or when the account's server cannot be reached
(a temporary failure), the message goes into the local server's mail drop
(DATA/pickup of --config FILE, else $TLSMAIL_CONFIG, else
/etc/tlsmail/tlsmail.toml), which the running server collects: no
credentials needed, and the message waits there while the server is down.
  -bp       list the mail drop and the queue (as mailq)
  -bi       newaliases: nothing to rebuild (aliases are the config's [aliases]); exits 0
  -bs       speak SMTP on stdin/stdout (as Symfony Mailer and other programs use it);
            each message is handed on before the reply to its final dot, which says how it went
  -t        take recipients from To, Cc and Bcc (Bcc is removed)
  -i, -oi   a line with a single "." does not end the message (-ti, -it: both)
  -f ADDR   envelope sender (also -r)
  -F NAME   full name for a From header that has to be added
  -N LIST   DSN NOTIFY (never, success, failure, delay)
  -v        print the SMTP transcript to stderr
Other -o, -B, -R, -V, -X options and -bm, -odi, -oem are accepted and ignored.
Exit codes are sysexits(3), as sendmail's.`

// sendmailArgs is a parsed sendmail command line.
type sendmailArgs struct {
	from, fullName, accounts, account, notify string
	config                                    string // the local server's configuration
	extract, dotOK, verbose, list, newaliases bool
	smtpStdio                                 bool // -bs
	rcpts                                     []string
}

// parseSendmail parses sendmail's option syntax (letters with attached or
// separate values; unknown legacy options are accepted).
func parseSendmail(args []string) (sendmailArgs, error) {
	var s sendmailArgs
	value := func(i *int, a string) (string, error) {
		if len(a) > 2 {
			return a[2:], nil
		}
		if *i+1 >= len(args) {
			return "", fmt.Errorf("option %s needs a value", a)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var err error
		switch {
		case a == "--":
			s.rcpts = append(s.rcpts, args[i+1:]...)
			return s, nil
		case !strings.HasPrefix(a, "-") || a == "-":
			s.rcpts = append(s.rcpts, a)
		case a == "-t":
			s.extract = true
		case len(a) > 2 && strings.Trim(a[1:], "tiv") == "":
			// Bundled flags, as getopt takes them (-ti, -it, -tv).
			s.extract = s.extract || strings.Contains(a, "t")
			s.dotOK = s.dotOK || strings.Contains(a, "i")
			s.verbose = s.verbose || strings.Contains(a, "v")
		case a == "-i" || a == "-oi":
			s.dotOK = true
		case a == "-v":
			s.verbose = true
		case strings.HasPrefix(a, "--account="):
			s.account = strings.TrimPrefix(a, "--account=")
		case a == "--account":
			s.account, err = value(&i, "--")
		case strings.HasPrefix(a, "--config="):
			s.config = strings.TrimPrefix(a, "--config=")
		case a == "--config":
			s.config, err = value(&i, "--")
		case a == "-bp":
			s.list = true
		case a == "-bi", a == "-I":
			s.newaliases = true
		case a == "-bs":
			s.smtpStdio = true
		case strings.HasPrefix(a, "-f"), strings.HasPrefix(a, "-r"):
			s.from, err = value(&i, a)
		case strings.HasPrefix(a, "-F"):
			s.fullName, err = value(&i, a)
		case strings.HasPrefix(a, "-C"):
			s.accounts, err = value(&i, a)
		case strings.HasPrefix(a, "-N"):
			s.notify, err = value(&i, a)
			s.notify = strings.ToUpper(s.notify)
		case strings.HasPrefix(a, "-B"), strings.HasPrefix(a, "-R"), strings.HasPrefix(a, "-V"), strings.HasPrefix(a, "-X"), strings.HasPrefix(a, "-L"):
			_, err = value(&i, a)
		case strings.HasPrefix(a, "-o"), a == "-bm", a == "-U", a == "-G", a == "-n", a == "-m", a == "-Am", a == "-Ac", a == "-em", a == "-ep", a == "-eq":
			// legacy options with no effect here
		case strings.HasPrefix(a, "-b"):
			return s, fmt.Errorf("mode %s is not supported (-bm sends a message, -bs speaks SMTP on stdin, -bp lists, -bi is newaliases)", a)
		default:
			return s, fmt.Errorf("unknown option %s", a)
		}
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

func runSendmail(env *cliEnv, args []string) int {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			fmt.Fprintln(env.stdout, sendmailUsage)
			return exitOK
		}
	}
	sa, err := parseSendmail(args)
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: %v\n", env.name, err)
		return exUsage
	}
	if sa.list || env.name == "mailq" {
		return sendmailList(env, sa)
	}
	if sa.newaliases || env.name == "newaliases" {
		// Package scripts run newaliases after editing /etc/aliases; here
		// aliases are the server config's [aliases], read at start and on
		// reload, so there is nothing to rebuild. Success, with a word.
		fmt.Fprintf(env.stderr, "%s: nothing to rebuild: tlsmail's aliases are the [aliases] table of its config (tlsmail import postfix reads /etc/aliases; reload with kill -HUP)\n", env.name)
		return exitOK
	}
	sm, code := newSendmailer(env, sa)
	if code != 0 {
		return code
	}
	if sa.smtpStdio {
		return sm.serveStdio(env, env.stdin, env.stdout)
	}
	msg, err := readSendmailInput(env.stdin, sa.dotOK)
	if err != nil {
		return failCode(env, exNoInput, "reading the message: %v", err)
	}
	hdr, _ := mail.ReadMessage(bytes.NewReader(msg))
	rcpts := sa.rcpts
	if sa.extract {
		if hdr == nil {
			return failCode(env, exDataErr, "-t: the message has no header to take recipients from")
		}
		for _, h := range []string{"To", "Cc", "Bcc"} {
			list, err := headerRecipients(hdr.Header, h)
			if err != nil {
				return failCode(env, exDataErr, "-t: %v", err)
			}
			rcpts = append(rcpts, list...)
		}
		msg = removeHeader(msg, "Bcc")
	}
	if len(rcpts) == 0 {
		fmt.Fprintf(env.stderr, "%s: no recipients (give them as arguments or use -t)\n", env.name)
		return exUsage
	}
	return sm.handOn(env, sa.from, sa.from != "", rcpts, msg)
}

// sendmailer hands messages on as sendmail does: through an account's
// server, or into the local server's mail drop.
type sendmailer struct {
	sa      sendmailArgs
	req     sendRequest // the account's settings, a template per message
	viaSMTP bool
	drop    *localDrop // the mail drop when not viaSMTP
}

// newSendmailer picks the way: SMTP through an account when one is
// configured; else the local server's mail drop (no credentials), as
// Postfix's sendmail always does. The server's configuration is read only
// for the drop: an account works for a user who cannot read it.
func newSendmailer(env *cliEnv, sa sendmailArgs) (*sendmailer, int) {
	sm := &sendmailer{sa: sa, req: sendRequest{verbose: sa.verbose, timeout: 10 * time.Minute, quiet: true}}
	account := sa.account
	if account == "" {
		account = env.getenv("TLSMAIL_ACCOUNT")
	}
	sm.viaSMTP = sa.accounts != "" || account != "" || fileExists(config.DefaultAccountsFile())
	if !sm.viaSMTP {
		var code int
		if sm.drop, code = localDropFor(env, sa.config); code != 0 {
			return nil, code
		}
		if sm.drop == nil {
			// Neither a local mail drop nor an account: say both, with
			// the configuration this run looked at (unreadable, in which
			// case localDropFor said why, or absent).
			where, named := dropConfigFile(env, sa.config)
			if !named {
				where += "; give --config FILE or set $TLSMAIL_CONFIG"
			}
			return nil, failCode(env, exConfig, "nowhere to send: no local mail drop (%s) and no accounts file (~/.config/tlsmail/send.toml or /etc/tlsmail/send.toml; or give -C FILE)", where)
		}
		return sm, 0
	}
	if code := applyAccount(env, &sm.req, sa.accounts, account, false); code != 0 {
		return nil, code
	}
	return sm, 0
}

// handOn sends one message to rcpts and returns the exit code sendmail
// would. The sender is from when fromGiven (-f; MAIL FROM with -bs, where
// "" is the null sender <> of a bounce), else the account's from, else
// the message's From header, else the local user. Bcc and Resent-Bcc
// fields are removed, whichever way the recipients came (Postfix's
// message_drop_headers).
func (sm *sendmailer) handOn(env *cliEnv, from string, fromGiven bool, rcpts []string, msg []byte) int {
	msg = removeHeader(removeHeader(msg, "Bcc"), "Resent-Bcc")
	hdr, _ := mail.ReadMessage(bytes.NewReader(msg))
	req := sm.req // req.from: the account's sender, if it has one
	if fromGiven {
		req.from = from
	}
	if !fromGiven && req.from == "" && hdr != nil {
		if list, err := hdr.Header.AddressList("From"); err == nil && len(list) > 0 {
			req.from = list[0].Address
		}
	}
	if !fromGiven && req.from == "" && !sm.viaSMTP {
		req.from = sm.drop.localSender(env)
	}
	if !fromGiven && req.from == "" {
		return failCode(env, exUsage, "no sender: give -f or set from in the account")
	}
	// A From header to add, if the message has none: the sender, or for
	// the null sender the account's or the local user's address.
	headerFrom := req.from
	if headerFrom == "" {
		if headerFrom = sm.req.from; headerFrom == "" && !sm.viaSMTP {
			headerFrom = sm.drop.localSender(env)
		}
	}
	rcpts = slices.Clone(rcpts)
	if sm.viaSMTP {
		// A bare name (cron's MAILTO=root) is a user of this host's mail
		// domain, the local server's origin (as the drop path and Postfix's
		// append_at_myorigin qualify it). Not the account's domain: with a
		// provider's account that would mail root@provider, a stranger.
		// With no local server configuration to say, it is refused.
		origin := ""
		for i, r := range rcpts {
			if !bareLocalName(r) {
				continue
			}
			if origin == "" {
				d, _ := findLocalDrop(env, sm.sa.config)
				if d == nil {
					return failCode(env, exUsage, "recipient %q has no domain, and no local server configuration (--config, $TLSMAIL_CONFIG or %s) gives one: give user@domain", r, defaultServerConfig)
				}
				origin = d.origin()
			}
			rcpts[i] = r + "@" + origin
		}
	}
	msg = addMissingHeaders(msg, hdr, headerFrom, sm.sa.fullName)
	req.rcpts = rcpts
	req.message = msg
	req.notify = sm.sa.notify
	if !sm.viaSMTP {
		return sm.drop.submit(env, req.from, req.rcpts, req.notify, req.message)
	}
	if code := obtainPassword(env, &req, ""); code != 0 {
		return code
	}
	sm.req.password = req.password // once per run, not per message
	var unreached bool
	req.unreached = &unreached
	code := deliver(env, req)
	if code == exTempFail && unreached {
		// The server cannot be reached now (nothing was sent): keep the
		// message locally if there is a local server. A 4xx after the
		// connection is left to the caller, as some recipients may have
		// it already.
		if drop, dcode := localDropFor(env, sm.sa.config); drop != nil && dcode == 0 {
			if code = drop.submit(env, req.from, req.rcpts, req.notify, req.message); code == exitOK {
				fmt.Fprintf(env.stderr, "%s: the message waits in the local mail drop %s for the server\n", env.name, drop.dir)
			}
		}
	}
	return code
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readSendmailInput reads the message; without -i a line holding a single
// "." ends it, as in sendmail.
func readSendmailInput(r io.Reader, dotOK bool) ([]byte, error) {
	if dotOK {
		return io.ReadAll(r)
	}
	var out bytes.Buffer
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if strings.TrimRight(line, "\r\n") == "." {
			return out.Bytes(), nil
		}
		out.WriteString(line)
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// removeHeader deletes every field named name (with its continuation
// lines) from the message header.
func removeHeader(msg []byte, name string) []byte {
	end := pickup.HeaderEnd(msg)
	if end < 0 {
		end = len(msg)
	}
	var out bytes.Buffer
	skipping := false
	lines := bytes.SplitAfter(msg[:end], []byte("\n"))
	for _, l := range lines {
		if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
			if !skipping {
				out.Write(l)
			}
			continue
		}
		k, _, _ := bytes.Cut(l, []byte(":"))
		skipping = strings.EqualFold(strings.TrimSpace(string(k)), name)
		if !skipping {
			out.Write(l)
		}
	}
	out.Write(msg[end:])
	return out.Bytes()
}

// addMissingHeaders adds From, Date and Message-ID when the message lacks them.
func addMissingHeaders(msg []byte, hdr *mail.Message, from, fullName string) []byte {
	var add bytes.Buffer
	has := func(k string) bool { return hdr != nil && hdr.Header.Get(k) != "" }
	if !has("From") && from != "" {
		a := mail.Address{Name: fullName, Address: from}
		fmt.Fprintf(&add, "From: %s\r\n", a.String())
	}
	if !has("Date") {
		fmt.Fprintf(&add, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	}
	if !has("Message-ID") {
		fmt.Fprintf(&add, "Message-ID: %s\r\n", smtpclient.NewMessageID(from))
	}
	if hdr == nil {
		// No header at all: the input is all body.
		add.WriteString("\r\n")
	}
	return append(add.Bytes(), msg...)
}

// headerRecipients returns the addresses of a To/Cc/Bcc header for -t. A
// bare local name ("To: root", "To: Admin <root>"), which cron and
// logwatch write and RFC 5322 parsers refuse, is taken as it is (the mail
// drop's collector qualifies it with the first local domain, as Postfix's
// append_at_myorigin; through an SMTP account, sendmail does the same). A part that is neither is an error naming the
// header, never silently dropped.
//
// Every field of that name counts (a second Bcc: line too), as all are
// removed.
func headerRecipients(h mail.Header, name string) ([]string, error) {
	var out []string
	for _, v := range h[textproto.CanonicalMIMEHeaderKey(name)] {
		list, err := fieldRecipients(name, v)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return out, nil
}

// fieldRecipients is headerRecipients for one field's value v.
func fieldRecipients(name, v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	if list, err := mail.ParseAddressList(v); err == nil {
		out := make([]string, 0, len(list))
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out, nil
	}
	var out []string
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if a, err := mail.ParseAddress(part); err == nil {
			out = append(out, a.Address)
			continue
		}
		local := part
		if i, j := strings.LastIndex(part, "<"), strings.LastIndex(part, ">"); i >= 0 && j > i {
			local = strings.TrimSpace(part[i+1 : j])
		}
		if !bareLocalName(local) {
			return nil, fmt.Errorf("%s: cannot read the address %q", name, part)
		}
		out = append(out, local)
	}
	return out, nil
}

// bareLocalName reports whether s is a local part without a domain, such
// as root or mail-admin (the drop's collector, or sendmail itself for an
// SMTP account, qualifies it).
func bareLocalName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_+=", c)) {
			return false
		}
	}
	return true
}
