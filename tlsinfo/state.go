// Package tlsinfo holds the one value that describes what security a
// connection got — tlsinfo.State — and renders it for every upper layer:
// the UCSPI-SSL/mod_ssl environment, the Received header clause, log
// attributes and JSON. Every part of tlsmail that does TLS produces a State;
// nothing re-derives these facts elsewhere.
package tlsinfo

import (
	"crypto/tls"
)

// Role is the local side of a connection.
type Role string

// The two roles a State can describe.
const (
	RoleServer Role = "server" // we accepted the connection; the peer is a client
	RoleClient Role = "client" // we dialed; the peer is a server
)

// State is the security state of one TLS connection. The zero value means
// "no TLS" (plaintext).
type State struct {
	TLS        bool        `json:"tls"`
	Role       Role        `json:"role,omitempty"`
	Version    uint16      `json:"-"`
	Protocol   string      `json:"protocol,omitempty"` // OpenSSL name: "TLSv1.3"
	SuiteID    uint16      `json:"-"`
	Cipher     string      `json:"cipher,omitempty"`         // IANA name
	CipherSSL  string      `json:"cipher_openssl,omitempty"` // OpenSSL name
	UseBits    int         `json:"cipher_bits,omitempty"`
	AlgBits    int         `json:"cipher_alg_bits,omitempty"`
	GroupID    tls.CurveID `json:"-"`
	Group      string      `json:"group,omitempty"` // "X25519MLKEM768", "X25519", "P-256"
	PQ         bool        `json:"post_quantum"`    // the key exchange is a hybrid post-quantum KEM
	ServerName string      `json:"sni,omitempty"`
	ALPN       string      `json:"alpn,omitempty"`
	Resumed    bool        `json:"resumed"`
	SessionID  string      `json:"-"`

	// Peer is the peer's leaf certificate (nil if it sent none);
	// PeerChain is everything it sent, leaf first.
	Peer      *Cert   `json:"peer,omitempty"`
	PeerChain []*Cert `json:"-"`
	// Local is our own certificate on this connection, if known.
	Local *Cert `json:"local,omitempty"`

	Verification
}

// New builds the State of an established connection. v is the outcome of
// checking the peer's certificate (use NotChecked if nobody checked), and
// local is our own certificate on the connection or nil.
func New(cs tls.ConnectionState, role Role, v Verification, local *Cert) State {
	st := State{
		TLS:          cs.HandshakeComplete,
		Role:         role,
		Version:      cs.Version,
		Protocol:     ProtocolName(cs.Version),
		SuiteID:      cs.CipherSuite,
		GroupID:      cs.CurveID,
		Group:        GroupName(cs.CurveID),
		PQ:           PostQuantum(cs.CurveID),
		ServerName:   cs.ServerName,
		ALPN:         cs.NegotiatedProtocol,
		Resumed:      cs.DidResume,
		Local:        local,
		Verification: v,
	}
	suite, _ := SuiteByID(cs.CipherSuite)
	st.Cipher, st.CipherSSL, st.UseBits, st.AlgBits = suite.IANA, suite.OpenSSL, suite.UseBits, suite.AlgBits
	for _, c := range cs.PeerCertificates {
		st.PeerChain = append(st.PeerChain, NewCert(c))
	}
	if len(st.PeerChain) > 0 {
		st.Peer = st.PeerChain[0]
	}
	return st
}

// Summary is the one-line form used by `tlsmail send` and the logs:
// "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519MLKEM768 verified", or "plaintext".
func (s State) Summary() string {
	if !s.TLS {
		return "plaintext"
	}
	out := s.Protocol + " " + s.Cipher
	if s.Group != "" {
		out += " " + s.Group
	}
	if s.Verified {
		out += " verified"
	} else {
		out += " unverified"
	}
	return out
}
