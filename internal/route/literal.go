package route

import (
	"net"
	"net/netip"
	"strings"
)

// isOwnLiteral reports whether domain is an address literal ("[192.0.2.1]",
// "[IPv6:2001:db8::1]") naming one of this server's addresses: the SMTP
// listeners' IPs, or every interface address for a listener on the
// wildcard address (Postfix: $inet_interfaces).
func (r *Router) isOwnLiteral(domain string) bool {
	ip, ok := literalIP(domain)
	if !ok {
		return false
	}
	wildcard := false
	for _, hp := range r.cfg.ListenAddrs {
		host, _, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		if host == "" {
			wildcard = true
			continue
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			continue // a host name: its addresses are not looked up here
		}
		if a.IsUnspecified() {
			wildcard = true
		} else if a.Unmap() == ip {
			return true
		}
	}
	if !wildcard {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// literalIP is the address of an address literal.
func literalIP(domain string) (netip.Addr, bool) {
	lit, ok := strings.CutPrefix(domain, "[")
	if !ok {
		return netip.Addr{}, false
	}
	lit, ok = strings.CutSuffix(lit, "]")
	if !ok {
		return netip.Addr{}, false
	}
	if len(lit) >= 5 && strings.EqualFold(lit[:5], "IPv6:") {
		lit = lit[5:]
	}
	ip, err := netip.ParseAddr(lit)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
