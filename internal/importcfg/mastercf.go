package importcfg

import (
	"fmt"
	"os"
	"strings"
)

// Service is one master.cf entry.
type Service struct {
	Name, Type       string // "smtp", "inet"; Name may be host:port
	Private, Unpriv  string
	Chroot, Wakeup   string
	MaxProc, Command string
	Args             []string          // after the command, without -o pairs
	Overrides        map[string]string // -o name=value (raw)
	OverrideOrder    []string
	Line             int
}

// MasterCF is a parsed master.cf: the services that are on (a
// commented-out entry is not a service).
type MasterCF struct {
	File     string
	Services []Service
}

// ReadMasterCF parses master.cf at path; a malformed entry is an error
// naming path:line.
func ReadMasterCF(path string) (*MasterCF, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMasterCF(path, data)
}

// ParseMasterCF parses master.cf text (path names it in errors).
func ParseMasterCF(path string, data []byte) (*MasterCF, error) {
	mc := &MasterCF{File: path}
	err := logicalLines(data, func(line string, n int) error {
		f, err := masterFields(line)
		if err != nil {
			return fmt.Errorf("%s:%d: %v", path, n, err)
		}
		if len(f) < 8 {
			return fmt.Errorf("%s:%d: want 8 fields (service type private unpriv chroot wakeup maxproc command), got %d", path, n, len(f))
		}
		s := Service{Name: f[0], Type: f[1], Private: f[2], Unpriv: f[3], Chroot: f[4], Wakeup: f[5], MaxProc: f[6], Command: f[7],
			Overrides: map[string]string{}, Line: n}
		args := f[8:]
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a != "-o" {
				s.Args = append(s.Args, a)
				continue
			}
			if i+1 == len(args) {
				return fmt.Errorf("%s:%d: -o without name=value", path, n)
			}
			i++
			name, value, ok := strings.Cut(args[i], "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				return fmt.Errorf("%s:%d: -o %q is not name=value", path, n, args[i])
			}
			if _, seen := s.Overrides[name]; !seen {
				s.OverrideOrder = append(s.OverrideOrder, name)
			}
			s.Overrides[name] = strings.TrimSpace(value)
		}
		mc.Services = append(mc.Services, s)
		return nil
	})
	if err != nil {
		if strings.HasPrefix(err.Error(), path) {
			return nil, err
		}
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return mc, nil
}

// masterFields splits a master.cf line at white space; "{ text }" is
// one field (Postfix 3.0: "-o { name = value }"), its braces removed.
func masterFields(line string) ([]string, error) {
	var out []string
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '{':
			e := matching(line, i, '{', '}')
			if e < 0 {
				return nil, fmt.Errorf("'{' without '}'")
			}
			out = append(out, strings.TrimSpace(line[i+1:e]))
			i = e + 1
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' {
				j++
			}
			out = append(out, line[i:j])
			i = j
		}
	}
	return out, nil
}

// servicePorts are the inet service names Debian's /etc/services gives.
var servicePorts = map[string]string{"smtp": "25", "submission": "587", "smtps": "465", "submissions": "465", "lmtp": "24"}

// hostPort splits an inet service name ("smtp", "127.0.0.1:smtp",
// "2525") into host and port number; ok is false for a name it does not
// know.
func hostPort(name string) (host, port string, ok bool) {
	host, svc := "", name
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		host, svc = strings.Trim(name[:i], "[]"), name[i+1:]
	}
	if p, known := servicePorts[svc]; known {
		return host, p, true
	}
	if svc != "" && strings.Trim(svc, "0123456789") == "" {
		return host, svc, true
	}
	return host, "", false
}
