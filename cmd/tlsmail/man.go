package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/config"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// The manual pages are rendered from what the commands print for -h and
// from the configuration schema (config.Schema), so the two never drift:
// `tlsmail man --out DIR` writes them, the Debian package and `make
// install` install them, and the tests run mandoc -T lint on them.

// manPages names each page and how to render it.
func manPages() []struct {
	file   string
	render func(m *mdoc)
} {
	return []struct {
		file   string
		render func(m *mdoc)
	}{
		{"tlsmail.8", manTlsmail},
		{"tlsmail.toml.5", manConfig},
		{"tlsmail-send.1", func(m *mdoc) {
			manFromHelp(m, "tlsmail-send", "1", "send a message over TLS (submission client)", []string{"tlsmail", "send", "-h"}, manSendSections)
		}},
		{"sslserver.1", func(m *mdoc) {
			manFromHelp(m, "sslserver", "1", "UCSPI-SSL compatible TLS server wrapper", []string{"sslserver", "-h"}, nil)
		}},
		{"sslclient.1", func(m *mdoc) {
			manFromHelp(m, "sslclient", "1", "UCSPI-SSL compatible TLS client wrapper", []string{"sslclient", "-h"}, nil)
		}},
	}
}

func runMan(env *cliEnv, args []string) int {
	fs := newFlags(env, "[PAGE]", "Write the manual pages (mdoc), rendered from the commands' help text and the\n"+
		"configuration schema: tlsmail.8, tlsmail.toml.5, tlsmail-send.1, sslserver.1,\n"+
		"sslclient.1 into --out DIR, or one PAGE to stdout (read it with man -l -).")
	out := fs.String("out", "", "directory for all pages")
	gz := fs.Bool("gzip", false, "write PAGE.gz (as Debian installs them)")
	if code, done := parse(env, fs, args); done {
		return code
	}
	pages := manPages()
	if *out == "" {
		if fs.NArg() != 1 {
			return usageError(env, "want --out DIR or one PAGE")
		}
		for _, p := range pages {
			if p.file == fs.Arg(0) {
				m := &mdoc{}
				p.render(m)
				fmt.Fprint(env.stdout, m.String())
				return exitOK
			}
		}
		return usageError(env, "no page %q", fs.Arg(0))
	}
	for _, p := range pages {
		m := &mdoc{}
		p.render(m)
		data, name := []byte(m.String()), p.file
		if *gz {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
			zw.Write(data)
			zw.Close()
			data, name = b.Bytes(), name+".gz"
		}
		sect := name[strings.LastIndexByte(p.file, '.')+1:][:1]
		dir := filepath.Join(*out, "man"+sect)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(env, "%v", err)
		}
		if err := safeio.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fail(env, "%v", err)
		}
	}
	return exitOK
}

// mdoc builds an mdoc(7) page.
type mdoc struct{ b strings.Builder }

func (m *mdoc) String() string { return m.b.String() }

// macro writes a macro line; its arguments are quoted where needed. A
// paragraph break right after a heading is left out (mandoc -T lint).
func (m *mdoc) macro(name string, args ...string) {
	if name == "Pp" {
		s := m.b.String()
		last := s[strings.LastIndexByte(strings.TrimSuffix(s, "\n"), '\n')+1:]
		if strings.HasPrefix(last, ".Sh ") || strings.HasPrefix(last, ".Ss ") || last == ".Pp\n" {
			return
		}
	}
	m.b.WriteString("." + name)
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"") {
			a = `"` + strings.ReplaceAll(escapeRoff(a), `"`, `\(dq`) + `"`
		} else {
			a = escapeRoff(a)
		}
		m.b.WriteString(" " + a)
	}
	m.b.WriteString("\n")
}

var sentenceEnd = regexp.MustCompile(`([A-Za-z0-9)"'][.?!]) +([^ ])`)

// text writes running text, a new line for each sentence (roff's rule),
// each line escaped so that none starts a request.
// tagList is a tagged list (.Bl -tag): each item's tag set with the
// macro tagMacro (Pa, Ev, Cm, ...), then its text.
func (m *mdoc) tagList(tagMacro string, items [][2]string) {
	m.macro("Bl", "-tag", "-width", "Ds")
	for _, it := range items {
		m.macro("It", tagMacro, it[0])
		m.text(it[1])
	}
	m.macro("El")
}

func (m *mdoc) text(s string) {
	s = sentenceEnd.ReplaceAllString(strings.TrimSpace(s), "$1\n$2")
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		l = escapeRoff(l)
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		m.b.WriteString(l + "\n")
	}
}

// literal writes an indented display kept as is (a display breaks the
// paragraph itself: a .Pp just before it is dropped).
func (m *mdoc) literal(lines []string) {
	if s := m.b.String(); strings.HasSuffix(s, "\n.Pp\n") {
		m.b.Reset()
		m.b.WriteString(strings.TrimSuffix(s, ".Pp\n"))
	}
	m.macro("Bd", "-literal", "-offset", "indent")
	for _, l := range lines {
		l = escapeRoff(strings.TrimRight(l, " \t"))
		if l == "" {
			m.b.WriteString(".Pp\n") // mandoc: no blank lines in a display
			continue
		}
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		m.b.WriteString(l + "\n")
	}
	m.macro("Ed")
}

