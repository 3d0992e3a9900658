package config

import (
	"net"
	"strings"
)

// Dev is the configuration `tlsmail serve` runs with when given no
// --config: everything on loopback, local domain localhost, the dev CA's
// server certificate, and seven listeners — MX with STARTTLS on 2525,
// SMTPS on 2465, submission (STARTTLS, AUTH required) on 2587, POP3
// with STLS on 2110 and POP3S on 2995, IMAP with STARTTLS on 2143 and
// IMAPS on 2993 — on 127.0.0.1 and, as optional
// "-ipv6" listeners, on [::1] with the same ports (the dev certificate
// names both; a machine without IPv6 runs on 127.0.0.1 alone).
func Dev(dataDir string) *Config {
	c := &Config{
		Hostname:     "localhost",
		DataDir:      dataDir,
		LocalDomains: []string{"localhost"},
		Metrics:      "127.0.0.1:2925",
		UsersFile:    "users",
		Aliases:      map[string]string{"postmaster": "demo", "abuse": "demo"},
		TLS:          TLS{Cert: "tls/server.pem", Key: "tls/server.key", MinVersion: "TLSv1.2"},
		Listeners: []Listener{
			{Name: "mx", Address: "127.0.0.1:2525", Mode: ModeSTARTTLS, Auth: AuthOptional},
			{Name: "smtps", Address: "127.0.0.1:2465", Mode: ModeImplicit, Auth: AuthOptional},
			{Name: "submission", Address: "127.0.0.1:2587", Mode: ModeSTARTTLS, Auth: AuthRequired},
		},
		POP3: []POP3Listener{
			{Name: "pop3", Address: "127.0.0.1:2110", Mode: ModeSTARTTLS},
			{Name: "pop3s", Address: "127.0.0.1:2995", Mode: ModeImplicit},
		},
	}
	for _, l := range c.Listeners {
		l.Name, l.Address, l.Optional = l.Name+"-ipv6", ipv6Loopback(l.Address), true
		c.Listeners = append(c.Listeners, l)
	}
	for _, p := range c.POP3 {
		p.Name, p.Address, p.Optional = p.Name+"-ipv6", ipv6Loopback(p.Address), true
		c.POP3 = append(c.POP3, p)
	}
	c.IMAP = devIMAP()
	c.Defaults()
	return c
}

// ipv6Loopback is addr (127.0.0.1:PORT) with the host ::1.
func ipv6Loopback(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	return net.JoinHostPort("::1", port)
}
