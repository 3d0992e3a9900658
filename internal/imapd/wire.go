package imapd

import (
	"errors"
	"strconv"
	"strings"
	"unicode"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// The commands imapConn answers itself (conn.go) are parsed here, from
// the raw bytes the client sent: RFC 9051 §9's command syntax, reduced to
// what those commands need (atoms, quoted strings, literals, lists).

// wireCmd is one parsed command.
type wireCmd struct {
	tag, name string // name in upper case
	args      []wireArg
}

// wireArg is one argument: a string (atom, quoted string or literal) or a
// parenthesised list.
type wireArg struct {
	s      string
	list   []wireArg
	isList bool
}

const (
	maxWireCmd     = 16 << 10 // octets of one command parsed here, literals included
	maxWireLiteral = 4 << 10  // octets of one literal in such a command
	maxWireDepth   = 8        // nested lists
	maxPeek        = 1 << 10  // octets looked at to find a command's name
)

// errShort: the command is not complete yet.
var errShort = errors.New("imap: command incomplete")

// wireError is a command the parser refuses. A fatal one cannot be
// skipped (a non-synchronising literal too big to read): the connection
// must end.
type wireError struct {
	msg     string
	tooBig  bool // a synchronising literal over maxWireLiteral: NO [TOOBIG]
	fatal   bool
	discard int // the error is at this offset: discard up to the end of its line
}

func (e *wireError) Error() string { return e.msg }

// isAtomChar is ATOM-CHAR: any CHAR except atom-specials.
func isAtomChar(c byte) bool {
	if c <= 0x20 || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// isAStringChar is ASTRING-CHAR: ATOM-CHAR or resp-specials.
func isAStringChar(c byte) bool { return isAtomChar(c) || c == ']' }

// isCmdChar is a character of a tag or a command name as imapserver
// reads them (imapwire.IsAtomChar: anything but the atom-specials and the
// control characters, so "+" and the octets 0xa0-0xff too). The tag and
// name imapConn finds must be the ones imapserver finds, or it would
// wait for a tagged response that never comes and look at no command
// again, and a name imapserver upper-cases to LOGIN or AUTHENTICATE
// ("log\u0131n") must be one imapConn refuses before TLS.
func isCmdChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return !unicode.IsControl(rune(c))
}

// peekCommand finds the tag and the name of the command that starts b,
// upper-cased as imapserver does (strings.ToUpper). decided is false
// while b may still be too short to tell; a line that is no well-formed
// "tag SP name" gives name "".
func peekCommand(b []byte) (tag, name string, decided bool) {
	i := 0
	for i < len(b) && isCmdChar(b[i]) {
		i++
	}
	if i == len(b) {
		return "", "", len(b) >= maxPeek
	}
	if i == 0 || b[i] != ' ' {
		return "", "", true
	}
	j := i + 1
	for j < len(b) && isCmdChar(b[j]) {
		j++
	}
	if j == len(b) {
		return "", "", len(b) >= maxPeek
	}
	return string(b[:i]), strings.ToUpper(string(b[i+1 : j])), true
}

// wireParser parses one command from the start of b.
type wireParser struct {
	b        []byte
	i        int
	syncs    int // synchronising literals whose header is complete
	syncEnd  int // the offset just after the last such header
	noSync   bool
	stopped  bool // noSync and a synchronising literal came: parsing ended there
	litBytes int
}

// parseWireCmd parses the command at the start of b. It returns how many
// octets the command took, and, with errShort, how many synchronising
// literals have had their header (the client waits for a "+" after the
// last one). With noSync, a synchronising literal ends the parse: cmd
// holds what came before it, n is the end of its header and stopped is
// true (the command is refused without inviting the literal).
func parseWireCmd(b []byte, noSync bool) (cmd wireCmd, n, syncs int, stopped bool, err error) {
	p := &wireParser{b: b, noSync: noSync}
	cmd, err = p.command()
	if p.stopped {
		return cmd, p.syncEnd, p.syncs, true, nil
	}
	return cmd, p.i, p.syncs, false, err
}

func (p *wireParser) fail(msg string) error {
	return &wireError{msg: msg, discard: p.i}
}

func (p *wireParser) command() (wireCmd, error) {
	var c wireCmd
	start := p.i
	for p.i < len(p.b) && isCmdChar(p.b[p.i]) {
		p.i++
	}
	c.tag = string(p.b[start:p.i])
	if err := p.sp(); err != nil {
		return c, err
	}
	if c.tag == "" {
		return c, p.fail("expected a tag")
	}
	start = p.i
	for p.i < len(p.b) && isCmdChar(p.b[p.i]) {
		p.i++
	}
	c.name = strings.ToUpper(string(p.b[start:p.i]))
	if c.name == "" {
		return c, p.fail("expected a command name")
	}
	for {
		if p.i >= len(p.b) {
			return c, errShort
		}
		switch p.b[p.i] {
		case ' ':
			if p.i+1 >= len(p.b) {
				return c, errShort
			}
			if e := p.b[p.i+1]; e == '\r' || e == '\n' {
				return c, p.crlf() // a trailing SP, as imapserver takes it
			}
			p.i++
			a, err := p.arg(0)
			if err != nil {
				return c, err
			}
			c.args = append(c.args, a)
		case '\r', '\n':
			return c, p.crlf()
		default:
			return c, p.fail("expected SP or CRLF")
		}
	}
}

func (p *wireParser) sp() error {
	if p.i >= len(p.b) {
		return errShort
	}
	if p.b[p.i] != ' ' {
		return p.fail("expected SP")
	}
	p.i++
	return nil
}

// crlf takes a line's end as imapserver's decoder does (imapwire's
// CRLF): an optional SP, an optional CR, and LF — a lone LF included.
func (p *wireParser) crlf() error {
	i := p.i
	if i < len(p.b) && p.b[i] == ' ' {
		i++
	}
	if i < len(p.b) && p.b[i] == '\r' {
		i++
	}
	if i >= len(p.b) {
		return errShort
	}
	if p.b[i] != '\n' {
		return p.fail("expected CRLF")
	}
	p.i = i + 1
	return nil
}

func (p *wireParser) arg(depth int) (wireArg, error) {
	if p.i >= len(p.b) {
		return wireArg{}, errShort
	}
	switch c := p.b[p.i]; {
	case c == '(':
		if depth >= maxWireDepth {
			return wireArg{}, p.fail("lists nested too deep")
		}
		p.i++
		a := wireArg{isList: true}
		if p.i < len(p.b) && p.b[p.i] == ')' {
			p.i++
			return a, nil
		}
		for {
			e, err := p.arg(depth + 1)
			if err != nil {
				return a, err
			}
			a.list = append(a.list, e)
			if p.i >= len(p.b) {
				return a, errShort
			}
			switch p.b[p.i] {
			case ' ':
				p.i++
			case ')':
				p.i++
				return a, nil
			default:
				return a, p.fail("expected SP or ) in a list")
			}
		}
	case c == '"':
		return p.quoted()
	case c == '{':
		return p.literal()
	case isAStringChar(c):
		start := p.i
		for p.i < len(p.b) && isAStringChar(p.b[p.i]) {
			p.i++
		}
		return wireArg{s: string(p.b[start:p.i])}, nil
	default:
		return wireArg{}, p.fail("expected an argument")
	}
}

func (p *wireParser) quoted() (wireArg, error) {
	p.i++ // the opening quote
	var sb strings.Builder
	for {
		if p.i >= len(p.b) {
			return wireArg{}, errShort
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return wireArg{s: sb.String()}, nil
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return wireArg{}, errShort
			}
			if e := p.b[p.i+1]; e == '"' || e == '\\' {
				sb.WriteByte(e)
				p.i += 2
				continue
			}
			return wireArg{}, p.fail("bad escape in a quoted string")
		case c == '\r' || c == '\n' || c == 0:
			return wireArg{}, p.fail("CR, LF or NUL in a quoted string")
		default:
			sb.WriteByte(c)
			p.i++
		}
	}
}

