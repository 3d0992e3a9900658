package smtpclient

import (
	"bytes"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"
)

// headerSection is the raw header of a composed message, up to the
// blank line.
func headerSection(t *testing.T, raw []byte) string {
	t.Helper()
	h, _, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of header in\n%s", raw)
	}
	return h + "\r\n"
}

// rawField is the value of the one field called name, unfolded as RFC
// 5322 §2.2.3 says (CRLF before white space removed, nothing else), so a
// test sees exactly what a reader would. It fails the test when the
// field is missing or repeated.
func rawField(t *testing.T, raw []byte, name string) string {
	t.Helper()
	var found []string
	h := headerSection(t, raw)
	for i, line := range strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n") {
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			if i == 0 {
				t.Fatalf("header starts with a continuation line: %q", line)
			}
			if strings.Trim(line, " \t") == "" {
				t.Errorf("a folded line of white space only: %q", line)
			}
			continue
		}
		k, _, _ := strings.Cut(line, ":")
		if strings.EqualFold(k, name) {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s fields in\n%s", len(found), name, h)
	}
	// Unfold the whole header, then find the field again.
	unfolded := strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t").Replace(h)
	for _, line := range strings.Split(unfolded, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		if strings.EqualFold(k, name) {
			return strings.TrimPrefix(v, " ")
		}
	}
	t.Fatalf("no %s", name)
	return ""
}

// checkHeaderLines fails for a header line over 78 octets, a line with an
// encoded-word over 76 (RFC 2047 §2), or an encoded-word over 75.
func checkHeaderLines(t *testing.T, raw []byte) {
	t.Helper()
	for _, line := range strings.Split(headerSection(t, raw), "\r\n") {
		// Over 78 only for one word that has no white space to fold at.
		body := strings.TrimLeft(line, " \t")
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.ContainsAny(k, " \t") {
			body = v
		}
		if len(line) > 78 && (strings.ContainsAny(body, " \t") || strings.Contains(line, "=?")) || len(line) > 998 {
			t.Errorf("header line of %d octets: %q", len(line), line)
		}
		if strings.Contains(line, "=?") && len(line) > 76 {
			t.Errorf("line with an encoded-word of %d octets: %q", len(line), line)
		}
		for _, w := range strings.Fields(line) {
			if strings.HasPrefix(w, "=?") && len(strings.TrimRight(w, ",")) > 75 {
				t.Errorf("encoded-word of %d octets: %q", len(w), w)
			}
		}
	}
}

func TestComposeFoldsLongSubjectAtWhiteSpace(t *testing.T) {
	var words []string
	for i := 0; i < 250; i++ {
		words = append(words, "word"+strings.Repeat("x", i%5))
	}
	subject := strings.Join(words, " ")
	raw, err := Compose(Message{From: "a@example.org", To: []string{"b@example.org"}, Subject: subject, Text: "hi\n"})
	if err != nil {
		t.Fatal(err)
	}
	checkHeaderLines(t, raw)
	if got := rawField(t, raw, "Subject"); got != subject {
		t.Errorf("Subject unfolds to %q, want %q", got, subject)
	}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err != nil || msg.Header.Get("Mime-Version") != "1.0" {
		t.Errorf("header after the Subject lost: %v %v", err, msg)
	}
}

func TestComposeFoldsLongAddressListAfterCommas(t *testing.T) {
	var to []string
	for i := 0; i < 60; i++ {
		to = append(to, strings.Repeat("r", i%7+1)+"@example.net")
	}
	to = append(to, "Zoë Müller-Lüdenscheidt von und zu Großherzogtum Baden-Württemberg <zoe@example.org>")
	raw, err := Compose(Message{From: "a@example.org", To: to, Subject: "x", Text: "hi\n"})
	if err != nil {
		t.Fatal(err)
	}
	checkHeaderLines(t, raw)
	list, err := mail.ParseAddressList(rawField(t, raw, "To"))
	if err != nil || len(list) != len(to) {
		t.Fatalf("To parses to %d addresses (%v), want %d", len(list), err, len(to))
	}
	for i, a := range list[:60] {
		if a.Address != to[i] {
			t.Errorf("address %d is %q, want %q", i, a.Address, to[i])
		}
	}
	if last := list[60]; last.Name != "Zoë Müller-Lüdenscheidt von und zu Großherzogtum Baden-Württemberg" || last.Address != "zoe@example.org" {
		t.Errorf("last address %q <%s>", last.Name, last.Address)
	}
	// Folded after a comma: every To line but the last ends with one.
	h := headerSection(t, raw)
	start := strings.Index(h, "\r\nTo: ")
	lines := strings.Split(h[start+2:], "\r\n")
	n := 1
	for n < len(lines) && strings.HasPrefix(lines[n], " ") {
		n++
	}
	if n < 5 {
		t.Fatalf("To: is %d lines", n)
	}
	for _, l := range lines[:n-1] {
		if !strings.HasSuffix(l, ",") && !strings.Contains(l, "=?") {
			t.Errorf("To line not folded after a comma: %q", l)
		}
	}
}

