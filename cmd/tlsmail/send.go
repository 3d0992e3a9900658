package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// sysexits(3) codes used by send and sendmail.
const (
	exUsage       = 64
	exDataErr     = 65
	exNoInput     = 66
	exUnavailable = 69
	exSoftware    = 70
	exTempFail    = 75
	exProtocol    = 76
	exNoPerm      = 77
	exConfig      = 78
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// sendRequest is everything needed to send, from flags, account and stdin.
type sendRequest struct {
	server     string
	mode       string
	user       string
	password   string
	mechanism  string
	caFile     string
	insecure   bool
	verbose    bool
	asJSON     bool
	timeout    time.Duration
	from       string
	rcpts      []string
	message    []byte
	allowPlain bool
	quiet      bool   // no summary line (sendmail is silent on success)
	notify     string // DSN NOTIFY for every recipient
	// allOrNone: the message goes to every recipient or to none (send);
	// sendmail delivers to those accepted, as a queueing sendmail does.
	allOrNone bool
	// diag, if set, takes the -v transcript and password_command's
	// stderr instead of the error stream (sendmail -bs turns that stream
	// into its replies).
	diag io.Writer
	// The account's password sources, tried after --password-file and
	// $TLSMAIL_PASSWORD.
	accPasswordFile, accPasswordCommand string
	caFileFrom                          string // where caFile was named, for errors: "--cafile" or the account's
	// unreached, if set, is set true when the connection or greeting
	// failed, so nothing can have been delivered (sendmail's mail drop
	// fallback must not duplicate mail some recipients already got).
	unreached *bool
}

func runSend(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Send a message over TLS. The body comes from stdin unless --body or --message is given.\nThe message goes to every recipient or to none: exit 0 means all have it, any other exit that none has\n(but when the connection broke after the whole message went out: then it says so).\nThe password comes from --password-file, $TLSMAIL_PASSWORD, the account's password_file or password_command, or a prompt — never the command line.")
	var to, cc, bcc, attach, headers listFlag
	server := fs.String("server", "", "SMTP server host[:port] (default port 587, or 465 with --tls implicit)")
	mode := fs.String("tls", "", "implicit, starttls, opportunistic or none (default: by port; 465 implicit, else starttls, or implicit when the server does not greet within 3s)")
	user := fs.String("user", "", "AUTH user name")
	pwFile := fs.String("password-file", "", "file whose first line is the password")
	mech := fs.String("auth", "", "AUTH mechanism to use (default: the strongest offered)")
	from := fs.String("from", "", "sender address (envelope and From header)")
	fs.Var(&to, "to", "recipient (repeatable)")
	fs.Var(&cc, "cc", "Cc recipient (repeatable)")
	fs.Var(&bcc, "bcc", "Bcc recipient, envelope only (repeatable)")
	subject := fs.String("subject", "", "subject")
	fs.Var(&attach, "attach", "attach a file (repeatable)")
	fs.Var(&headers, "header", `extra header "Name: value" (repeatable; one named Subject, From, Date, Message-ID, Reply-To replaces tlsmail's)`)
	body := fs.String("body", "", "file with the text body (default: stdin)")
	html := fs.String("html", "", "file with an HTML body")
	message := fs.String("message", "", "send this ready RFC 5322 message file as it is (its Bcc header removed, its addresses added to the recipients)")
	caFile := fs.String("cafile", "", "trust these CA certificates instead of the system's")
	insecure := fs.Bool("insecure", false, "do not verify the server certificate (DANGEROUS; says so loudly)")
	verbose := fs.Bool("v", false, "print the SMTP transcript (credentials redacted) to stderr")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	account := fs.String("account", "", "account from the accounts file")
	accounts := fs.String("accounts", "", "accounts file (default ~/.config/tlsmail/send.toml)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	allowPlain := fs.Bool("allow-plaintext-auth", false, "allow AUTH without TLS (only with --tls none, for test servers)")
	quiet := fs.Bool("q", false, "print nothing on success (for cron)")
	if code, done := parse(env, fs, args); done {
		if code == exitUsage {
			return exUsage // the README's sysexits, as sendmail's
		}
		return code
	}
	if fs.NArg() > 0 {
		return sendUsageError(env, "unexpected argument %q (recipients go in --to)", fs.Arg(0))
	}
	if *mech != "" && !validMechanism(*mech) {
		return sendUsageError(env, "--auth %q: want PLAIN, LOGIN, CRAM-MD5 or XOAUTH2", *mech)
	}
	if *message != "" {
		// The file goes as it is: composing flags would be ignored.
		var ignored []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "subject", "attach", "header", "body", "html", "cc":
				ignored = append(ignored, "--"+f.Name)
			}
		})
		if len(ignored) > 0 {
			return sendUsageError(env, "--message sends the file as it is: %s would be ignored (put them in the file; envelope-only recipients go in --to or --bcc)", strings.Join(ignored, ", "))
		}
	}
	req := sendRequest{server: *server, mode: *mode, user: *user, mechanism: *mech, caFile: *caFile, insecure: *insecure,
		verbose: *verbose, asJSON: *asJSON, timeout: *timeout, from: *from, allowPlain: *allowPlain, quiet: *quiet, allOrNone: true}
	if code := applyAccount(env, &req, *accounts, *account, *server != ""); code != 0 {
		return code
	}
	if req.server == "" {
		return sendUsageError(env, "no --server and no account")
	}
	if req.from == "" {
		return sendUsageError(env, "no --from")
	}
	req.rcpts = append(append(append(req.rcpts, to...), cc...), bcc...)
	if len(req.rcpts) == 0 {
		return sendUsageError(env, "no recipients (--to, --cc, --bcc)")
	}
	// "Name <addr>" as mailx and msmtp take it: the header keeps it all
	// (Compose), the envelope gets addr.
	headerFrom := req.from
	var err error
	if req.from, err = envelopeAddress(req.from); err != nil {
		return sendUsageError(env, "--from: %v", err)
	}
	for i, a := range req.rcpts {
		if req.rcpts[i], err = envelopeAddress(a); err != nil {
			return sendUsageError(env, "recipient: %v", err)
		}
	}
	if *message != "" {
		b, err := os.ReadFile(*message)
		if err != nil {
			return failCode(env, exNoInput, "%v", err)
		}
		// Bcc recipients go in the envelope, and the header goes: it
		// would show them to everyone (msmtp's remove_bcc_headers,
		// sendmail -t); Resent-Bcc likewise leaves the header.
		if hdr, err := mail.ReadMessage(bytes.NewReader(b)); err == nil {
			bccs, err := headerRecipients(hdr.Header, "Bcc")
			if err != nil {
				return failCode(env, exDataErr, "--message %s: %v", *message, err)
			}
			for _, a := range bccs {
				if !slices.Contains(req.rcpts, a) {
					req.rcpts = append(req.rcpts, a)
				}
			}
		}
		req.message = removeHeader(removeHeader(b, "Bcc"), "Resent-Bcc")
	} else {
		m := smtpclient.Message{From: headerFrom, To: to, Cc: cc, Subject: *subject}
		text, err := readBody(env, *body)
		if err != nil {
			return failCode(env, exNoInput, "%v", err)
		}
		m.Text = text
		if *html != "" {
			b, err := os.ReadFile(*html)
			if err != nil {
				return failCode(env, exNoInput, "%v", err)
			}
			m.HTML = string(b)
		}
		for _, a := range attach {
			b, err := os.ReadFile(a)
			if err != nil {
				return failCode(env, exNoInput, "attachment: %v", err)
			}
			m.Attachments = append(m.Attachments, smtpclient.Attachment{Name: a, Data: b})
		}
		for _, h := range headers {
			k, v, ok := strings.Cut(h, ":")
			if !ok {
				return sendUsageError(env, "--header %q: want \"Name: value\"", h)
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "to", "cc", "bcc":
				// The envelope comes from the flags: a header alone
				// would show recipients who never get the message.
				return sendUsageError(env, "--header %q: recipients go in --to, --cc or --bcc", h)
			}
			m.Headers = append(m.Headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		}
		raw, err := smtpclient.Compose(m)
		if err != nil {
			return failCode(env, exDataErr, "%v", err)
		}
		req.message = raw
	}
	if code := obtainPassword(env, &req, *pwFile); code != 0 {
		return code
	}
	return deliver(env, req)
}

