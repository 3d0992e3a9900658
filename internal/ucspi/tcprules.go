package ucspi

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// RuleSyntaxError is a tcprules text line that does not parse.
type RuleSyntaxError struct {
	Line int
	Text string
	Why  string
}

func (e *RuleSyntaxError) Error() string {
	return fmt.Sprintf("line %d: %s: %q", e.Line, e.Why, e.Text)
}

// CompileRules turns tcprules text into cdb records, exactly as Debian's
// tcprules (djb's ucspi-tcp 0.88) does for the lines that one reads, so
// the cdb it writes is byte for byte the same, and takes IPv6 lines as
// Debian's IPv6 tcprules (ucspi-tcp-ipv6) does:
//
//   - lines starting with '#' and empty lines are skipped; trailing
//     spaces, tabs and newlines are cut; a line without ':' is skipped;
//   - the address is everything before the first ':' that is followed by
//     "allow" or "deny" (for an IPv4 line, the first ':'; "::1:allow" is
//     the address "::1", and "2001:db8::allow" the prefix "2001:db8:",
//     which covers every address written so); then "deny" (data
//     "D\0") or "allow", followed only by ,NAME=<q>value<q> pairs where <q>
//     is any quote character (data "+NAME=value\0" each);
//   - an address a.b.c.X-Y (no '=' and no '@') becomes one key per number
//     X..Y (Y capped at 255).
func CompileRules(r io.Reader) (keys, values [][]byte, err error) {
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, rerr := br.ReadBytes('\n')
		if len(line) == 0 && rerr != nil {
			if rerr == io.EOF {
				return keys, values, nil
			}
			return nil, nil, rerr
		}
		if line[0] == '#' || line[0] == '\n' {
			continue
		}
		line = bytes.TrimRight(line, "\n \t")
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		// The separator is the first ':' followed by allow or deny, as in
		// Debian's (IPv6) tcprules, so "::1:allow" and "2001:db8::1:deny"
		// work; for IPv4 lines that is the first ':' anyway.
		for i := colon; i >= 0 && i < len(line); {
			if r := line[i+1:]; bytes.HasPrefix(r, []byte("allow")) || bytes.HasPrefix(r, []byte("deny")) {
				colon = i
				break
			}
			next := bytes.IndexByte(line[i+1:], ':')
			if next < 0 {
				break
			}
			i += 1 + next
		}
		address, rest := line[:colon], line[colon+1:]
		var data []byte
		switch {
		case bytes.HasPrefix(rest, []byte("deny")):
			data, rest = []byte("D\x00"), rest[4:]
		case bytes.HasPrefix(rest, []byte("allow")):
			rest = rest[5:]
		default:
			return nil, nil, &RuleSyntaxError{n, string(line), "want allow or deny after the address"}
		}
		for len(rest) > 0 {
			if rest[0] != ',' {
				return nil, nil, &RuleSyntaxError{n, string(line), "want ,NAME=\"value\" after allow/deny"}
			}
			eq := bytes.IndexByte(rest, '=')
			if eq < 0 || eq+1 >= len(rest) {
				return nil, nil, &RuleSyntaxError{n, string(line), "variable without =\"value\""}
			}
			data = append(append(data, '+'), rest[1:eq+1]...)
			quote := rest[eq+1]
			rest = rest[eq+2:]
			end := bytes.IndexByte(rest, quote)
			if end < 0 {
				return nil, nil, &RuleSyntaxError{n, string(line), fmt.Sprintf("value not closed by %q", quote)}
			}
			data = append(append(data, rest[:end]...), 0)
			rest = rest[end+1:]
		}
		ks, err := ruleKeys(address)
		if err != nil {
			return nil, nil, &RuleSyntaxError{n, string(line), err.Error()}
		}
		for _, k := range ks {
			keys = append(keys, k)
			values = append(values, data)
		}
	}
}

// ruleKeys expands a.b.c.X-Y ranges as tcprules does.
func ruleKeys(address []byte) ([][]byte, error) {
	dash := bytes.IndexByte(address, '-')
	if dash < 0 || bytes.ContainsAny(address, "=@") {
		return [][]byte{address}, nil
	}
	left := bytes.LastIndexByte(address[:dash], '.') + 1
	right := len(address)
	if i := bytes.IndexByte(address[dash+1:], '.'); i >= 0 {
		right = dash + 1 + i
	}
	bot, err1 := parseRangeNumber(address[left:dash])
	top, err2 := parseRangeNumber(address[dash+1 : right])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("range %q is not NUMBER-NUMBER", address[left:right])
	}
	top = min(top, 255)
	var keys [][]byte
	for v := bot; v <= top; v++ {
		k := append([]byte{}, address[:left]...)
		k = strconv.AppendUint(k, v, 10)
		keys = append(keys, append(k, address[right:]...))
	}
	return keys, nil
}

// parseRangeNumber reads a decimal number; empty is 0, as tcprules'
// scan_ulong sees it.
func parseRangeNumber(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return strconv.ParseUint(string(b), 10, 32)
}
