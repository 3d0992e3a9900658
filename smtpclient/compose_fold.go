package smtpclient

// Header folding (RFC 5322 §2.2.3) and RFC 2047 encoded-words for Compose.
//
// The encoded-words are made here rather than by mime.WordEncoder, which
// is right about its own limits (it splits at 75 octets, between UTF-8
// characters) but cannot be used for three things Compose needs: it
// cannot be told how much of the first line the field name already takes
// (RFC 2047 §2 allows 76 octets on a line with an encoded-word, so
// "Subject: " and a 75-octet word is too long); it returns ASCII text
// unencoded, so it cannot encode the ASCII words inside a run that has to
// be one encoded sequence; and its Q encoding leaves "(", "," and '"'
// literal, which RFC 2047 §5(3) forbids in a display name.

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	lineSoft    = 78  // RFC 5322 §2.1.1: a line SHOULD be at most 78 octets
	lineEncoded = 76  // RFC 2047 §2: a line with an encoded-word, at most 76
	lineMax     = 998 // RFC 5322 §2.1.1: a line MUST be at most 998 octets
	wordMax     = 75  // RFC 2047 §2: an encoded-word, at most 75
)

// token is a piece of a field body that folding never splits: ws is the
// white space before it, where a fold may go.
type token struct {
	ws, text string
	encoded  bool
}

// foldField formats "name: body" from its tokens, folding (CRLF before a
// token's white space) where a line would pass 78 octets, or 76 with an
// encoded-word. A word too long to fit even a 998-octet line is an error:
// there is no white space to fold it at, and a longer line is one servers
// may cut or refuse (RFC 5322 §2.1.1).
func foldField(name string, toks []token) (string, error) {
	var b strings.Builder
	b.WriteString(name + ":")
	n, encodedLine := len(name)+1, false
	for i, t := range toks {
		ws := t.ws
		if i == 0 {
			ws = " "
		}
		limit := lineSoft
		if encodedLine || t.encoded {
			limit = lineEncoded
		}
		// The first token folds only when it is an encoded-word that does
		// not fit after the name ("Subject:" CRLF SP word is valid).
		if n+len(ws)+len(t.text) > limit && ws != "" && (i > 0 || t.encoded) {
			b.WriteString("\r\n")
			n, encodedLine = 0, false
		}
		b.WriteString(ws)
		b.WriteString(t.text)
		n += len(ws) + len(t.text)
		encodedLine = encodedLine || t.encoded
		if n > lineMax {
			return "", fmt.Errorf("compose: header %q: a word of %d octets cannot be folded to fit a line of %d (RFC 5322 §2.1.1)", name, len(t.text), lineMax)
		}
	}
	b.WriteString("\r\n")
	return b.String(), nil
}

// firstRoom is the longest encoded-word that fits the first line of the
// field name after "name: ", or wordMax when too little room is left to
// be worth using (foldField then folds before the word).
func firstRoom(name string) int {
	room := lineEncoded - len(name) - len(": ")
	if room < 30 || room > wordMax {
		return wordMax
	}
	return room
}

// unstructuredTokens splits an unstructured field body (RFC 5322 §3.2.5)
// into words at white space. Words that cannot be sent as they are
// (non-ASCII, control characters, or text a reader would take for an
// encoded-word) become encoded-words, a run of them as one encoded text
// with the white space between them inside it, since white space between
// two encoded-words is not shown (RFC 2047 §6.2). The charset is chosen
// once for the whole value (headerCharset). first is the room for an
// encoded-word at the start. Leading and trailing white space is dropped.
func unstructuredTokens(v string, first int) []token {
	v = strings.Trim(v, " \t")
	charset := headerCharset(v)
	var words []token
	for v != "" {
		i := strings.IndexFunc(v, func(r rune) bool { return r != ' ' && r != '\t' })
		ws := v[:i]
		v = v[i:]
		j := strings.IndexAny(v, " \t")
		if j < 0 {
			j = len(v)
		}
		words = append(words, token{ws: ws, text: v[:j]})
		v = v[j:]
	}
	var out []token
	for i := 0; i < len(words); {
		if !wordNeedsEncoding(words[i].text) {
			out = append(out, words[i])
			i++
			continue
		}
		j, run := i, words[i].text
		for j+1 < len(words) && wordNeedsEncoding(words[j+1].text) {
			j++
			run += words[j].ws + words[j].text
		}
		room := wordMax
		if len(out) == 0 {
			room = first
		} else if n := lineEncoded - len(words[i].ws); n < room {
			room = max(n, 30) // folded before it, the white space stays on its line
		}
		for k, w := range encodeWords(run, charset, room) {
			ws := " "
			if k == 0 {
				ws = words[i].ws
			}
			out = append(out, token{ws: ws, text: w, encoded: true})
		}
		i = j + 1
	}
	return out
}

