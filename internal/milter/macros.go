package milter

import (
	"strconv"
	"sync"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// macros are one SMTP session's macro values, shared by its milters (the
// client library reads them at each stage). An empty value is not sent.
type macros struct {
	mu sync.Mutex
	m  map[string]string
}

func newMacros() *macros { return &macros{m: map[string]string{}} }

// Get returns a macro's value ("" if unset).
func (b *macros) Get(name string) string {
	v, _ := b.GetEx(name)
	return v
}

// GetEx returns a macro's value and whether it is set and not empty.
func (b *macros) GetEx(name string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.m[name]
	return v, v != ""
}

// Set sets a macro; "" unsets it.
func (b *macros) Set(name, value string) {
	b.mu.Lock()
	b.m[name] = value
	b.mu.Unlock()
}

// The macros sent at each stage, as Postfix's milter_*_macros defaults
// (plus {client_addr}, {client_name}, {client_port} at connect and our
// {tls_group} at HELO). A milter that asks for other macros in the
// negotiation (SMFIP setsymlist) gets those of them we know instead.
var (
	connectMacros = []string{"j", "{daemon_name}", "{daemon_addr}", "{daemon_port}", "v", "_", "{client_addr}", "{client_port}", "{client_name}", "{client_ptr}"}
	heloMacros    = []string{"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}", "{verify}", "{tls_group}"}
	mailMacros    = []string{"i", "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}", "{mail_host}", "{mail_mailer}"}
	rcptMacros    = []string{"i", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}"}
	dataMacros    = []string{"i", "{auth_type}", "{auth_authen}", "{mail_addr}"}
)

// Conn is what the SMTP session knows of its client at connect time.
type Conn struct {
	Hostname   string // j: our host name
	Daemon     string // {daemon_name}: the SMTP listener's name
	DaemonAddr string // {daemon_addr}: our IP address
	DaemonPort int    // {daemon_port}
	Version    string // v
	ClientAddr string // {client_addr}
	ClientPort int    // {client_port}
	// ClientName is the client's name from its PTR record ({client_name},
	// {client_ptr}); "" when there is none (sent as "unknown").
	ClientName string
}

// setConnect fills the connect-stage macros.
func setConnect(b *macros, c Conn) {
	name := c.ClientName
	if name == "" {
		name = "unknown"
	}
	b.Set("j", c.Hostname)
	b.Set("{daemon_name}", c.Daemon)
	b.Set("{daemon_addr}", c.DaemonAddr)
	b.Set("{daemon_port}", strconv.Itoa(c.DaemonPort))
	b.Set("v", c.Version)
	b.Set("_", name+" ["+c.ClientAddr+"]")
	b.Set("{client_addr}", c.ClientAddr)
	b.Set("{client_port}", strconv.Itoa(c.ClientPort))
	b.Set("{client_name}", name)
	b.Set("{client_ptr}", name)
}

// setTLS fills the TLS macros from the connection's one TLS state (after
// STARTTLS, or from the start on an implicit-TLS port), or clears them.
// {cert_subject} and {cert_issuer} are the client certificate's RFC 2253
// DNs when it sent one; {verify} is Sendmail's OK, FAIL or NONE.
func setTLS(b *macros, st tlsinfo.State) {
	set := b.Set
	if !st.TLS {
		for _, k := range heloMacros {
			set(k, "")
		}
		return
	}
	set("{tls_version}", st.Protocol)
	set("{cipher}", st.CipherSSL)
	set("{cipher_bits}", strconv.Itoa(st.UseBits))
	set("{tls_group}", st.Group)
	subject, issuer, verify := "", "", "NONE"
	if st.Peer != nil {
		subject, issuer, verify = st.Peer.SubjectDN, st.Peer.IssuerDN, "FAIL"
		if st.Verified {
			verify = "OK"
		}
	}
	set("{cert_subject}", subject)
	set("{cert_issuer}", issuer)
	set("{verify}", verify)
}