// envelopeAddress is the address of "Name <addr>", "<addr>" or "addr",
// as written (net/mail's Address would unquote a quoted local part).
func envelopeAddress(s string) (string, error) {
	if _, err := mail.ParseAddress(s); err != nil {
		return "", fmt.Errorf("%q is not an address (%v)", s, err)
	}
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		s = strings.TrimSpace(s[i+1 : len(s)-1])
	}
	return s, nil
}

func readBody(env *cliEnv, file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		return string(b), err
	}
	b, err := io.ReadAll(env.stdin)
	return string(b), err
}

// applyAccount fills the request from the accounts file. Flags win.
func applyAccount(env *cliEnv, req *sendRequest, file, name string, serverGiven bool) int {
	if file == "" {
		if serverGiven && name == "" {
			return 0 // everything from flags
		}
		file = config.DefaultAccountsFile()
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) && !serverGiven {
			what := "no --server"
			if name != "" {
				what = fmt.Sprintf("account %q asked for", name)
			}
			return failCode(env, exConfig, "%s, and no accounts file ($XDG_CONFIG_HOME or ~/.config/tlsmail/send.toml, or %s; --accounts FILE names another)", what, file)
		}
	}
	accs, err := config.LoadAccounts(file)
	if errors.Is(err, config.ErrNoAccounts) && name == "" && serverGiven {
		return 0
	}
	if err != nil {
		return failCode(env, exConfig, "%v", err)
	}
	acc, err := accs.Pick(name)
	if err != nil {
		return failCode(env, exConfig, "%v", err)
	}
	set := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	set(&req.server, acc.Server)
	set(&req.mode, acc.TLS)
	set(&req.user, acc.User)
	set(&req.from, acc.From)
	if req.caFile == "" && acc.CAFile != "" {
		req.caFile, req.caFileFrom = acc.CAFile, accs.File+": cafile"
	}
	set(&req.mechanism, acc.Auth)
	req.insecure = req.insecure || acc.Insecure
	req.accPasswordFile, req.accPasswordCommand = acc.PasswordFile, acc.PasswordCommand
	return 0
}