// literal parses "{" number ["+" / "-"] "}" CRLF and the octets after it.
func (p *wireParser) literal() (wireArg, error) {
	brace := p.i
	p.i++
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	if p.i >= len(p.b) {
		return wireArg{}, errShort
	}
	digits := string(p.b[start:p.i])
	sync := true
	if c := p.b[p.i]; c == '+' || c == '-' {
		sync = false
		p.i++
	}
	if p.i >= len(p.b) {
		return wireArg{}, errShort
	}
	if p.b[p.i] != '}' || digits == "" || len(digits) > 10 {
		return wireArg{}, p.fail("bad literal")
	}
	p.i++
	if err := p.crlf(); err != nil {
		return wireArg{}, err
	}
	n, _ := strconv.ParseInt(digits, 10, 64)
	if n > maxWireLiteral || p.litBytes+int(n) > maxWireCmd {
		if sync {
			return wireArg{}, &wireError{msg: "literal too big", tooBig: true, discard: brace}
		}
		return wireArg{}, &wireError{msg: "literal too big", fatal: true}
	}
	if sync {
		p.syncs++
		p.syncEnd = p.i
		if p.noSync {
			p.stopped = true
			return wireArg{}, errShort
		}
	}
	if len(p.b)-p.i < int(n) {
		return wireArg{}, errShort
	}
	p.litBytes += int(n)
	s := string(p.b[p.i : p.i+int(n)])
	p.i += int(n)
	return wireArg{s: s}, nil
}

// decodeMailbox turns a mailbox name as sent into the name imapserver
// hands the session: INBOX in any case is INBOX, others are modified
// UTF-7, UTF-8 taken as it is (imapserver v2.0.0-beta.8 decodes every
// name so, utf7.Decode: an IMAP4rev2 or UTF8=ACCEPT client sends UTF-8).
// maildir's decoder is the one folder names on disk go through too; it
// must accept exactly what imapserver accepts (go-imap/v2 keeps its own
// in an internal package), or a quota command would name a mailbox
// differently from SELECT.
func decodeMailbox(s string) (string, error) {
	if strings.EqualFold(s, "INBOX") {
		return "INBOX", nil
	}
	return maildir.DecodeMUTF7(s)
}

// astring renders s as an IMAP astring: an atom, a quoted string or a
// literal, the first that can hold it.
func astring(s string) string {
	atom := s != ""
	for i := 0; i < len(s); i++ {
		atom = atom && isAStringChar(s[i])
	}
	if atom {
		return s
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return "{" + strconv.Itoa(len(s)) + "}\r\n" + s
		}
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
