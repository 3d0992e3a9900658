package ucspi

import (
	"bytes"
	"fmt"
	"net"
	"strings"
)

// Decision is what the rules say about a connection.
type Decision struct {
	Found bool     // some rule matched
	Key   string   // the key that matched
	Deny  bool     // a D record: drop the connection
	Env   []string // NAME=value from +NAME=value records, in order
}

// Lookup finds the rule for a peer in a tcprules cdb (ucspi-ssl.md §4.3),
// doing a superset of the djb/Debian and fehcom orders so cdbs built by
// either tcprules work:
//
//  1. INFO@IP, INFO@=HOST (when ident info is known)
//  2. IP (dotted IPv4; IPv6 compressed as Debian writes it, then
//     expanded upper-case as fehcom writes it)
//  3. =HOST
//  4. prefixes: IPv4 cut after each '.', IPv6 after each ':' (longest first)
//  5. fehcom CIDR keys, longest prefix first (with and without the NUL
//     that newer fehcom tcprules appends)
//  6. =.suffixes of HOST (longest first), then "="
//  7. the empty key (default rule)
//
// The first key found wins.
func Lookup(db *CDB, ip net.IP, host, info string) (Decision, error) {
	for _, key := range lookupKeys(ip, host, info) {
		data, ok, err := db.Get([]byte(key))
		if err != nil {
			return Decision{}, err
		}
		if ok {
			d := parseRuleData(data)
			d.Found, d.Key = true, key
			return d, nil
		}
	}
	return Decision{}, nil
}

func lookupKeys(ip net.IP, host, info string) []string {
	var keys []string
	v4 := ip.To4()
	ipText := ""
	expanded := ""
	if v4 != nil {
		ipText = v4.String()
	} else if ip != nil {
		ipText = ip.String()
		expanded = expandIPv6(ip)
	}
	if info != "" {
		keys = append(keys, info+"@"+ipText)
		if expanded != "" {
			keys = append(keys, info+"@"+expanded)
		}
		if host != "" {
			keys = append(keys, info+"@="+host)
		}
	}
	keys = append(keys, ipText)
	if expanded != "" {
		keys = append(keys, expanded)
	}
	if host != "" {
		keys = append(keys, "="+host)
	}
	sep := byte('.')
	if v4 == nil {
		sep = ':'
	}
	for i := len(ipText) - 1; i > 0; i-- {
		if ipText[i-1] == sep {
			keys = append(keys, ipText[:i])
		}
	}
	keys = append(keys, cidrKeys(ip)...)
	if host != "" {
		for i := 0; i < len(host); i++ {
			if host[i] == '.' {
				keys = append(keys, "="+host[i:])
			}
		}
		keys = append(keys, "=")
	}
	return append(keys, "")
}

// expandIPv6 is fehcom's form: eight 4-digit upper-case hex groups.
func expandIPv6(ip net.IP) string {
	ip16 := ip.To16()
	parts := make([]string, 8)
	for i := range parts {
		parts[i] = fmt.Sprintf("%02X%02X", ip16[2*i], ip16[2*i+1])
	}
	return strings.Join(parts, ":")
}

const cidrAlphabet = "abcdefghijklmnopqrstuvwxyz123456"

// CIDRKey encodes a prefix as fehcom tcprules does (§4.4): '_' and one
// character per bit for IPv4, '^' and one per bit for IPv6.
func CIDRKey(ip net.IP, bits int) string {
	var b strings.Builder
	if v4 := ip.To4(); v4 != nil {
		b.WriteByte('_')
		for i := 0; i < bits; i++ {
			if v4[i/8]&(0x80>>(i%8)) != 0 {
				b.WriteByte(cidrAlphabet[i])
			} else {
				b.WriteByte('0')
			}
		}
		return b.String()
	}
	ip16 := ip.To16()
	b.WriteByte('^')
	ones := 0
	for i := 0; i < bits; i++ {
		if ip16[i/8]&(0x80>>(i%8)) != 0 {
			b.WriteByte(byte(0x60 + ones))
			ones++
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// cidrKeys are the CIDR candidates for ip, longest prefix first, each also
// with a trailing NUL; prefix length 1 is never tried (as fehcom).
func cidrKeys(ip net.IP) []string {
	n := 128
	if ip.To4() != nil {
		n = 32
	}
	if ip == nil {
		return nil
	}
	var out []string
	for p := n; p >= 2; p-- {
		k := CIDRKey(ip, p)
		out = append(out, k, k+"\x00")
	}
	return out
}

// parseRuleData walks NUL-terminated records: "D" denies, "+NAME=value"
// sets a variable; anything else is ignored.
func parseRuleData(data []byte) Decision {
	var d Decision
	for _, rec := range bytes.Split(data, []byte{0}) {
		switch {
		case len(rec) == 0:
		case rec[0] == 'D':
			d.Deny = true
		case rec[0] == '+':
			if bytes.IndexByte(rec, '=') > 0 {
				d.Env = append(d.Env, string(rec[1:]))
			}
		}
	}
	return d
}
