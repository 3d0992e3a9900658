package importcfg

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Entry is one line of a Postfix lookup table's source text.
type Entry struct {
	Key, Value string
	File       string
	Line       int
}

// textTypes are the indexed map types built by postmap from a text
// file of the same name (the .db/.lmdb/.cdb beside it is not read).
var textTypes = map[string]bool{"hash": true, "btree": true, "lmdb": true, "cdb": true, "dbm": true, "sdbm": true, "texthash": true}

// ErrMapType is a map type whose contents cannot be read from a file
// (mysql:, ldap:, regexp:, …).
var ErrMapType = errors.New("map type not read")

// mapSource gives the text file of a map reference "type:name", or why
// it cannot be read. A reference without a type is the default type.
func mapSource(ref string) (file string, err error) {
	ref = strings.TrimPrefix(ref, "proxy:")
	typ, name, ok := strings.Cut(ref, ":")
	if !ok {
		return "", fmt.Errorf("%w: not a map reference (want type:name)", ErrMapType)
	}
	if !textTypes[typ] {
		return "", fmt.Errorf("%w: %s: tables are read only from the source text of hash:, lmdb:, btree:, cdb: and texthash: maps", ErrMapType, typ)
	}
	return name, nil
}

// ReadMap reads the source text of a Postfix map reference ("hash:/etc/
// postfix/transport" reads /etc/postfix/transport): "key value" lines,
// comments, continuation lines. A line without a value is an error naming
// file:line.
func ReadMap(ref string) ([]Entry, error) {
	if body, ok := inlineBody(ref); ok {
		return inlineEntries(body)
	}
	file, err := mapSource(ref)
	if err != nil {
		return nil, err
	}
	return readTable(file, false)
}

// ReadAliases reads an aliases(5) file ("name: value, value").
func ReadAliases(ref string) ([]Entry, error) {
	if body, ok := inlineBody(ref); ok {
		return inlineEntries(body)
	}
	file, err := mapSource(ref)
	if err != nil {
		return nil, err
	}
	return readTable(file, true)
}

func readTable(file string, aliases bool) ([]Entry, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []Entry
	err = logicalLines(data, func(line string, n int) error {
		var key, value string
		if aliases {
			k, v, ok := cutAliasKey(line)
			if !ok {
				return fmt.Errorf("%s:%d: want \"name: value\": %q", file, n, line)
			}
			key, value = k, v
		} else {
			i := strings.IndexAny(line, " \t")
			if i < 0 {
				return fmt.Errorf("%s:%d: want \"key value\": %q", file, n, line)
			}
			key, value = line[:i], strings.TrimSpace(line[i:])
		}
		out = append(out, Entry{Key: key, Value: value, File: file, Line: n})
		return nil
	})
	if err != nil {
		if strings.HasPrefix(err.Error(), file) {
			return nil, err
		}
		return nil, fmt.Errorf("%s:%w", file, err)
	}
	return out, nil
}

// cutAliasKey splits "name: value" where name may be quoted.
func cutAliasKey(line string) (key, value string, ok bool) {
	if strings.HasPrefix(line, `"`) {
		end := strings.IndexByte(line[1:], '"')
		if end < 0 {
			return "", "", false
		}
		key, rest := line[1:end+1], strings.TrimLeft(line[end+2:], " \t")
		if !strings.HasPrefix(rest, ":") {
			return "", "", false
		}
		return key, strings.TrimSpace(rest[1:]), key != ""
	}
	k, v, ok := strings.Cut(line, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		return "", "", false
	}
	return k, strings.TrimSpace(v), true
}

// aliasTargets splits an alias value at commas outside quotes and
// removes the quotes ("|cmd arg", "/file").
func aliasTargets(v string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, c := range v {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			if s := strings.TrimSpace(cur.String()); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		default:
			cur.WriteRune(c)
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// inlineBody is what is between the braces of an inline:{ ... } map
// reference (Postfix 3.0).
func inlineBody(ref string) (string, bool) {
	body, ok := strings.CutPrefix(strings.TrimPrefix(ref, "proxy:"), "inline:")
	body = strings.TrimSpace(body)
	if !ok || !strings.HasPrefix(body, "{") || !strings.HasSuffix(body, "}") {
		return "", false
	}
	return body[1 : len(body)-1], true
}

// inlineEntries reads an inline map's elements: "key=value", or
// "{ key = value }" when the value has blanks or commas.
func inlineEntries(body string) ([]Entry, error) {
	var out []Entry
	for _, el := range list(body) {
		if g, ok := strings.CutPrefix(el, "{"); ok {
			el = strings.TrimSuffix(g, "}")
		}
		k, v, ok := strings.Cut(el, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: element %q: want key=value or { key = value }", ErrMapType, el)
		}
		out = append(out, Entry{Key: k, Value: v, File: "inline map"})
	}
	return out, nil
}