// wordNeedsEncoding reports whether a word (no white space) must be an
// encoded-word: it has octets outside printable ASCII, or it has "=?" and
// "?=" and so might be read as one.
func wordNeedsEncoding(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] < 0x21 || w[i] > 0x7e {
			return true
		}
	}
	return strings.Contains(w, "=?") && strings.Contains(w, "?=")
}

// headerCharset is utf-8 for valid UTF-8, else iso-8859-1, in which any
// octets are text (as textCharset, without us-ascii: ASCII words are
// never encoded unless they hold control characters).
func headerCharset(s string) string {
	if utf8.ValidString(s) {
		return "utf-8"
	}
	return "iso-8859-1"
}

// encodeWords encodes s as encoded-words in charset (utf-8 or iso-8859-1),
// the first at most first octets long and the others at most 75, each
// holding whole characters (RFC 2047 §5: never part of a UTF-8
// character). It uses Q encoding keeping only the characters RFC 2047
// §5(3) allows in a phrase, so the words serve in display names too, or B
// encoding when that is shorter (as for most non-Latin text).
func encodeWords(s, charset string, first int) []string {
	var chars []string
	for i := 0; i < len(s); {
		n := 1
		if charset == "utf-8" {
			_, n = utf8.DecodeRuneInString(s[i:])
		}
		chars = append(chars, s[i:i+n])
		i += n
	}
	qlen := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			if qSafe(s[i]) {
				n++
			} else {
				n += 3
			}
		}
		return n
	}
	enc, cost := "q", qlen
	if base64.StdEncoding.EncodedLen(len(s)) < qlen(s) {
		enc, cost = "b", func(s string) int { return base64.StdEncoding.EncodedLen(len(s)) }
	}
	overhead := len("=?" + charset + "?q?" + "?=")
	word := func(text string) string {
		if enc == "b" {
			return "=?" + charset + "?b?" + base64.StdEncoding.EncodeToString([]byte(text)) + "?="
		}
		var b strings.Builder
		b.WriteString("=?" + charset + "?q?")
		for i := 0; i < len(text); i++ {
			switch c := text[i]; {
			case c == ' ':
				b.WriteByte('_')
			case qSafe(c):
				b.WriteByte(c)
			default:
				fmt.Fprintf(&b, "=%02X", c)
			}
		}
		b.WriteString("?=")
		return b.String()
	}
	var words []string
	limit, cur := first, ""
	for _, c := range chars {
		if cur != "" && overhead+cost(cur+c) > limit {
			words = append(words, word(cur))
			limit, cur = wordMax, ""
		}
		cur += c
	}
	return append(words, word(cur))
}

// spaceTokens splits a structured value where folding may go: at single
// spaces outside quoted strings. A fold inside a quoted string (a quoted
// local part, a display name, a file name) or at a run of spaces is legal
// FWS but not read back the same by every parser (net/mail collapses the
// run), so those spaces stay inside their token.
func spaceTokens(v string) []token {
	var out []token
	start, inQuote, escaped := 0, false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
			continue
		case c == '\\' && inQuote:
			escaped = true
			continue
		case c == '"':
			inQuote = !inQuote
			continue
		case c != ' ' || inQuote || i == 0 || v[i-1] == ' ' || i+1 == len(v) || v[i+1] == ' ':
			continue
		}
		out = append(out, token{ws: " ", text: v[start:i]})
		start = i + 1
	}
	return append(out, token{ws: " ", text: v[start:]})
}

// qSafe reports whether c stands for itself in a Q-encoded word that may
// be in a phrase (RFC 2047 §5(3)); a space is written as "_".
func qSafe(c byte) bool {
	return c == ' ' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '!' || c == '*' || c == '+' || c == '-' || c == '/'
}