func escapeRoff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "\t", " ")
	return strings.NewReplacer("—", `\(em`, "–", `\(en`, "…", `\&...`, "→", `\(->`).Replace(s)
}

// header starts a page.
func (m *mdoc) header(name, section, desc string) {
	m.b.WriteString(".\\\" Generated by `tlsmail man` from the help text; do not edit.\n")
	m.macro("Dd", manDate())
	m.macro("Dt", strings.ToUpper(name), section)
	m.macro("Os", "tlsmail")
	m.macro("Sh", "NAME")
	m.macro("Nm", name)
	m.macro("Nd", desc)
}

// manDate is the commit date the binary was built from (so a rebuild of
// the same commit makes the same pages), else today.
func manDate() string {
	t := time.Now()
	if v := buildVersion(); v.Time != "" {
		if ct, err := time.Parse(time.RFC3339, v.Time); err == nil {
			t = ct
		}
	}
	return t.Format("January 2, 2006")
}

// captureHelp runs a command line in-process and returns its stdout.
func captureHelp(argv []string) string {
	var out, errb bytes.Buffer
	env := &cliEnv{name: "tlsmail", stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	run(env, argv)
	return out.String()
}

var flagLine = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9-]*)(?: ([a-z]+))?(?:\t(.*))?$`)

// helpBody renders a command's -h text: its paragraphs as text, indented
// blocks as displays, and Go's "flags:" list as a tagged list. It returns
// the usage line for the SYNOPSIS.
func helpBody(m *mdoc, help string, heading func()) (usage string) {
	lines := strings.Split(strings.TrimRight(help, "\n"), "\n")
	var para, lit []string
	flush := func() {
		if len(para) > 0 {
			m.macro("Pp")
			m.text(strings.Join(para, "\n"))
			para = nil
		}
		if len(lit) > 0 {
			m.literal(lit)
			lit = nil
		}
	}
	headed := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, "usage: ") && usage == "":
			usage = strings.TrimSpace(strings.TrimPrefix(l, "usage: "))
			continue
		case !headed && strings.TrimSpace(l) != "":
			heading()
			headed = true
		}
		switch {
		case strings.TrimSpace(l) == "":
			if len(lit) > 0 {
				lit = append(lit, "")
				continue
			}
			flush()
		case l == "flags:":
			flush()
			m.macro("Bl", "-tag", "-width", "Ds")
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  -") {
				i++
				f := flagLine.FindStringSubmatch(lines[i])
				if f == nil {
					m.macro("It", strings.TrimSpace(lines[i]))
					continue
				}
				if f[2] != "" {
					m.macro("It", "Fl", f[1], "Ar", f[2])
				} else {
					m.macro("It", "Fl", f[1])
				}
				var desc []string
				if f[3] != "" {
					desc = append(desc, f[3])
				}
				for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    \t") {
					i++
					desc = append(desc, strings.TrimPrefix(lines[i], "    \t"))
				}
				m.text(strings.Join(desc, "\n"))
			}
			m.macro("El")
		case strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "\t"):
			if len(para) > 0 {
				// A paragraph ending in ":" introduces the display.
				m.macro("Pp")
				m.text(strings.Join(para, "\n"))
				para = nil
			}
			lit = append(lit, l)
		default:
			if len(lit) > 0 {
				flush()
			}
			para = append(para, l)
		}
	}
	for len(lit) > 0 && lit[len(lit)-1] == "" {
		lit = lit[:len(lit)-1]
	}
	flush()
	return usage
}

// manFromHelp is a page for one command: its -h text is the page, then
// the sections extra writes (if not nil).
func manFromHelp(m *mdoc, name, section, desc string, argv []string, extra func(*mdoc)) {
	m.header(name, section, desc)
	help := captureHelp(argv)
	var body mdoc
	usage := helpBody(&body, help, func() { body.macro("Sh", "DESCRIPTION") })
	m.macro("Sh", "SYNOPSIS")
	if cmd, sub, ok := strings.Cut(name, "-"); ok && cmd == "tlsmail" {
		m.macro("Nm", cmd) // git's convention: tlsmail-send(1) is `tlsmail send`
		m.macro("Cm", sub)
	} else {
		m.macro("Nm", name)
	}
	if _, args, ok := strings.Cut(usage, " [flags]"); ok {
		m.macro("Op", "Ar", "flags")
		if a := strings.TrimSpace(args); a != "" {
			m.text(a)
		}
	} else if _, args, ok := strings.Cut(usage, " "); ok {
		m.text(args)
	}
	m.b.WriteString(body.String())
	if extra != nil {
		extra(m)
	}
	manSeeAlso(m, name)
}

func manSeeAlso(m *mdoc, self string) {
	m.macro("Sh", "SEE ALSO")
	// By section, then name, as mandoc expects.
	refs := [][2]string{{"sslclient", "1"}, {"sslserver", "1"}, {"tlsmail-send", "1"}, {"tlsmail.toml", "5"}, {"tlsmail", "8"}}
	var keep [][2]string
	for _, r := range refs {
		if r[0] != self {
			keep = append(keep, r)
		}
	}
	for i, r := range keep {
		if i < len(keep)-1 {
			m.macro("Xr", r[0], r[1], ",")
		} else {
			m.macro("Xr", r[0], r[1])
		}
	}
}

func manTlsmail(m *mdoc) {
	m.header("tlsmail", "8", "mail transport with TLS at every hop")
	m.macro("Sh", "SYNOPSIS")
	m.macro("Nm")
	m.macro("Ar", "command")
	m.macro("Op", "Ar", "flags")
	m.macro("Op", "Ar", "args")
	m.macro("Sh", "DESCRIPTION")
	m.text(`One binary is the SMTP server (MX with STARTTLS, SMTPS, submission with AUTH only after TLS),