func firstLine(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return firstLineOf(string(b)), nil
}

// firstLineOf is s up to its first line end (LF or CRLF).
func firstLineOf(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r")
}

// diagWriter is where diagnostics go: req.diag, else the error stream.
func (req sendRequest) diagWriter(env *cliEnv) io.Writer {
	if req.diag != nil {
		return req.diag
	}
	return env.stderr
}

// obtainPassword: --password-file, $TLSMAIL_PASSWORD, the account's
// password_file, then its password_command, a prompt — the first that is
// given; the ones after it are not looked at (a failing password_command
// does not stop a send that has its password from the environment).
func obtainPassword(env *cliEnv, req *sendRequest, file string) int {
	if req.user == "" {
		return 0
	}
	fromFile := func(what, path string) int {
		pw, err := firstLine(path)
		if err != nil {
			return failCode(env, exNoInput, "%s: %v", what, err)
		}
		if pw == "" {
			return failCode(env, exNoInput, "%s %s: the file is empty (the password is its first line)", what, path)
		}
		req.password = pw
		return 0
	}
	if file != "" {
		if code := fromFile("--password-file", file); code != 0 {
			return code
		}
	}
	if req.password == "" {
		req.password = env.getenv("TLSMAIL_PASSWORD")
	}
	if req.password == "" && req.accPasswordFile != "" {
		if code := fromFile("password_file", req.accPasswordFile); code != 0 {
			return code
		}
	}
	if req.password == "" && req.accPasswordCommand != "" {
		// Its stderr is the user's (gpg, pass and pinentry talk there);
		// its stdin is not: that is the message.
		// The command is not named in messages: it may hold a secret
		// (gpg --passphrase ...).
		cmd := exec.Command("sh", "-c", req.accPasswordCommand)
		cmd.Stderr = req.diagWriter(env)
		out, err := cmd.Output()
		if err != nil {
			return failCode(env, exConfig, "the account's password_command failed: %v", err)
		}
		req.password = firstLineOf(string(out))
		if req.password == "" {
			return failCode(env, exConfig, "the account's password_command printed no password")
		}
	}
	if req.password == "" {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil || !term.IsTerminal(int(tty.Fd())) {
			return failCode(env, exUsage, "no password: give --password-file, $TLSMAIL_PASSWORD or an account password_command")
		}
		defer tty.Close()
		fmt.Fprintf(tty, "Password for %s at %s: ", req.user, req.server)
		pw, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return failCode(env, exUsage, "no password: %v", err)
		}
		req.password = string(pw)
	}
	return 0
}

