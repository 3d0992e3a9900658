package route

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Client is what relay permission looks at.
type Client struct {
	IP netip.Addr
	// User is the authenticated (SASL) user; "" if none.
	User string
	// TLS is the session's TLS state: a client certificate that verified
	// against the listeners' client CAs may permit relaying (RelayCerts).
	TLS tlsinfo.State
}

// RelayCerts lets a client relay by its TLS client certificate, as
// Postfix's permit_tls_all_clientcerts and relay_clientcerts: the
// certificate must have verified against the client CAs ([tls]
// client_ca_file / client_ca_dir), and then either All is set or its
// SHA-256 fingerprint or subject DN is listed.
type RelayCerts struct {
	// All: any verified client certificate may relay.
	All bool
	// Fingerprints are SHA-256 digests of DER certificates: 64 hex
	// digits, colons allowed, any case (openssl x509 -fingerprint -sha256).
	Fingerprints []string
	// Subjects are subject DNs in RFC 2253 form ("CN=relay.example,O=Example").
	Subjects []string
}

// ParseRelayCert sorts one relay_clientcerts entry into a fingerprint
// (returned normalised: lower-case hex without colons) or a subject DN.
func ParseRelayCert(s string) (fingerprint, subject string, err error) {
	if strings.Contains(s, "=") {
		return "", strings.TrimSpace(s), nil
	}
	h := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if len(h) != 64 {
		return "", "", fmt.Errorf("%q is neither a SHA-256 fingerprint (64 hex digits) nor a subject DN (CN=…)", s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", "", fmt.Errorf("%q is not a SHA-256 fingerprint: not hex", s)
	}
	return h, "", nil
}

// check normalises the fingerprints (into a new slice: the caller's is
// left as it was).
func (rc *RelayCerts) check() error {
	fps := make([]string, len(rc.Fingerprints))
	for i, f := range rc.Fingerprints {
		h, _, err := ParseRelayCert(f)
		if err != nil || h == "" {
			return fmt.Errorf("relay_clientcerts: %q is not a SHA-256 fingerprint", f)
		}
		fps[i] = h
	}
	rc.Fingerprints = fps
	return nil
}

// Relay is why a client may relay.
type Relay uint8

// The reasons a client may relay.
const (
	NoRelay   Relay = iota // the client may send only to local domains
	RelayAuth              // authenticated (SASL)
	RelayNet               // its address is in RelayNets
	RelayCert              // its verified client certificate (RelayCerts)
)

func (r Relay) String() string {
	switch r {
	case RelayAuth:
		return "sasl"
	case RelayNet:
		return "relay_networks"
	case RelayCert:
		return "client certificate"
	}
	return "none"
}

// MayRelay says whether c may send to domains that are not local, and why:
// authenticated users, clients in RelayNets, and clients whose verified
// certificate RelayCerts allows.
func (r *Router) MayRelay(c Client) Relay {
	switch {
	case c.User != "":
		return RelayAuth
	case r.inRelayNets(c.IP):
		return RelayNet
	case r.certMayRelay(c.TLS):
		return RelayCert
	}
	return NoRelay
}

func (r *Router) inRelayNets(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range r.cfg.RelayNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// certMayRelay: a client certificate that verified, listed (or All).
func (r *Router) certMayRelay(st tlsinfo.State) bool {
	rc := r.cfg.RelayCerts
	if !st.TLS || st.Peer == nil || !st.Verified {
		return false
	}
	if rc.All {
		return true
	}
	fp := strings.ToLower(st.Peer.SHA256)
	for _, f := range rc.Fingerprints {
		if f == fp {
			return true
		}
	}
	for _, s := range rc.Subjects {
		if s == st.Peer.SubjectDN {
			return true
		}
	}
	return false
}