its durable queue and Maildir delivery, outbound delivery with per-destination TLS policy,
POP3 with STLS, a submission client, UCSPI-SSL wrappers and certificate and TLS-probe tools.
Every TLS outcome (protocol, cipher, key-exchange group, verification) is logged, recorded
in Received headers and counted in metrics.`)
	m.macro("Pp")
	m.text("Linked as sslserver, sslclient or sendmail (or mailq: sendmail -bp), tlsmail behaves as that command.")
	m.macro("Sh", "COMMANDS")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m.macro("Ss", n)
		m.text(cmds[n].summary + ".")
		switch n {
		case "send", "sslserver", "sslclient":
			page := map[string]string{"send": "tlsmail-send"}[n]
			if page == "" {
				page = n
			}
			m.macro("Pp")
			m.text("See")
			m.macro("Xr", page, "1", ".")
			continue
		case "man":
			// its own help is below like every other
		}
		var body mdoc
		usage := helpBody(&body, captureHelp([]string{"tlsmail", n, "-h"}), func() {})
		if usage != "" {
			m.literal([]string{usage})
		}
		m.b.WriteString(body.String())
	}
	m.macro("Sh", "FILES")
	m.tagList("Pa", [][2]string{
		{"/etc/tlsmail/tlsmail.toml", "the server configuration, see tlsmail.toml(5)"},
		{"/var/lib/tlsmail", "data directory of the Debian package: queue/, mail/USER/ (Maildir), control.sock"},
		{"./tlsmail-data", "data directory of the dev default (tlsmail serve with no --config)"},
		{"~/.config/tlsmail/send.toml", "accounts of tlsmail send"},
	})
	m.macro("Sh", "SIGNALS")
	m.tagList("Dv", [][2]string{
		{"SIGHUP", "reload the configuration, certificates and users (what needs a restart is logged)"},
		{"SIGTERM", "stop: finish the sessions in flight, then exit 0"},
	})
	m.macro("Sh", "EXIT STATUS")
	m.text("0 on success, 1 on failure, 2 on usage and configuration errors (FILE:LINE: message);")
	m.text("tlsmail send and sendmail use sysexits(3) codes.")
	manSeeAlso(m, "tlsmail")
}

func manConfig(m *mdoc) {
	m.header("tlsmail.toml", "5", "tlsmail server configuration")
	m.macro("Sh", "DESCRIPTION")
	m.text(`The configuration of tlsmail serve is a TOML file, /etc/tlsmail/tlsmail.toml by default
(tlsmail serve --config FILE). Relative paths in it are relative to data_dir.
A setting that is not known, or a value that is not valid, stops the server with
FILE:LINE: message and exit 2; tlsmail check reports every problem at once and
tlsmail config --all prints the effective values.`)
	m.macro("Sh", "SETTINGS")
	table, open := "", false
	for _, s := range config.Schema() {
		if t := s.Table(); t != table || !open {
			if open {
				m.macro("El")
			}
			table, open = t, true
			switch {
			case s.Kind == "array of tables":
				m.macro("Ss", "[["+t+"]]")
				m.text(s.Doc)
			case t != "":
				m.macro("Ss", "["+t+"]")
			}
			m.macro("Bl", "-tag", "-width", "Ds")
			if s.Kind == "array of tables" {
				continue
			}
		}
		name := s.Key
		if table != "" {
			name = strings.TrimPrefix(s.Key, table+".")
		}
		m.macro("It", "Cm", name)
		doc := "(" + s.Kind + ") " + s.Doc
		if s.Default != "" {
			doc += " Default: " + s.Default + "."
		}
		m.text(doc)
	}
	if open {
		m.macro("El")
	}
	m.macro("Sh", "EXAMPLES")
	m.literal(strings.Split(`hostname = "mx.example.org"
data_dir = "/var/lib/tlsmail"
local_domains = ["example.org"]
log_output = "journald"

[tls]
cert = "/etc/tlsmail/tls/server.pem"
key = "/etc/tlsmail/tls/server.key"

[outbound.policy]
"bank.example" = "secure match=bank.example"

[[listener]]
name = "mx"
address = "0.0.0.0:25"
mode = "starttls"`, "\n"))
	manSeeAlso(m, "tlsmail.toml")
}