// sendUsageError is usageError with sysexits' EX_USAGE (64), the exit
// code scripts calling `tlsmail send` (or sendmail) expect.
func sendUsageError(env *cliEnv, format string, a ...any) int {
	usageError(env, format, a...)
	return exUsage
}

// deliver connects and sends, and maps the outcome to an exit code.
func deliver(env *cliEnv, req sendRequest) int {
	addr, mode, err := serverAndMode(req.server, req.mode)
	if err != nil {
		return sendUsageError(env, "%v", err)
	}
	opts := smtpclient.Options{Mode: mode, InsecureSkipVerify: req.insecure, AllowInsecureAuth: req.allowPlain}
	if req.insecure {
		fmt.Fprintf(env.stderr, "%s: WARNING: --insecure: the server certificate is NOT verified; anyone on the path can read this mail and the password\n", env.name)
	}
	if req.caFile != "" {
		from := req.caFileFrom
		if from == "" {
			from = "--cafile"
		}
		pem, err := os.ReadFile(req.caFile)
		if err != nil {
			return failCode(env, exNoInput, "%s: %v", from, err)
		}
		opts.RootCAs = x509.NewCertPool()
		if !opts.RootCAs.AppendCertsFromPEM(pem) {
			return failCode(env, exConfig, "%s %s: no certificates in it", from, req.caFile)
		}
	}
	if req.user != "" {
		opts.Auth = &smtpclient.Auth{Username: req.user, Password: req.password}
		if req.mechanism != "" {
			opts.Auth.Mechanisms = []string{strings.ToUpper(req.mechanism)}
		}
	}
	if req.verbose {
		opts.Transcript = req.diagWriter(env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), req.timeout)
	defer cancel()
	c, err := smtpclient.Dial(ctx, addr, opts)
	if err != nil {
		if req.unreached != nil {
			*req.unreached = true
		}
		if req.asJSON {
			// Connect, TLS and AUTH failures too: a script reads one
			// object whatever happened.
			_ = jsonEncoder(env.stdout).Encode(struct {
				Server   string `json:"server"`
				Accepted int    `json:"accepted"`
				Error    string `json:"error"`
			}{addr, 0, err.Error()})
		}
		return sendFailure(env, err, req, ctx.Err() != nil)
	}
	defer c.Close()
	if c.ImplicitDetected() {
		fmt.Fprintf(env.stderr, "%s: note: %s did not greet and speaks TLS first: sent with implicit TLS (--tls implicit skips the wait)\n", env.name, addr)
	}
	res, err := c.SendBytes(ctx, smtpclient.Envelope{From: req.from, To: req.rcpts, Notify: req.notify, AllOrNone: req.allOrNone}, req.message)
	_ = c.Quit()
	// The whole message went out and the server's reply to it never
	// came: it may have it, so a retry can duplicate.
	unknown := err != nil && res != nil && res.Bytes > 0 && res.Final == nil
	if req.asJSON && res != nil {
		out := struct {
			*smtpclient.Result
			Error string `json:"error,omitempty"`
			// OutcomeUnknown: the message went out whole and the reply
			// to it never came; the server may have it.
			OutcomeUnknown bool `json:"outcome_unknown,omitempty"`
		}{Result: res, OutcomeUnknown: unknown}
		if err != nil {
			out.Error = err.Error()
		}
		_ = jsonEncoder(env.stdout).Encode(out)
	}
	var refused *smtpclient.ReplyError
	if err != nil && !(errors.As(err, &refused) && refused.Stage == "RCPT") {
		if unknown && !req.asJSON {
			fmt.Fprintf(env.stderr, "%s: the message was sent but the server's reply to it never came: it may have been delivered\n", env.name)
		}
		return sendFailure(env, err, req, ctx.Err() != nil)
	}
	// Each refused recipient once, with its reply; the exit code is the
	// worst of them.
	worst := 0
	for _, r := range res.Recipients {
		if !r.Accepted {
			code := exUnavailable
			if r.Reply == nil {
				fmt.Fprintf(env.stderr, "%s: <%s>: no reply\n", env.name, r.Addr)
				code = exTempFail
			} else {
				fmt.Fprintf(env.stderr, "%s: refused <%s>: %s\n", env.name, r.Addr, r.Reply)
				if r.Reply.Temporary() {
					code = exTempFail
				}
			}
			worst = max(worst, code)
		}
	}
	if err != nil {
		if req.allOrNone && len(res.Recipients) > 1 {
			fmt.Fprintf(env.stderr, "%s: nothing sent: the message goes to all its recipients or to none\n", env.name)
		}
		return worst
	}
	if !req.asJSON && !req.quiet {
		n := fmt.Sprintf("%d recipients", res.Accepted)
		if res.Accepted == 1 {
			n = "1 recipient"
		}
		if res.Accepted < len(res.Recipients) {
			n = fmt.Sprintf("%d of %d recipients", res.Accepted, len(res.Recipients))
		}
		fmt.Fprintf(env.stdout, "sent to %s via %s %s\n", n, addr, res.TLS.Summary())
	}
	return worst
}

