package web

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Mail clients' autoconfiguration: Thunderbird's autoconfig
// (wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat) and
// Microsoft's Autodiscover in the Outlook "POX" schema ([MS-OXDSCLI]),
// both made from the listeners the configuration has at the time of the
// request.

// MailServer is one listener a client is told to use.
type MailServer struct {
	Type     string // "imap", "pop3" or "smtp"
	Host     string // the public host name
	Port     int
	Implicit bool // TLS from the first byte; else STARTTLS
}

// ClientConfig is what the autoconfiguration answers describe.
type ClientConfig struct {
	// Domains are the mail domains served (local_domains).
	Domains []string
	// Servers in the order of preference.
	Servers []MailServer
	// LocalPartLogin: the login is the local part of the address (the
	// users file's names); else the whole address (e.g. Dovecot).
	LocalPartLogin bool
	// AddressLogin names the domains whose logins are whole addresses
	// even when LocalPartLogin is set (virtual domains: users file names
	// such as alice@example.org).
	AddressLogin map[string]bool
}

// loginIsLocalPart says whether the login for an address in domain is its
// local part.
func (c ClientConfig) loginIsLocalPart(domain string) bool {
	return c.LocalPartLogin && !c.AddressLogin[strings.ToLower(domain)]
}

// Paths of the autoconfiguration answers.
const (
	AutoconfigPath      = "/mail/config-v1.1.xml"
	WellKnownAutoconfig = "/.well-known/autoconfig/mail/config-v1.1.xml"
	AutodiscoverPath    = "/autodiscover/autodiscover.xml"
)

// maxAutodiscoverBody bounds the POSTed request (a few hundred bytes).
const maxAutodiscoverBody = 16 << 10

// serveClientConfig answers an autoconfig or Autodiscover request; false:
// the request is not one (the caller goes on).
func (s *Site) serveClientConfig(w http.ResponseWriter, r *http.Request, host string) bool {
	if s.Clients == nil {
		return false
	}
	switch {
	case r.URL.Path == AutoconfigPath || r.URL.Path == WellKnownAutoconfig:
		s.autoconfig(w, r, host)
	case strings.EqualFold(r.URL.Path, AutodiscoverPath):
		s.autodiscover(w, r)
	default:
		return false
	}
	return true
}

// domainOf is the lower-case domain of an e-mail address ("" if none).
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
}

func served(c ClientConfig, domain string) bool {
	for _, d := range c.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// autoconfig answers Thunderbird: the domain is the emailaddress
// parameter's, else the host's (autoconfig.<domain> or <domain>).
func (s *Site) autoconfig(w http.ResponseWriter, r *http.Request, host string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	c, ok := s.Clients()
	if !ok || len(c.Servers) == 0 {
		http.NotFound(w, r)
		return
	}
	domain := domainOf(r.URL.Query().Get("emailaddress"))
	if domain == "" {
		domain = strings.TrimPrefix(host, "autoconfig.")
	}
	if !served(c, domain) {
		http.NotFound(w, r)
		return
	}
	user := "%EMAILADDRESS%"
	if c.loginIsLocalPart(domain) {
		user = "%EMAILLOCALPART%"
	}
	type server struct {
		Type           string `xml:"type,attr"`
		Hostname       string `xml:"hostname"`
		Port           int    `xml:"port"`
		SocketType     string `xml:"socketType"`
		Authentication string `xml:"authentication"`
		Username       string `xml:"username"`
	}
	type provider struct {
		ID               string   `xml:"id,attr"`
		Domain           string   `xml:"domain"`
		DisplayName      string   `xml:"displayName"`
		DisplayShortName string   `xml:"displayShortName"`
		Incoming         []server `xml:"incomingServer"`
		Outgoing         []server `xml:"outgoingServer"`
	}
	doc := struct {
		XMLName  xml.Name `xml:"clientConfig"`
		Version  string   `xml:"version,attr"`
		Provider provider `xml:"emailProvider"`
	}{Version: "1.1", Provider: provider{ID: domain, Domain: domain, DisplayName: domain, DisplayShortName: domain}}
	for _, m := range c.Servers {
		sv := server{Type: m.Type, Hostname: m.Host, Port: m.Port, SocketType: "STARTTLS", Authentication: "password-cleartext", Username: user}
		if m.Implicit {
			sv.SocketType = "SSL"
		}
		if m.Type == "smtp" {
			doc.Provider.Outgoing = append(doc.Provider.Outgoing, sv)
		} else {
			doc.Provider.Incoming = append(doc.Provider.Incoming, sv)
		}
	}
	writeXML(w, r, "application/xml; charset=utf-8", doc)
}

// autodiscover answers Outlook's POX request: POST of
// <Autodiscover><Request><EMailAddress>.
func (s *Site) autodiscover(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req struct {
		Request struct {
			EMailAddress string `xml:"EMailAddress"`
		} `xml:"Request"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAutodiscoverBody+1))
	if err != nil || len(body) > maxAutodiscoverBody || xml.Unmarshal(body, &req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	addr := strings.TrimSpace(req.Request.EMailAddress)
	c, ok := s.Clients()
	if !ok || len(c.Servers) == 0 || !served(c, domainOf(addr)) {
		http.NotFound(w, r)
		return
	}
	login := addr
	if c.loginIsLocalPart(domainOf(addr)) {
		login = addr[:strings.LastIndexByte(addr, '@')]
	}
	type protocol struct {
		Type           string `xml:"Type"`
		Server         string `xml:"Server"`
		Port           int    `xml:"Port"`
		LoginName      string `xml:"LoginName"`
		DomainRequired string `xml:"DomainRequired"`
		SPA            string `xml:"SPA"`
		SSL            string `xml:"SSL"`
		Encryption     string `xml:"Encryption"`
		AuthRequired   string `xml:"AuthRequired"`
	}
	type account struct {
		AccountType string     `xml:"AccountType"`
		Action      string     `xml:"Action"`
		Protocols   []protocol `xml:"Protocol"`
	}
	type response struct {
		XMLNS   string  `xml:"xmlns,attr"`
		Account account `xml:"Account"`
	}
	doc := struct {
		XMLName  xml.Name `xml:"Autodiscover"`
		XMLNS    string   `xml:"xmlns,attr"`
		Response response `xml:"Response"`
	}{XMLNS: "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
		Response: response{XMLNS: "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a",
			Account: account{AccountType: "email", Action: "settings"}}}
	for _, m := range c.Servers {
		p := protocol{Type: strings.ToUpper(m.Type), Server: m.Host, Port: m.Port, LoginName: login,
			DomainRequired: "off", SPA: "off", SSL: "on", Encryption: "TLS", AuthRequired: "on"}
		if m.Implicit {
			p.Encryption = "SSL"
		}
		doc.Response.Account.Protocols = append(doc.Response.Account.Protocols, p)
	}
	writeXML(w, r, "text/xml; charset=utf-8", doc)
}

func writeXML(w http.ResponseWriter, r *http.Request, ctype string, doc any) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	b.WriteByte('\n')
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Header().Set("Cache-Control", "max-age=300")
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}
