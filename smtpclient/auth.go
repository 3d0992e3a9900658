package smtpclient

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// Auth holds credentials. The mechanism is the strongest the server offers
// among those allowed: XOAUTH2 when a Token is given, else CRAM-MD5, PLAIN,
// LOGIN.
type Auth struct {
	Username string
	Password string
	Token    string // OAuth 2 access token, for XOAUTH2
	// Mechanisms restricts the choice (e.g. ["PLAIN"]); empty allows all.
	Mechanisms []string
}

var preference = []string{"XOAUTH2", "CRAM-MD5", "PLAIN", "LOGIN"}

// chooseMechanism picks the mechanism for the server's AUTH list.
func (a *Auth) chooseMechanism(offered string) string {
	have := strings.Fields(strings.ToUpper(offered))
	for _, m := range preference {
		if m == "XOAUTH2" && a.Token == "" || m != "XOAUTH2" && a.Token != "" && a.Password == "" {
			continue
		}
		if len(a.Mechanisms) > 0 && !slices.ContainsFunc(a.Mechanisms, func(x string) bool { return strings.EqualFold(x, m) }) {
			continue
		}
		if slices.Contains(have, m) {
			return m
		}
	}
	return ""
}

// authenticate runs AUTH. Credentials are never sent without TLS unless
// AllowInsecureAuth is set; the transcript never shows them.
func (c *Client) authenticate(ctx context.Context, a *Auth) error {
	if !c.tls.TLS && !c.opts.AllowInsecureAuth {
		return &AuthError{Reason: "refusing to send credentials over a connection without TLS (AllowInsecureAuth is off)", NoTLS: true}
	}
	offered, ok := c.ext["AUTH"]
	if !ok {
		return &AuthError{Reason: "the server does not offer AUTH"}
	}
	mech := a.chooseMechanism(offered)
	if mech == "" {
		return &AuthError{Reason: "no usable mechanism among the server's: " + offered}
	}
	b64 := base64.StdEncoding.EncodeToString
	t := c.opts.Timeouts.Command
	var r *smtpwire.Reply
	var err error
	switch mech {
	case "PLAIN":
		resp := b64([]byte("\x00" + a.Username + "\x00" + a.Password))
		if r, err = c.secret(t, "AUTH PLAIN "+resp, "AUTH PLAIN <redacted>"); err == nil && r.Code == 334 {
			r, err = c.secret(t, resp, "<redacted>")
		}
	case "LOGIN":
		if r, err = c.cmd(t, "AUTH LOGIN"); err == nil && r.Code == 334 {
			if r, err = c.secret(t, b64([]byte(a.Username)), "<redacted user>"); err == nil && r.Code == 334 {
				r, err = c.secret(t, b64([]byte(a.Password)), "<redacted>")
			}
		}
	case "CRAM-MD5":
		if r, err = c.cmd(t, "AUTH CRAM-MD5"); err == nil && r.Code == 334 {
			challenge, derr := base64.StdEncoding.DecodeString(strings.Join(r.Lines, ""))
			if derr != nil {
				return &AuthError{Reason: "malformed CRAM-MD5 challenge"}
			}
			mac := hmac.New(md5.New, []byte(a.Password))
			mac.Write(challenge)
			r, err = c.secret(t, b64([]byte(a.Username+" "+hex.EncodeToString(mac.Sum(nil)))), "<redacted>")
		}
	case "XOAUTH2":
		resp := b64([]byte("user=" + a.Username + "\x01auth=Bearer " + a.Token + "\x01\x01"))
		if r, err = c.secret(t, "AUTH XOAUTH2 "+resp, "AUTH XOAUTH2 <redacted>"); err == nil && r.Code == 334 {
			// The server sent an error description; answer empty to get the final reply.
			r, err = c.cmd(t, "")
		}
	}
	if err != nil {
		return err
	}
	if r.Code != 235 {
		return &AuthError{Reason: mech, Reply: r}
	}
	c.authed = mech
	return nil
}

// secret sends a line the transcript must not show.
func (c *Client) secret(t time.Duration, line, shown string) (*smtpwire.Reply, error) {
	if err := c.write(t, line+"\r\n", shown); err != nil {
		return nil, err
	}
	return c.read(t)
}

// AuthMechanism is the mechanism used to authenticate, "" if none.
func (c *Client) AuthMechanism() string { return c.authed }