// serverAndMode adds the default port and picks the mode.
func serverAndMode(server, mode string) (string, smtpclient.Mode, error) {
	var m smtpclient.Mode
	switch mode {
	case "":
	case "implicit", "starttls", "opportunistic":
		m = smtpclient.Mode(mode)
	case "none", "plain":
		m = smtpclient.Plain
	default:
		return "", "", fmt.Errorf("--tls %q: want implicit, starttls, opportunistic or none", mode)
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		host, port = server, "587"
		if m == smtpclient.Implicit {
			port = "465"
		}
	}
	// No mode: smtpclient picks by port (465 implicit, else STARTTLS) and
	// tries implicit TLS too when the server does not greet.
	return net.JoinHostPort(host, port), m, nil
}

// validMechanism reports whether --auth names a mechanism smtpclient has.
func validMechanism(m string) bool {
	switch strings.ToUpper(m) {
	case "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2":
		return true
	}
	return false
}

// sendFailure prints one line and returns the sysexits code.
func sendFailure(env *cliEnv, err error, req sendRequest, timedOut bool) int {
	var re *smtpclient.ReplyError
	var te *smtpclient.TLSError
	var ae *smtpclient.AuthError
	var ne *smtpclient.NetError
	switch {
	case timedOut:
		return failCode(env, exTempFail, "%v (gave up after --timeout %s)", err, req.timeout)
	case errors.As(err, &te):
		if req.caFile == "" && !req.insecure && strings.Contains(te.Reason, "unknown issuer") {
			return failCode(env, exProtocol, "%v (a private CA: --cafile FILE trusts it)", err)
		}
		return failCode(env, exProtocol, "%v", err)
	case errors.As(err, &ae) && ae.NoTLS:
		// The library names its option; the command line has a flag.
		return failCode(env, exNoPerm, "refusing to send credentials over a connection without TLS (--allow-plaintext-auth allows it, for test servers)")
	case errors.As(err, &ae) && ae.Temporary():
		return failCode(env, exTempFail, "%v", err) // 454: try again later
	case errors.As(err, &ae):
		return failCode(env, exNoPerm, "%v", err)
	case errors.As(err, &re):
		if re.Temporary() {
			return failCode(env, exTempFail, "%v", err)
		}
		return failCode(env, exUnavailable, "%v", err)
	case errors.As(err, &ne):
		return failCode(env, exTempFail, "%v", err)
	}
	return failCode(env, exSoftware, "%v", err)
}

// failCode prints a one-line error and returns code.
func failCode(env *cliEnv, code int, format string, a ...any) int {
	fail(env, format, a...)
	return code
}