func TestComposeSplitsLongEncodedSubject(t *testing.T) {
	subject := "Grüße aus Köln — Überprüfung der Maße für das Büro ✓ 日本語のテキスト and some more words to reach"
	raw, err := Compose(Message{From: "a@example.org", To: []string{"b@example.org"}, Subject: subject, Text: "hi\n"})
	if err != nil {
		t.Fatal(err)
	}
	checkHeaderLines(t, raw)
	dec := new(mime.WordDecoder)
	got, err := dec.DecodeHeader(rawField(t, raw, "Subject"))
	if err != nil || got != subject {
		t.Errorf("Subject decodes to %q (%v), want %q", got, err, subject)
	}
	// Never split inside a UTF-8 character: every encoded-word decodes
	// to valid UTF-8 by itself.
	words := 0
	for _, w := range strings.Fields(rawField(t, raw, "Subject")) {
		if !strings.HasPrefix(w, "=?") {
			continue
		}
		words++
		d, err := dec.Decode(w)
		if err != nil || !utf8.ValidString(d) {
			t.Errorf("encoded-word %q decodes to %q (%v)", w, d, err)
		}
	}
	if words < 3 {
		t.Errorf("%d encoded-words", words)
	}
}

func TestComposeRefusesUnfoldableHeader(t *testing.T) {
	long := strings.Repeat("x", 1200)
	_, err := Compose(Message{From: "a@example.org", Headers: [][2]string{{"X-Token", long}}})
	if err == nil || !strings.Contains(err.Error(), `"X-Token"`) {
		t.Errorf("a 1200-octet word: %v", err)
	}
	// 900 octets without white space still fit a 998-octet line.
	raw, err := Compose(Message{From: "a@example.org", Headers: [][2]string{{"X-Token", long[:900]}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rawField(t, raw, "X-Token"); got != long[:900] {
		t.Errorf("X-Token %q", got)
	}
}

func TestComposeExtraHeaderReplacesStandardOne(t *testing.T) {
	raw, err := Compose(Message{
		From: "a@example.org", To: []string{"b@example.org"}, Subject: "composed", ReplyTo: "r@example.org",
		MessageID: "<composed@example.org>",
		Headers: [][2]string{
			{"subject", "given"}, {"FROM", "Other <o@example.org>"}, {"Message-Id", "<given@example.org>"},
			{"Date", "Mon, 02 Jan 2006 15:04:05 +0000"}, {"reply-to", "s@example.org"}, {"X-Mailer", "t"},
		},
		Text: "hi\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"Subject": "given", "Message-ID": "<given@example.org>",
		"Date": "Mon, 02 Jan 2006 15:04:05 +0000", "X-Mailer": "t",
	} {
		if got := rawField(t, raw, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]mail.Address{"From": {Name: "Other", Address: "o@example.org"}, "Reply-To": {Address: "s@example.org"}} {
		if got, err := mail.ParseAddress(rawField(t, raw, name)); err != nil || *got != want {
			t.Errorf("%s: %v (%v), want %v", name, got, err, want)
		}
	}
}

func TestComposeRefusesConflictingHeaders(t *testing.T) {
	for _, h := range [][][2]string{
		{{"MIME-Version", "1.0"}},
		{{"content-type", "text/html"}},
		{{"Content-Transfer-Encoding", "8bit"}},
		{{"Subject", "one"}, {"SUBJECT", "two"}},
		{{"In-Reply-To", "<a@b>"}, {"In-Reply-To", "<c@d>"}},
		{{"Bcc", "hidden@example.org"}},
	} {
		_, err := Compose(Message{From: "a@example.org", Headers: h})
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(`"`+h[len(h)-1][0]+`"`)) {
			t.Errorf("%v: %v", h, err)
		}
	}
	// Fields that may repeat still do.
	raw, err := Compose(Message{From: "a@example.org", Headers: [][2]string{{"Comments", "one"}, {"Comments", "two"}, {"Content-Language", "de"}}})
	if err != nil || strings.Count(string(raw), "\r\nComments: ") != 2 || !strings.Contains(string(raw), "\r\nContent-Language: de\r\n") {
		t.Errorf("%v\n%s", err, raw)
	}
}

func TestComposeRefusesInvalidHeaderName(t *testing.T) {
	for _, name := range []string{"bad header", "X:Y", "", "Über", "X-\x7f", "X-\x00"} {
		_, err := Compose(Message{From: "a@example.org", Headers: [][2]string{{name, "v"}}})
		if err == nil || !strings.Contains(err.Error(), "header "+strconvQuote(name)) {
			t.Errorf("header name %q: %v", name, err)
		}
	}
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

func TestComposeAddressHeaderEncodesOnlyTheDisplayName(t *testing.T) {
	raw, err := Compose(Message{
		From: "a@example.org", To: []string{"b@example.org"}, Subject: "x", Text: "hi\n",
		Headers: [][2]string{{"Reply-To", "Jörg <r@example.org>"}, {"Cc", "Ça Va <c@example.org>, d@example.org"}, {"Sender", "Zoë <s@example.org>"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkHeaderLines(t, raw)
	for name, want := range map[string][]mail.Address{
		"Reply-To": {{Name: "Jörg", Address: "r@example.org"}},
		"Cc":       {{Name: "Ça Va", Address: "c@example.org"}, {Address: "d@example.org"}},
		"Sender":   {{Name: "Zoë", Address: "s@example.org"}},
	} {
		v := rawField(t, raw, name)
		list, err := mail.ParseAddressList(v)
		if err != nil || len(list) != len(want) {
			t.Errorf("%s: %q parses to %v (%v)", name, v, list, err)
			continue
		}
		for i := range want {
			if *list[i] != want[i] {
				t.Errorf("%s: %+v, want %+v", name, *list[i], want[i])
			}
		}
		if !strings.Contains(v, "<"+want[0].Address+">") {
			t.Errorf("%s: address not outside the encoded-word: %q", name, v)
		}
	}
	if _, err := Compose(Message{From: "a@example.org", Headers: [][2]string{{"Reply-To", "not an address"}}}); err == nil || !strings.Contains(err.Error(), `"Reply-To"`) {
		t.Errorf("unparsable Reply-To: %v", err)
	}
}

// TestComposeHeaderRoundTripsRandomText: whatever the text (ASCII,
// Latin-1 octets, CJK, emoji, tabs, control characters, text that looks
// like an encoded-word), a Subject and a display name come back exactly
// from the folded, encoded header, within the line limits.
func TestComposeHeaderRoundTripsRandomText(t *testing.T) {
	pieces := []string{"a", "word", "Grüße", "日本語", "😀", " ", " ", "  ", "\t", "\x01", "caf\xe9", "=?x?=", "(c)", `"q"`, ",", strings.Repeat("long", 10)}
	rng := uint32(1)
	next := func(n int) int { rng = rng*1664525 + 1013904223; return int(rng>>8) % n }
	latin1 := func(s string) string {
		if utf8.ValidString(s) {
			return s
		}
		r := make([]rune, len(s))
		for i := 0; i < len(s); i++ {
			r[i] = rune(s[i])
		}
		return string(r)
	}
	dec := new(mime.WordDecoder)
	for i := 0; i < 500; i++ {
		var s strings.Builder
		for n := next(40); n >= 0; n-- {
			s.WriteString(pieces[next(len(pieces))])
		}
		text := strings.Trim(s.String(), " \t")
		raw, err := Compose(Message{From: "a@example.org", Subject: text, Headers: [][2]string{{"Reply-To", (&mail.Address{Name: strings.ToValidUTF8(text, "?"), Address: "r@example.org"}).String()}}})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		checkHeaderLines(t, raw)
		got, err := dec.DecodeHeader(rawField(t, raw, "Subject"))
		if err != nil || got != latin1(text) {
			t.Fatalf("Subject %q decodes to %q (%v) from\n%s", text, got, err, headerSection(t, raw))
		}
		if a, err := mail.ParseAddress(rawField(t, raw, "Reply-To")); err != nil || a.Name != strings.ToValidUTF8(text, "?") || a.Address != "r@example.org" {
			t.Fatalf("Reply-To %q: %v %v from\n%s", text, a, err, headerSection(t, raw))
		}
	}
}

// TestComposeNeverFoldsInsideQuotedStrings: a quoted local part or a
// quoted display name keeps its spaces on one line (a fold there is read
// back differently by net/mail), and no line ends in white space: a
// quoted string too long for one line of 78 goes on a line of its own,
// longer (998 is the limit).
func TestComposeNeverFoldsInsideQuotedStrings(t *testing.T) {
	to := []string{`"` + strings.Repeat("john  q ", 12) + `doe"@example.org`, `"Smith,  ` + strings.Repeat("John   Q. ", 10) + `" <smith@example.org>`}
	for i := 0; i < 6; i++ {
		to = append(to, fmt.Sprintf(`"john  q  doe %d"@example.org`, i), fmt.Sprintf(`"Smith,  John   Q. %d" <smith%d@example.org>`, i, i))
	}
	raw, err := Compose(Message{From: "a@example.org", To: to, Subject: "x", Text: "hi\n"})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(headerSection(t, raw), "\r\n") {
		if len(line) > 78 && !strings.Contains(line, `"`) || len(line) > 998 {
			t.Errorf("header line of %d octets: %q", len(line), line)
		}
	}
	for _, line := range strings.Split(headerSection(t, raw), "\r\n") {
		if strings.HasSuffix(line, " ") || strings.HasSuffix(line, "\t") {
			t.Errorf("line ends in white space: %q", line)
		}
	}
	list, err := mail.ParseAddressList(rawField(t, raw, "To"))
	if err != nil || len(list) != len(to) {
		t.Fatalf("To parses to %d addresses (%v), want %d", len(list), err, len(to))
	}
	want, _ := mail.ParseAddressList(strings.Join(to, ", "))
	for i := range list {
		if list[i].Address != want[i].Address || list[i].Name != want[i].Name {
			t.Errorf("address %d: %q <%s>, want %q <%s>", i, list[i].Name, list[i].Address, want[i].Name, want[i].Address)
		}
	}
}
