package testpeer

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// DNSServer is a small in-process DNS server for tests, on a loopback UDP
// and TCP port: records come from a zone given as text (RFC 1035 lines),
// names can be marked DNSSEC-secure (AD set in answers) or made to
// SERVFAIL.
type DNSServer struct {
	Addr string

	mu       sync.Mutex
	records  map[string][]dns.RR // by lower-case owner name
	secure   map[string]bool
	servfail map[string]bool
}

// StartDNS starts a server answering from zone lines such as
// "example.test. 300 IN MX 10 mx.example.test.".
func StartDNS(t testing.TB, zone ...string) *DNSServer {
	t.Helper()
	s := &DNSServer{records: map[string][]dns.RR{}, secure: map[string]bool{}, servfail: map[string]bool{}}
	for _, z := range zone {
		s.Add(t, z)
	}
	// UDP and TCP on the same port; another process may hold the TCP
	// port the kernel's free UDP port happens to match, so try a few.
	var pc net.PacketConn
	var l net.Listener
	for try := 0; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		s.Addr = pc.LocalAddr().String()
		if l, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: l, Handler: s}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return s
}

// Add adds one record from its text form.
func (s *DNSServer) Add(t testing.TB, line string) {
	t.Helper()
	s.put(t, line, false)
}

// Secure marks a name's answers as DNSSEC-validated (AD bit set).
func (s *DNSServer) Secure(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secure[strings.ToLower(dns.Fqdn(name))] = true
}

// ServFail makes lookups of a name fail with SERVFAIL.
func (s *DNSServer) ServFail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servfail[strings.ToLower(dns.Fqdn(name))] = true
}

// ServeDNS answers one query.
func (s *DNSServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) == 1 {
		q := r.Question[0]
		name := strings.ToLower(q.Name)
		s.mu.Lock()
		switch {
		case s.servfail[name]:
			m.Rcode = dns.RcodeServerFailure
		default:
			rrs, exists := s.records[name]
			secure := s.secure[name]
			for hops := 0; hops < 8; hops++ {
				var next string
				for _, rr := range rrs {
					switch {
					case rr.Header().Rrtype == q.Qtype:
						m.Answer = append(m.Answer, rr)
					case rr.Header().Rrtype == dns.TypeCNAME:
						// Chase the alias as a recursive resolver would.
						m.Answer = append(m.Answer, rr)
						next = strings.ToLower(rr.(*dns.CNAME).Target)
					}
				}
				if next == "" || q.Qtype == dns.TypeCNAME {
					break
				}
				rrs = s.records[next]
				secure = secure && s.secure[next]
			}
			if !exists && !s.hasSubdomain(name) {
				m.Rcode = dns.RcodeNameError
			}
			m.AuthenticatedData = secure
		}
		s.mu.Unlock()
	}
	_ = w.WriteMsg(m)
}

func (s *DNSServer) hasSubdomain(name string) bool {
	for n := range s.records {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}

// Replace replaces the records of the same name and type with this one.
func (s *DNSServer) Replace(t testing.TB, line string) {
	t.Helper()
	s.put(t, line, true)
}

// put parses one zone line and stores its record, after dropping the
// name's records of the same type if replace.
func (s *DNSServer) put(t testing.TB, line string, replace bool) {
	t.Helper()
	rr, err := dns.NewRR(line)
	if err != nil {
		t.Fatalf("zone line %q: %v", line, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.ToLower(rr.Header().Name)
	if replace {
		var keep []dns.RR
		for _, old := range s.records[name] {
			if old.Header().Rrtype != rr.Header().Rrtype {
				keep = append(keep, old)
			}
		}
		s.records[name] = keep
	}
	s.records[name] = append(s.records[name], rr)
}
