package ucspi

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// peer is what admission learned about a connection.
type peer struct {
	remoteHost string   // PTR name ("" with -H, without a PTR, or unconfirmed with -p)
	ident      string   // the log form: LOCALHOST:LOCALIP:PORT REMOTEHOST:REMOTEIP:INFO:PORT
	env        []string // the program's environment so far
	ruleEnv    []string // NAME=value set by the -y and -x rules, in order
}

// admit decides whether a connection is served, in UNEW's order
// (ucspi-ssl.md §1.4 step 2.3): the -y rules on the IP alone, then the PTR
// lookup (forward-confirmed with -p), ident (-r), the -x rules with
// everything known, and a MAXCONIP set by the rules. It logs the deny.
func (s *Server) admit(c net.Conn) (*peer, bool) {
	local := c.LocalAddr().(*net.TCPAddr)
	remote := c.RemoteAddr().(*net.TCPAddr)
	localIP, remoteIP := addrIP(local), addrIP(remote)
	p := &peer{}
	ipAllowed := false
	if s.o.IPRules != "" {
		d, err := s.rules(s.o.IPRules, remote.IP, "", "")
		if err != nil {
			s.logf(1, "warning: dropping connection, unable to read %s: %v", s.o.IPRules, err)
			return nil, false
		}
		if d.Deny {
			s.logf(2, "deny %d %s:%d %s::%d (-y %s)", s.pid, localIP, local.Port, remoteIP, remote.Port, d.Key)
			return nil, false
		}
		ipAllowed = d.Found
		p.ruleEnv = append(p.ruleEnv, d.Env...)
	}
	if s.o.LookupHost {
		p.remoteHost = s.lookupHost(remote.IP)
	}
	remoteInfo := ""
	if s.o.Ident {
		port := s.o.IdentPort
		if port == 0 {
			port = IdentPort
		}
		info, err := IdentLookup(context.Background(), local.IP, net.JoinHostPort(remoteIP, strconv.Itoa(port)), remote.Port, local.Port, s.o.IdentTimeout)
		if err != nil {
			s.logf(3, "%d %v", s.pid, err)
		}
		remoteInfo = info
	}
	localHost := s.o.LocalHost
	if s.o.Verbosity >= 1 { // only logged; -q builds no log line
		p.ident = fmt.Sprintf("%s:%s:%d %s:%s:%s:%d", logField(localHost), localIP, local.Port, logField(p.remoteHost), remoteIP, logField(remoteInfo), remote.Port)
	}
	if s.o.Rules != "" && !ipAllowed {
		d, err := s.rules(s.o.Rules, remote.IP, p.remoteHost, remoteInfo)
		if err != nil {
			s.logf(1, "warning: dropping connection, unable to read %s: %v", s.o.Rules, err)
			return nil, false
		}
		if d.Deny {
			s.logf(2, "deny %d %s", s.pid, p.ident)
			return nil, false
		}
		p.ruleEnv = append(p.ruleEnv, d.Env...)
	}
	// MAXCONIP from the rules lowers the per-IP limit for this peer (never
	// above -c); the count already includes this connection (§4.5).
	if v, ok := ruleVar(p.ruleEnv, "MAXCONIP"); ok {
		if limit, err := strconv.Atoi(v); err == nil && limit > 0 && limit < s.o.MaxChildren {
			s.mu.Lock()
			n := s.perIP[remoteIP]
			s.mu.Unlock()
			if n > limit {
				s.logf(1, "deny %d %s ip connection limit:%d exceeded", s.pid, p.ident, limit)
				return nil, false
			}
		}
	}

	// The program's variables; Server.start adds this process's
	// environment under them.
	env := append(make([]string, 0, len(p.ruleEnv)+16), p.ruleEnv...)
	set := func(k, v string) { env = append(env, k+"="+v) }
	proto := "TLS"
	if s.o.TCPEnv {
		proto = "TCP"
		if remote.IP.To4() == nil {
			proto = "TCP6"
		}
	}
	set("PROTO", proto)
	pres := prefixes(s.o.TCPEnv)
	if proto == "TCP6" {
		// A native IPv6 peer also gets the TCP6* copies (UNEW;
		// ucspi-ssl.md §1.7): s/qmail's qmail-smtpd reads TCP6REMOTEIP
		// and TCP6LOCALPORT before the TCP* ones. UNEW has no
		// TCP6REMOTEINFO; it has TCP6INTERFACE.
		pres = append(pres, "TCP6")
	}
	for _, pre := range pres {
		set(pre+"LOCALIP", localIP)
		set(pre+"LOCALPORT", strconv.Itoa(local.Port))
		if localHost != "" {
			set(pre+"LOCALHOST", localHost)
		}
		set(pre+"REMOTEIP", remoteIP)
		set(pre+"REMOTEPORT", strconv.Itoa(remote.Port))
		if p.remoteHost != "" {
			set(pre+"REMOTEHOST", p.remoteHost)
		}
		if remoteInfo != "" && pre != "TCP6" {
			set(pre+"REMOTEINFO", remoteInfo)
		}
	}
	if proto == "TCP6" && remote.Zone != "" {
		set("TCP6INTERFACE", remote.Zone)
	}
	p.env = env
	return p, true
}

// lookupHost is the peer's PTR name, or "". With -p (paranoid) the name
// counts only if one of its addresses is the peer's.
func (s *Server) lookupHost(ip net.IP) string {
	r := s.o.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx := context.Background()
	names, err := r.LookupAddr(ctx, ip.String())
	if err != nil || len(names) == 0 {
		return ""
	}
	name := strings.TrimSuffix(names[0], ".")
	if !s.o.Paranoid {
		return name
	}
	addrs, err := r.LookupIPAddr(ctx, name)
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			return name
		}
	}
	return ""
}

// ruleVar is the last value the rules gave NAME.
func ruleVar(env []string, name string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}
