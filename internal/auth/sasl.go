package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"time"
)

// ErrMalformed is a SASL response that cannot be decoded.
var ErrMalformed = errors.New("malformed SASL response")

// DecodePlain decodes an RFC 4616 PLAIN response (base64 of
// authzid NUL authcid NUL password). An authorization identity other than
// the authentication identity is refused: tlsmail has no proxy users.
func DecodePlain(b64 string) (user, password string, err error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", "", ErrMalformed
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return "", "", ErrMalformed
	}
	authz, authc := string(parts[0]), string(parts[1])
	if authz != "" && authz != authc {
		return "", "", errors.New("authorization identity differs from authentication identity")
	}
	return authc, string(parts[2]), nil
}

// DecodeBase64Line decodes one base64 line of a SASL exchange (LOGIN's
// user name and password).
func DecodeBase64Line(b64 string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil {
		return "", ErrMalformed
	}
	return string(raw), nil
}

// The LOGIN mechanism's prompts, base64 of "Username:" and "Password:".
const (
	LoginUserPrompt = "VXNlcm5hbWU6"
	LoginPassPrompt = "UGFzc3dvcmQ6"
)

// Throttle counts authentication failures per client IP in a sliding
// window; once an IP reaches Max failures it is refused until the window
// has passed. One Throttle is shared by SMTP AUTH and POP3.
type Throttle struct {
	Max    int
	Window time.Duration

	mu sync.Mutex
	m  map[string][]time.Time
}

// NewThrottle makes a throttle: max failures per window.
func NewThrottle(max int, window time.Duration) *Throttle {
	return &Throttle{Max: max, Window: window, m: map[string][]time.Time{}}
}

// Allowed reports whether ip may try to authenticate now.
func (t *Throttle) Allowed(ip string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.recent(ip, now)) < t.Max
}

// Fail records a failure.
func (t *Throttle) Fail(ip string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[ip] = append(t.recent(ip, now), now)
	if len(t.m) > 100000 { // bound memory under a spray of addresses
		for k := range t.m {
			if len(t.recent(k, now)) == 0 {
				delete(t.m, k)
			}
		}
	}
}

// Success forgets ip's failures.
func (t *Throttle) Success(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, ip)
}

func (t *Throttle) recent(ip string, now time.Time) []time.Time {
	list := t.m[ip]
	i := 0
	for i < len(list) && now.Sub(list[i]) > t.Window {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(t.m, ip)
		return nil
	}
	t.m[ip] = list
	return list
}

// Printable makes client-supplied text (a user name) safe for one log
// field: at most 64 bytes, control characters as '?'.
func Printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
