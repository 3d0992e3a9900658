package auth

import (
	"context"
	"errors"
)

// ErrInvalid is a login refused because the user name or password is
// wrong. Any other error from an Authenticator is temporary (the backend
// could not answer): servers say 454 4.7.0 / [SYS/TEMP], not 535.
var ErrInvalid = errors.New("invalid user name or password")

// Credentials is one login attempt with what the backend may want to know
// about the connection it came on.
type Credentials struct {
	User, Password string
	Service        string // "smtp", "pop3"
	LocalIP        string // the server's address of the connection, if any
	RemoteIP       string // the client's address
	Secured        bool   // the connection is encrypted (TLS)
}

// Authenticator checks a user name and password. It returns the user name
// as the backend knows it (the users file's Canonical name, or the name
// Dovecot answers with), ErrInvalid for wrong credentials, or another
// error when it cannot decide now. It never logs the password.
//
// Users (the users file) and Dovecot (Dovecot's auth server) implement it.
type Authenticator interface {
	Check(ctx context.Context, c Credentials) (user string, err error)
}

// Check implements Authenticator for the users file: the Canonical name,
// or ErrInvalid. It takes as long for an unknown user as for a wrong
// password.
func (u *Users) Check(_ context.Context, c Credentials) (string, error) {
	if !u.Authenticate(c.User, c.Password) {
		return "", ErrInvalid
	}
	return Canonical(c.User), nil
}
