package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// LoadAll is Load for `tlsmail check`: when the file has problems it
// returns every one it can find, not only the first. After a problem at a
// setting's line it blanks that line and loads again, so the next problem
// shows up; it stops at a syntax error, a problem with no line, a table
// header, or after 50 problems. The configuration is returned only when
// there are none.
func LoadAll(path string) (*Config, []*Error) {
	c, err := Load(path)
	if err == nil {
		return c, nil
	}
	src, rerr := os.ReadFile(path)
	var first *Error
	if !errors.As(err, &first) {
		return nil, []*Error{{File: path, Msg: err.Error()}}
	}
	if rerr != nil {
		return nil, []*Error{first}
	}
	dir, terr := os.MkdirTemp("", "tlsmail-check-")
	if terr != nil {
		return nil, []*Error{first}
	}
	defer os.RemoveAll(dir)
	// Same base name and directory-relative meaning are not needed: only
	// the messages are kept, with the real file name put back.
	tmp := filepath.Join(dir, filepath.Base(path))
	lines := strings.Split(string(src), "\n")
	problems := []*Error{first}
	for e := first; len(problems) < 50; {
		if e.Line <= 0 || e.Line > len(lines) || !parses(strings.Join(lines, "\n")) || headerLine.MatchString(lines[e.Line-1]) {
			break
		}
		lines[e.Line-1] = ""
		next := strings.Join(lines, "\n")
		if !parses(next) { // the line was part of a multi-line value
			break
		}
		if err := os.WriteFile(tmp, []byte(next), 0o600); err != nil {
			break
		}
		_, err := Load(tmp)
		var ne *Error
		if err == nil || !errors.As(err, &ne) {
			break
		}
		if ne.Line > 0 && ne.Line <= len(lines) && headerLine.MatchString(lines[ne.Line-1]) {
			// A problem at a table's header after a line was blanked is
			// most likely that line's setting now missing ("address \"\""):
			// not reported, and nothing after it can be trusted.
			break
		}
		ne.File = path
		ne.Msg = strings.ReplaceAll(ne.Msg, tmp, path)
		problems = append(problems, ne)
		e = ne
	}
	// In the file's order; those without a line last.
	sort.SliceStable(problems, func(i, j int) bool {
		li, lj := problems[i].Line, problems[j].Line
		return li > 0 && (lj == 0 || li < lj)
	})
	return nil, problems
}

var headerLine = regexp.MustCompile(`^\s*\[`)

// parses reports whether src is TOML at all (after a syntax error the
// rest of the file cannot be read reliably).
func parses(src string) bool {
	var m map[string]any
	_, err := toml.Decode(src, &m)
	return err == nil
}
