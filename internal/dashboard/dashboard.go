// Package dashboard is tlsmail's read-only admin dashboard: HTML pages
// rendered on the server from the TLS record store (internal/records),
// with charts as inline SVG and every asset embedded in the binary — no
// script, no CDN, nothing fetched at run time.
//
// Access takes a login: the password of the configured admin user (from
// the users file) or the admin token. Failures are throttled per client
// address with the throttle SMTP AUTH uses; a login gives a random
// session cookie (Secure, HttpOnly, SameSite=Strict) that the server
// keeps only as a SHA-256 hash. Secrets are compared in constant time and
// never logged.
package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
)

//go:embed templates/*.html static/*
var assets embed.FS

// CookieName is the session cookie.
const CookieName = "tlsmail_admin"

// DefaultSessionTTL is how long a login lasts.
const DefaultSessionTTL = 12 * time.Hour

// maxSessions bounds the sessions kept; the oldest go first.
const maxSessions = 1000

// Options configure a dashboard.
type Options struct {
	// Store is the TLS record store; nil shows the pages without records.
	Store *records.Store
	// Users and User: the admin logs in as User with its password in
	// Users. Empty User: no password login.
	Users *auth.Users
	User  string
	// Token is an admin token accepted instead (empty: none).
	Token string
	// Throttle limits login failures per client address (shared with
	// SMTP AUTH); nil: 5 per 10 minutes.
	Throttle *auth.Throttle
	// CertHealth and QueueSize feed the status panel; nil: not shown.
	CertHealth func(now time.Time) []tlsconf.CertHealth
	QueueSize  func() (int, error)
	Hostname   string
	SessionTTL time.Duration // default DefaultSessionTTL
	Log        *slog.Logger
	Now        func() time.Time // default time.Now (tests)
}

// Handler serves the dashboard.
type Handler struct {
	o     Options
	tmpl  *template.Template
	files http.Handler

	mu       sync.Mutex
	sessions map[[sha256.Size]byte]time.Time // hash of the cookie value → expiry
}

// New makes a dashboard handler.
func New(o Options) *Handler {
	if o.Throttle == nil {
		o.Throttle = auth.NewThrottle(5, 10*time.Minute)
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	static, _ := fs.Sub(assets, "static")
	return &Handler{o: o, tmpl: template.Must(template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")),
		files: http.StripPrefix("/static/", http.FileServerFS(static)), sessions: map[[sha256.Size]byte]time.Time{}}
}

// ServeHTTP routes: /login, /logout, /static/…, and / (the dashboard).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Strict-Transport-Security", "max-age=31536000")
	switch {
	case r.URL.Path == "/login":
		h.login(w, r)
	case r.URL.Path == "/logout":
		h.logout(w, r)
	case len(r.URL.Path) > len("/static/") && r.URL.Path[:len("/static/")] == "/static/":
		hd.Set("Cache-Control", "max-age=3600")
		h.files.ServeHTTP(w, r)
	case r.URL.Path == "/":
		hd.Set("Cache-Control", "no-store")
		if !h.loggedIn(r) {
			to := "/login"
			if next := safeNext(r.URL.RequestURI()); next != "/" {
				to += "?next=" + url.QueryEscape(next)
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.dashboard(w, r)
	default:
		http.NotFound(w, r)
	}
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// safeNext is the page to go to after the login: the dashboard with its
// period kept, never another site or path.
func safeNext(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path != "/" {
		return "/"
	}
	if d := u.Query().Get("days"); d != "" {
		if n, err := strconv.Atoi(d); err == nil && n >= 1 && n <= MaxDays {
			return "/?days=" + strconv.Itoa(n)
		}
	}
	return "/"
}

type loginPage struct {
	Next      string // where to go after the login
	Hostname  string
	Error     string
	Password  bool // a user name and password may be used
	Token     bool // a token may be used
	User      string
	Throttled bool
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	page := loginPage{Next: safeNext(r.URL.Query().Get("next")), Hostname: h.o.Hostname, Password: h.o.User != "" && h.o.Users != nil, Token: h.o.Token != ""}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.render(w, http.StatusOK, "login.html", page)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ip, now := clientIP(r), h.o.Now()
	if !h.o.Throttle.Allowed(ip, now) {
		h.o.Log.Warn("admin: login refused: too many failures", "ip", ip)
		page.Error, page.Throttled = "Too many failed logins from your address; try again later.", true
		h.render(w, http.StatusTooManyRequests, "login.html", page)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	user, password, token := r.PostForm.Get("user"), r.PostForm.Get("password"), r.PostForm.Get("token")
	page.User, page.Next = user, safeNext(r.PostForm.Get("next"))
	ok, how := false, ""
	switch {
	case token != "" && h.o.Token != "":
		// Hashes have one length: the compare leaks neither the token nor its length.
		a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(h.o.Token))
		ok, how = subtle.ConstantTimeCompare(a[:], b[:]) == 1, "token"
	case password != "" && page.Password:
		// Authenticate takes as long for an unknown user as for a wrong password.
		match := h.o.Users.Authenticate(h.o.User, password)
		a, b := sha256.Sum256([]byte(auth.Canonical(user))), sha256.Sum256([]byte(auth.Canonical(h.o.User)))
		ok, how = match && subtle.ConstantTimeCompare(a[:], b[:]) == 1, "password"
	}
	if !ok {
		h.o.Throttle.Fail(ip, now)
		h.o.Log.Warn("admin: login failed", "ip", ip, "user", auth.Printable(user), "with", how)
		page.Error = "Wrong user name, password or token."
		h.render(w, http.StatusUnauthorized, "login.html", page)
		return
	}
	h.o.Throttle.Success(ip)
	value := h.newSession(now)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: value, Path: "/", MaxAge: int(h.o.SessionTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	h.o.Log.Info("admin: login", "ip", ip, "with", how)
	http.Redirect(w, r, page.Next, http.StatusSeeOther)
}

func (h *Handler) newSession(now time.Time) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	value := hex.EncodeToString(b)
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, exp := range h.sessions {
		if !now.Before(exp) {
			delete(h.sessions, k)
		}
	}
	for len(h.sessions) >= maxSessions { // drop the one closest to expiry
		var oldest [sha256.Size]byte
		first := true
		for k, exp := range h.sessions {
			if first || exp.Before(h.sessions[oldest]) {
				oldest, first = k, false
			}
		}
		delete(h.sessions, oldest)
	}
	h.sessions[sha256.Sum256([]byte(value))] = now.Add(h.o.SessionTTL)
	return value
}

// loggedIn reports whether r carries a live session cookie. The map is
// keyed by the value's hash, so a lookup's timing tells nothing about the
// values kept.
func (h *Handler) loggedIn(r *http.Request) bool {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return false
	}
	key := sha256.Sum256([]byte(c.Value))
	h.mu.Lock()
	defer h.mu.Unlock()
	exp, ok := h.sessions[key]
	if ok && !h.o.Now().Before(exp) {
		delete(h.sessions, key)
		return false
	}
	return ok
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if c, err := r.Cookie(CookieName); err == nil {
		h.mu.Lock()
		delete(h.sessions, sha256.Sum256([]byte(c.Value)))
		h.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := h.tmpl.ExecuteTemplate(w, name, data); err != nil {
		h.o.Log.Warn("admin: rendering "+name, "err", err)
	}
}
