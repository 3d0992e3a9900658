package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Keywords ($Junk, $NotJunk, custom1, …) are kept as Dovecot keeps them
// in a Maildir, so Dovecot reading the same store sees them: the folder's
// dovecot-keywords file maps an index 0–25 to a name ("0 $Junk"), and a
// message carries the letter 'a'+index among its info flags. $Forwarded
// is both: Maildir's P (passed), which mutt and mbsync read, and a keyword
// letter, which is how Dovecot keeps it (it shows no flag for P). A folder holds at most 26
// keywords; a 27th is refused. Letters in a file name that the file does
// not define are kept on disk and not shown.

// KeywordsFile is the keyword table in each Maildir folder.
const KeywordsFile = "dovecot-keywords"

// maxKeywords is the number of Maildir keyword letters (a–z).
const maxKeywords = 26

// keywords is one folder's table: names[i] is letter 'a'+i ("" unused).
type keywords struct{ names [maxKeywords]string }

// kwMu serialises adding keywords to a file (any folder; it is rare).
var kwMu sync.Mutex

// readKeywords reads d's table; a missing or unreadable file is empty.
func readKeywords(d maildir.Dir) keywords {
	var k keywords
	b, err := os.ReadFile(filepath.Join(string(d), KeywordsFile))
	if err != nil {
		return k
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		idx, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		i, err := strconv.Atoi(idx)
		if !ok || err != nil || i < 0 || i >= maxKeywords || !validKeyword(name) {
			continue
		}
		k.names[i] = name
	}
	return k
}

// validKeyword: an IMAP atom that is not a system flag.
func validKeyword(name string) bool {
	if name == "" || strings.HasPrefix(name, `\`) || len(name) > 128 {
		return false
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"]`, c) >= 0 {
			return false
		}
	}
	return true
}

// isKeyword: flag is a keyword (with a letter a–z), not a system flag;
// $Forwarded is one too (and P as well).
func isKeyword(f imap.Flag) bool {
	return !strings.HasPrefix(string(f), `\`)
}

// letter is the letter of keyword name, if the table has it.
func (k *keywords) letter(name string) (rune, bool) {
	for i, n := range k.names {
		if n != "" && strings.EqualFold(n, name) {
			return rune('a' + i), true
		}
	}
	return 0, false
}

// flags turns Maildir info letters into IMAP flags: system flags, then
// the keywords the table defines.
func (k *keywords) flags(letters string) []imap.Flag {
	out := imapFlags(letters)
	for _, c := range letters {
		if c >= 'a' && c <= 'z' && k.names[c-'a'] != "" && !hasFlag(out, k.names[c-'a']) {
			out = append(out, imap.Flag(k.names[c-'a']))
		}
	}
	return out
}

// letters turns IMAP flags into Maildir info letters; keywords the
// table lacks are left out (see assignKeywords).
func (k *keywords) letters(flags []imap.Flag) string {
	s := maildirFlags(flags)
	for _, f := range flags {
		if !isKeyword(f) {
			continue
		}
		if l, ok := k.letter(string(f)); ok {
			s += string(l)
		}
	}
	return maildir.NormalizeFlags(s)
}

// defined lists the table's keywords (for FLAGS) but $Forwarded, which
// allFlags has.
func (k *keywords) defined() []imap.Flag {
	var out []imap.Flag
	for _, n := range k.names {
		if n != "" && !hasFlag(allFlags, n) {
			out = append(out, imap.Flag(n))
		}
	}
	return out
}

// errTooManyKeywords: the folder's 26 letters are taken.
var errTooManyKeywords = errors.New("the mailbox has 26 keywords, the most a Maildir keeps")

// errKeywordLimit is the reply to a STORE, COPY or MOVE that needs a
// 27th keyword in a folder.
var errKeywordLimit = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit, Text: errTooManyKeywords.Error()}

// assignKeywords gives every keyword in flags a letter in d's table,
// writing the file (through safeio) when one is new, and returns the
// table.
func assignKeywords(d maildir.Dir, flags []imap.Flag) (keywords, error) {
	k := readKeywords(d)
	var missing []string
	for _, f := range flags {
		if !isKeyword(f) {
			continue
		}
		if !validKeyword(string(f)) {
			return k, fmt.Errorf("invalid keyword %q", f)
		}
		if _, ok := k.letter(string(f)); !ok {
			missing = append(missing, string(f))
		}
	}
	if len(missing) == 0 {
		return k, nil
	}
	kwMu.Lock()
	defer kwMu.Unlock()
	k = readKeywords(d) // another session may have added some meanwhile
	changed := false
	for _, name := range missing {
		if _, ok := k.letter(name); ok {
			continue
		}
		free := -1
		for i, n := range k.names {
			if n == "" {
				free = i
				break
			}
		}
		if free < 0 {
			return k, errTooManyKeywords
		}
		k.names[free], changed = name, true
	}
	if changed {
		var b strings.Builder
		for i, n := range k.names {
			if n != "" {
				fmt.Fprintf(&b, "%d %s\n", i, n)
			}
		}
		if err := safeio.WriteFile(filepath.Join(string(d), KeywordsFile), []byte(b.String()), 0o600); err != nil {
			return k, fmt.Errorf("keywords: %w", err)
		}
	}
	return k, nil
}

// translateKeywords maps the letters of a message copied or moved from
// src to dst: system letters stay, keyword letters become dst's letters
// for the same names (added to dst's table as needed).
func translateKeywords(src, dst maildir.Dir, letters string) (string, error) {
	if !strings.ContainsFunc(letters, func(r rune) bool { return r >= 'a' && r <= 'z' }) {
		return letters, nil
	}
	sk := readKeywords(src)
	fl := sk.flags(letters)
	dk, err := assignKeywords(dst, fl)
	if err != nil {
		return "", err
	}
	return dk.letters(fl), nil
}

// hasFlag: flags holds name (case-insensitive).
func hasFlag(flags []imap.Flag, name string) bool {
	for _, f := range flags {
		if strings.EqualFold(string(f), name) {
			return true
		}
	}
	return false
}
