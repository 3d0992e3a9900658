package tlsinfo

import (
	"encoding/json"
	"log/slog"
	"strconv"
)

// LibraryVersion is what SSL_VERSION_LIBRARY says; s/qmail does not read it.
const LibraryVersion = "Go crypto/tls (OpenSSL-compatible names)"

// dnComponents are the per-attribute variables mod_ssl and UCSPI-SSL set
// (SSL_CLIENT_S_DN_CN …), in their order: suffix and OpenSSL short name.
var dnComponents = [][2]string{
	{"C", "C"}, {"ST", "ST"}, {"L", "L"}, {"O", "O"}, {"OU", "OU"}, {"CN", "CN"},
	{"T", "title"}, {"I", "initials"}, {"G", "GN"}, {"S", "SN"}, {"D", "description"},
	{"UID", "UID"}, {"Email", "emailAddress"},
}

// Env renders the state as the UCSPI-SSL / mod_ssl environment, as
// "NAME=value" strings in UCSPI-SSL's order (see ucspi-ssl.md §1.8):
// protocol and cipher, then the server certificate block, then the client
// certificate block with its chain. Which certificate is the "server" one
// follows the role: on a server, Local is SSL_SERVER_* and Peer SSL_CLIENT_*;
// on a client it is the mirror image. Two extensions follow the standard
// variables: SSL_KEX_GROUP (the key-exchange group) and SSL_CLIENT_VERIFY
// (server role) or SSL_SERVER_VERIFY (client role), with mod_ssl's values
// NONE, SUCCESS, GENEROUS or FAILED:reason.
func (s State) Env() []string {
	if !s.TLS {
		return nil
	}
	var env []string
	add := func(k, v string) { env = append(env, k+"="+v) }
	add("SSL_PROTOCOL", s.Protocol)
	add("SSL_SESSION_ID", s.SessionID)
	add("SSL_CIPHER", s.CipherSSL)
	add("SSL_CIPHER_EXPORT", strconv.FormatBool(s.UseBits > 0 && s.UseBits < 56))
	add("SSL_CIPHER_USEKEYSIZE", strconv.Itoa(s.UseBits))
	add("SSL_CIPHER_ALGKEYSIZE", strconv.Itoa(s.AlgBits))
	add("SSL_VERSION_INTERFACE", "ucspi-ssl")
	add("SSL_VERSION_LIBRARY", LibraryVersion)

	server, client := s.Local, s.Peer
	serverChain, clientChain := []*Cert(nil), s.PeerChain
	verifyVar := "SSL_CLIENT_VERIFY"
	if s.Role == RoleClient {
		server, client = s.Peer, s.Local
		serverChain, clientChain = s.PeerChain, nil
		verifyVar = "SSL_SERVER_VERIFY"
	}
	env = appendCertEnv(env, "SSL_SERVER_", server, serverChain)
	env = appendCertEnv(env, "SSL_CLIENT_", client, clientChain)

	add("SSL_KEX_GROUP", s.Group)
	switch {
	case s.Peer == nil:
		add(verifyVar, "NONE")
	case s.Verified:
		add(verifyVar, "SUCCESS")
	case s.Reason == NotChecked.Reason:
		add(verifyVar, "GENEROUS")
	default:
		add(verifyVar, "FAILED:"+s.Reason)
	}
	return env
}

func appendCertEnv(env []string, prefix string, c *Cert, chain []*Cert) []string {
	if c == nil {
		return env
	}
	add := func(k, v string) { env = append(env, prefix+k+"="+v) }
	add("M_VERSION", strconv.Itoa(c.Version))
	add("M_SERIAL", c.Serial)
	add("S_DN", c.SubjectLine)
	for _, comp := range dnComponents {
		if v, ok := c.Subject.Get(comp[1]); ok {
			add("S_DN_"+comp[0], v)
		}
	}
	add("I_DN", c.IssuerLine)
	for _, comp := range dnComponents {
		if v, ok := c.Issuer.Get(comp[1]); ok {
			add("I_DN_"+comp[0], v)
		}
	}
	add("A_SIG", c.SignatureAlgo)
	add("A_KEY", c.KeyAlgorithm)
	add("V_START", opensslTime(c.NotBefore))
	add("V_END", opensslTime(c.NotAfter))
	add("CERT", c.PEM())
	for i, cc := range chain {
		add("CERT_CHAIN_"+strconv.Itoa(i), cc.PEM())
	}
	return env
}

