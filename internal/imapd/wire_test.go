package imapd

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseWireCmd(t *testing.T) {
	for _, tc := range []struct {
		in      string
		noSync  bool
		want    wireCmd
		n       int
		syncs   int
		stopped bool
		err     string // "short", "syntax", "toobig", "fatal"
	}{
		{in: "a1 GETQUOTAROOT INBOX\r\nb NOOP\r\n", want: wireCmd{"a1", "GETQUOTAROOT", []wireArg{{s: "INBOX"}}}, n: 23},
		{in: "a1 getquota \"\"\r\n", want: wireCmd{"a1", "GETQUOTA", []wireArg{{s: ""}}}, n: 16},
		{in: "a1 getquota \"a\\\"b\\\\\"\r\n", want: wireCmd{"a1", "GETQUOTA", []wireArg{{s: `a"b\`}}}, n: 22},
		{in: "x GETQUOTAROOT {5}\r\nINBOX\r\n", want: wireCmd{"x", "GETQUOTAROOT", []wireArg{{s: "INBOX"}}}, n: 27, syncs: 1},
		{in: "x GETQUOTAROOT {5+}\r\nIN\r\nX\r\n", want: wireCmd{"x", "GETQUOTAROOT", []wireArg{{s: "IN\r\nX"}}}, n: 28},
		{in: "x SETQUOTA \"\" (STORAGE 512 MESSAGE 10)\r\n", want: wireCmd{"x", "SETQUOTA", []wireArg{{s: ""},
			{isList: true, list: []wireArg{{s: "STORAGE"}, {s: "512"}, {s: "MESSAGE"}, {s: "10"}}}}}, n: 40},
		{in: "x SETQUOTA \"\" ()\r\n", want: wireCmd{"x", "SETQUOTA", []wireArg{{s: ""}, {isList: true}}}, n: 18},
		{in: "x GETQUOTAROOT {5}\r\nINB", err: "short", syncs: 1},
		{in: "x GETQUOTAROOT {5}\r\n", err: "short", syncs: 1},
		{in: "x GETQUOTAROOT {5}\r\n", noSync: true, want: wireCmd{"x", "GETQUOTAROOT", nil}, n: 20, syncs: 1, stopped: true},
		{in: "x GETQUOTAROOT \"INBOX", err: "short"},
		{in: "x GETQUOTAROOT INBOX\r", err: "short"},
		// A lone LF, and an SP before the line's end, as imapserver takes them.
		{in: "x GETQUOTAROOT INBOX\n", want: wireCmd{"x", "GETQUOTAROOT", []wireArg{{s: "INBOX"}}}, n: 21},
		{in: "x GETQUOTAROOT {5}\nINBOX\n", want: wireCmd{"x", "GETQUOTAROOT", []wireArg{{s: "INBOX"}}}, n: 25, syncs: 1},
		{in: "x GETQUOTAROOT INBOX \r\n", want: wireCmd{"x", "GETQUOTAROOT", []wireArg{{s: "INBOX"}}}, n: 23},
		{in: "x STARTTLS\n", want: wireCmd{"x", "STARTTLS", nil}, n: 11},
		{in: "x GETQUOTAROOT INBOX ", err: "short"},
		{in: "x GETQUOTAROOT INBOX\rX\r\n", err: "syntax"},
		{in: "x GETQUOTAROOT INBOX  \r\n", err: "syntax"},
		{in: "x GETQUOTAROOT \"IN\rBOX\"\r\n", err: "syntax"},
		{in: "x GETQUOTAROOT (((((((((((a)))))))))))\r\n", err: "syntax"},
		{in: "x GETQUOTAROOT {99999}\r\n", err: "toobig"},
		{in: "x GETQUOTAROOT {99999+}\r\n", err: "fatal"},
		{in: "x GETQUOTAROOT {}\r\n", err: "syntax"},
	} {
		cmd, n, syncs, stopped, err := parseWireCmd([]byte(tc.in), tc.noSync)
		var we *wireError
		got := ""
		switch {
		case err == nil:
		case errors.Is(err, errShort):
			got = "short"
		case errors.As(err, &we) && we.tooBig:
			got = "toobig"
		case errors.As(err, &we) && we.fatal:
			got = "fatal"
		case errors.As(err, &we):
			got = "syntax"
		default:
			got = err.Error()
		}
		if got != tc.err || syncs != tc.syncs || stopped != tc.stopped {
			t.Errorf("%q: err %v (%s), syncs %d, stopped %v; want %s, %d, %v", tc.in, err, got, syncs, stopped, tc.err, tc.syncs, tc.stopped)
			continue
		}
		if tc.err == "" && (n != tc.n || !reflect.DeepEqual(cmd, tc.want)) {
			t.Errorf("%q: %+v, %d; want %+v, %d", tc.in, cmd, n, tc.want, tc.n)
		}
	}
}

func TestPeekCommand(t *testing.T) {
	for _, tc := range []struct {
		in, tag, name string
		decided       bool
	}{
		{"a1 getquota \"\"\r\n", "a1", "GETQUOTA", true},
		{"a1 NOOP\r\n", "a1", "NOOP", true},
		{"a1 STARTTLS\r\n", "a1", "STARTTLS", true},
		{"a1 STARTTL", "", "", false},
		{"a1", "", "", false},
		{"\r\n", "", "", true},
		{"* NOOP\r\n", "", "", true},
		{strings.Repeat("a", maxPeek), "", "", true},
		{"a log\u0131n x y\r\n", "a", "LOGIN", true},
		{"\xa0 NOOP\r\n", "\xa0", "NOOP", true},
		{"a+1 NOOP\r\n", "a+1", "NOOP", true},
		{"a\x85 NOOP\r\n", "", "", true},
	} {
		tag, name, decided := peekCommand([]byte(tc.in))
		if tag != tc.tag || name != tc.name || decided != tc.decided {
			t.Errorf("%q: %q %q %v", tc.in, tag, name, decided)
		}
	}
}

func TestDecodeMailbox(t *testing.T) {
	for in, want := range map[string]string{
		"inbox": "INBOX", "Sent": "Sent", "a&-b": "a&b", "&AOQ-rger": "ärger", "&ZeVnLIqe-": "日本語",
		"&AOQ": "", "&AEE-": "", "é": "é", "Entwürfe": "Entwürfe", "\xff": "", "&A-": "",
		"&U,BTFw-&ZeVnLIqe-": "", // a base64 run right after another: imapserver refuses it
	} {
		got, err := decodeMailbox(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestCommandLiteral(t *testing.T) {
	for in, want := range map[string]int64{
		"a APPEND INBOX {12}\r\n": 12, "a APPEND INBOX {12+}\r\n": 12, "a LOGIN {3-}\n": 3, "a APPEND INBOX ~{7}\r\n": 7,
		"a NOOP\r\n": -1, "a X {}\r\n": -1, "a X {1a}\r\n": -1, "{5}": -1,
	} {
		n, ok := commandLiteral([]byte(in))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("%q: %d; want %d", in, n, want)
		}
	}
}

// TestRespScannerSkipsLiterals: lines inside a FETCH literal that look
// like the tagged response are not taken for it, whatever the writes'
// boundaries; the capability lists are rewritten.
func TestRespScannerSkipsLiterals(t *testing.T) {
	body := "A1 OK fake\r\n* QUOTA \"\" (STORAGE 1 1)\r\n* CAPABILITY X\r\n"
	stream := "* 1 FETCH (BODY[] {" + strconv.Itoa(len(body)) + "}\r\n" + body + " UID 1)\r\n" +
		"* CAPABILITY IMAP4rev2 AUTH=PLAIN\r\n" + "A1 OK [CAPABILITY IMAP4rev2] done\r\n" + "* 2 EXISTS\r\n"
	edit := func(c []string) []string { return append(c, "QUOTA") }
	tagged := strings.Index(stream, "* 2 EXISTS") // the end of the tagged response
	for split := 1; split < len(stream); split++ {
		done := 0
		var s respScanner
		s.tag = "A1"
		s.done = func() { done++ }
		s.rewrite = func(line []byte) []byte { return rewriteCaps(line, edit) }
		out := s.feed([]byte(stream[:split]), nil)
		if (done == 1) != (split >= tagged) {
			t.Fatalf("split %d: tagged response seen %d times after %q", split, done, out)
		}
		out = s.feed([]byte(stream[split:]), out)
		want := strings.Replace(strings.Replace(stream, "AUTH=PLAIN\r\n", "AUTH=PLAIN QUOTA\r\n", 1), "[CAPABILITY IMAP4rev2]", "[CAPABILITY IMAP4rev2 QUOTA]", 1)
		if string(out) != want || done != 1 {
			t.Fatalf("split %d: %q, tagged response seen %d times", split, out, done)
		}
	}
}

// FuzzParseWireCmd: the parser never panics, stays within its input, and
// a command it parses renders back (as literals) to the same command.
func FuzzParseWireCmd(f *testing.F) {
	for _, s := range []string{
		"a1 GETQUOTAROOT INBOX\r\n", "a GETQUOTA \"\"\r\n", "x SETQUOTA \"\" (STORAGE 512)\r\n",
		"x GETQUOTAROOT {5}\r\nINBOX\r\n", "x GETQUOTAROOT {5+}\r\nIN\rX\r\n", "x STARTTLS\r\nb LOGIN a b\r\n",
		"x GETQUOTAROOT \"a\\\"b\"\r\n", "x A ((a) (b c) ())\r\n", "x GETQUOTAROOT {99999}\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, noSync bool) {
		cmd, n, _, stopped, err := parseWireCmd(b, noSync)
		if n < 0 || n > len(b) {
			t.Fatalf("n %d of %d", n, len(b))
		}
		var we *wireError
		if errors.As(err, &we) && (we.discard < 0 || we.discard > len(b)) {
			t.Fatalf("discard %d of %d", we.discard, len(b))
		}
		if err != nil || stopped || len(b) > maxWireLiteral {
			return
		}
		// The name as it came: cmd.name is upper-cased as imapserver
		// does, and that can turn atom octets into control ones
		// ("ɯ" → "Ɯ", whose second octet is 0x9c).
		rawName := b[len(cmd.tag)+1:]
		for i, c := range rawName {
			if !isCmdChar(c) {
				rawName = rawName[:i]
				break
			}
		}
		var sb strings.Builder
		sb.WriteString(cmd.tag + " " + string(rawName))
		for _, a := range cmd.args {
			sb.WriteByte(' ')
			render(&sb, a)
		}
		sb.WriteString("\r\n")
		again, m, _, _, err := parseWireCmd([]byte(sb.String()), false)
		if err != nil || m != sb.Len() || !reflect.DeepEqual(again, cmd) {
			t.Fatalf("%q → %+v → %q → %+v, %v", b[:n], cmd, sb.String(), again, err)
		}
	})
}

func render(sb *strings.Builder, a wireArg) {
	if !a.isList {
		sb.WriteString("{" + strconv.Itoa(len(a.s)) + "+}\r\n" + a.s)
		return
	}
	sb.WriteByte('(')
	for i, e := range a.list {
		if i > 0 {
			sb.WriteByte(' ')
		}
		render(sb, e)
	}
	sb.WriteByte(')')
}

// FuzzRespScanner: however the server's output is cut into writes, the
// scanner passes it through unchanged (no capability lines) and sees the
// tagged response at the same place.
func FuzzRespScanner(f *testing.F) {
	f.Add([]byte("* 1 FETCH (BODY[] {12}\r\nA1 OK fake\r\n UID 1)\r\nA1 OK done\r\n"), uint16(7))
	f.Add([]byte("+ Ready\r\n* OK {3}\r\nA1 NO x\r\n"), uint16(3))
	f.Add([]byte("* 1 FETCH (BINARY[] ~{2}\r\nab)\r\n* SEARCH 1 2 3\r\nA1 BAD y\r\n"), uint16(20))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		if bytes.Contains(b, []byte("CAPABILITY")) {
			return
		}
		run := func(parts ...[]byte) ([]byte, int) {
			var s respScanner
			s.tag = "A1"
			var out []byte
			seen := 0
			s.done = func() { seen++ }
			for _, p := range parts {
				out = s.feed(p, out)
			}
			return out, seen
		}
		whole, at1 := run(b)
		c := int(cut) % (len(b) + 1)
		parts, at2 := run(b[:c], b[c:])
		if !bytes.Equal(whole, parts) || at1 != at2 {
			t.Fatalf("cut %d: %q (%d) vs %q (%d)", c, whole, at1, parts, at2)
		}
		// What is held back is at most the last, unfinished line.
		if !bytes.HasPrefix(b, whole) || bytes.Contains(b[len(whole):], []byte("\n")) {
			t.Fatalf("%q → %q", b, whole)
		}
	})
}
