package importcfg

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Param is one main.cf parameter as written: its raw value (continuation
// lines joined by one space) and where it was set.
type Param struct {
	Name, Value string
	File        string
	Line        int
}

// MainCF is a parsed main.cf.
type MainCF struct {
	File   string
	Params map[string]Param
	Order  []string // names in file order (a repeated name keeps its first place; the last value wins, as in Postfix)
	defs   map[string]string
}

// logicalLines splits Postfix configuration text into logical lines:
// blank lines and lines whose first non-space character is '#' are
// skipped; a line starting with white space continues the one before
// (joined by one space). It reports each logical line with the number of
// its first physical line.
func logicalLines(data []byte, each func(line string, n int) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	var cur string
	start := 0
	flush := func() error {
		if start == 0 {
			return nil
		}
		l, s := cur, start
		cur, start = "", 0
		return each(l, s)
	}
	for n := 1; sc.Scan(); n++ {
		raw := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimLeft(raw, " \t")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if trimmed != raw { // continuation
			if start == 0 {
				return fmt.Errorf("%d: a continuation line (starting with white space) with no line before it", n)
			}
			cur += " " + trimmed
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		cur, start = raw, n
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return flush()
}

// ReadMainCF parses main.cf at path. A line that is not "name = value" is
// an error naming path:line.
func ReadMainCF(path string) (*MainCF, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMainCF(path, data)
}

// ParseMainCF parses main.cf text (path names it in errors).
func ParseMainCF(path string, data []byte) (*MainCF, error) {
	m := &MainCF{File: path, Params: map[string]Param{}}
	err := logicalLines(data, func(line string, n int) error {
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return fmt.Errorf("%s:%d: want \"name = value\": %q", path, n, line)
		}
		if _, seen := m.Params[name]; !seen {
			m.Order = append(m.Order, name)
		}
		m.Params[name] = Param{Name: name, Value: strings.TrimSpace(value), File: path, Line: n}
		return nil
	})
	if err != nil {
		if strings.HasPrefix(err.Error(), path) {
			return nil, err
		}
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return m, nil
}

// Set reports whether name is set in the file (postconf -n).
func (m *MainCF) Set(name string) bool {
	_, ok := m.Params[name]
	return ok
}

// Raw is name's value as written, else its built-in default.
func (m *MainCF) Raw(name string) string {
	if p, ok := m.Params[name]; ok {
		return p.Value
	}
	return m.defaultOf(name)
}

// Get is name's value with $variables expanded.
func (m *MainCF) Get(name string) string {
	return m.Expand(m.Raw(name), nil)
}

// Expand replaces $name, ${name}, $(name), ${name?text}, ${name:text},
// ${name?{text}:{text}} and $$ as Postfix does; extra (the -o overrides
// of a master.cf service) win over main.cf. An unknown name is empty.
func (m *MainCF) Expand(s string, extra map[string]string) string {
	budget := maxExpansions
	return m.expand(s, extra, 0, &budget)
}

// maxExpansions bounds the $name lookups of one Expand, so names that
// refer to each other several times cannot make it run for ever.
const maxExpansions = 10000

func (m *MainCF) lookup(name string, extra map[string]string, depth int, budget *int) (string, bool) {
	if *budget--; *budget < 0 {
		return "", false
	}
	if v, ok := extra[name]; ok {
		return m.expand(v, extra, depth+1, budget), true
	}
	if p, ok := m.Params[name]; ok {
		return m.expand(p.Value, extra, depth+1, budget), true
	}
	if d, ok := m.defaults()[name]; ok {
		return m.expand(d, extra, depth+1, budget), true
	}
	return "", false
}

func (m *MainCF) expand(s string, extra map[string]string, depth int, budget *int) string {
	if depth > 20 || !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		next := s[i+1]
		switch {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '{' || next == '(':
			close := byte('}')
			if next == '(' {
				close = ')'
			}
			end := matching(s, i+1, next, close)
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			b.WriteString(m.expandBraced(s[i+2:end], extra, depth, budget))
			i = end
		case isNameByte(next):
			j := i + 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			v, _ := m.lookup(s[i+1:j], extra, depth, budget)
			b.WriteString(v)
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// expandBraced expands the inside of ${...}: name, name?text, name:text,
// name?{text}:{text}.
func (m *MainCF) expandBraced(in string, extra map[string]string, depth int, budget *int) string {
	j := 0
	for j < len(in) && isNameByte(in[j]) {
		j++
	}
	name, rest := in[:j], in[j:]
	v, _ := m.lookup(name, extra, depth, budget)
	if rest == "" {
		return v
	}
	op, text := rest[0], strings.TrimSpace(rest[1:])
	yes, no := text, ""
	if op == '?' && strings.HasPrefix(text, "{") {
		if e := matching(text, 0, '{', '}'); e > 0 {
			yes = text[1:e]
			tail := strings.TrimSpace(text[e+1:])
			if strings.HasPrefix(tail, ":") {
				tail = strings.TrimSpace(tail[1:])
				if strings.HasPrefix(tail, "{") && strings.HasSuffix(tail, "}") {
					tail = tail[1 : len(tail)-1]
				}
				no = tail
			}
		}
	} else if strings.HasPrefix(text, "{") && strings.HasSuffix(text, "}") {
		yes = text[1 : len(text)-1]
	}
	switch op {
	case '?':
		if v != "" {
			return m.expand(yes, extra, depth+1, budget)
		}
		return m.expand(no, extra, depth+1, budget)
	case ':':
		if v == "" {
			return m.expand(yes, extra, depth+1, budget)
		}
		return ""
	}
	return v
}

// matching finds the index of the bracket closing the one at i.
func matching(s string, i int, open, close byte) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// list splits a Postfix list value (commas and/or white space).
func list(v string) []string {
	// Blanks and commas inside { } do not split (Postfix 3.0's grouping:
	// inline:{ a=b, { c = d e } } is one element).
	var out []string
	depth, start := 0, -1
	for i, r := range v {
		switch r {
		case '{':
			depth++
		case '}':
			depth = max(depth-1, 0)
		}
		sep := depth == 0 && (r == ',' || r == ' ' || r == '\t' || r == '\n')
		switch {
		case sep && start >= 0:
			out, start = append(out, v[start:i]), -1
		case !sep && start < 0:
			start = i
		}
	}
	if start >= 0 {
		out = append(out, v[start:])
	}
	return out
}

// yes is a Postfix boolean.
func yes(v string) bool {
	return strings.EqualFold(v, "yes") || strings.EqualFold(v, "true")
}