// Received renders the TLS clause of a Received header, Postfix style:
//
//	(using TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits) key-exchange X25519MLKEM768)
//
// followed, when the client presented a certificate, by
//
//	(Client DN "CN=client,O=Example", Issuer "CN=Example CA" (verified OK))
//
// Returns "" for a plaintext connection. Certificate text is reduced to
// printable ASCII so it cannot break the header.
func (s State) Received() string {
	if !s.TLS {
		return ""
	}
	return string(s.AppendReceived(nil))
}

// AppendReceived appends Received's clause to b (nothing for plaintext),
// for a caller building the whole header in one buffer.
func (s State) AppendReceived(b []byte) []byte {
	if !s.TLS {
		return b
	}
	b = append(b, "(using "...)
	b = append(b, s.Protocol...)
	b = append(b, " with cipher "...)
	b = append(b, s.Cipher...)
	b = append(b, " ("...)
	b = strconv.AppendInt(b, int64(s.UseBits), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(s.AlgBits), 10)
	b = append(b, " bits)"...)
	if s.Group != "" {
		b = append(b, " key-exchange "...)
		b = append(b, s.Group...)
	}
	b = append(b, ')')
	if s.Role == RoleServer && s.Peer != nil {
		b = append(b, " (Client DN \""...)
		b = appendHeaderSafe(b, s.Peer.SubjectDN)
		b = append(b, "\", Issuer \""...)
		b = appendHeaderSafe(b, s.Peer.IssuerDN)
		if s.Verified {
			b = append(b, "\" (verified OK))"...)
		} else {
			b = append(b, "\" (not verified))"...)
		}
	}
	return b
}

// appendHeaderSafe appends v with everything but printable ASCII, and
// the characters that would end a quoted string or a comment, made '?'.
func appendHeaderSafe(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < ' ' || c > '~' || c == '"' || c == '\\' || c == '(' || c == ')' {
			c = '?'
		}
		b = append(b, c)
	}
	return b
}

// LogAttrs returns the state as flat slog attributes with tlsmail's stable
// keys: tls, cipher, group, verified, and when relevant verify_reason and
// peer. A plaintext connection logs tls=none.
func (s State) LogAttrs() []slog.Attr {
	if !s.TLS {
		return []slog.Attr{slog.String("tls", "none")}
	}
	attrs := []slog.Attr{
		slog.String("tls", s.Protocol),
		slog.String("cipher", s.Cipher),
		slog.String("group", s.Group),
		slog.Bool("verified", s.Verified),
	}
	if !s.Verified && s.Reason != "" {
		attrs = append(attrs, slog.String("verify_reason", s.Reason))
	}
	if s.Verified && s.Method != "" {
		attrs = append(attrs, slog.String("verify_method", s.Method))
	}
	if s.TLSA != "" {
		attrs = append(attrs, slog.String("tlsa", s.TLSA))
	}
	if s.Peer != nil {
		attrs = append(attrs, slog.String("peer", s.Peer.SubjectDN))
	}
	return attrs
}

// LogArgs is LogAttrs for slog's variadic ...any methods.
func (s State) LogArgs() []any {
	attrs := s.LogAttrs()
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

// LogValue makes a State logged as one attribute render as a group.
func (s State) LogValue() slog.Value {
	return slog.GroupValue(s.LogAttrs()...)
}

// JSON renders the state as a JSON document (the same fields `--json`
// outputs everywhere).
func (s State) JSON() ([]byte, error) {
	return json.Marshal(s)
}
