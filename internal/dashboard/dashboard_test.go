package dashboard

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tlsmail/tlsmail/internal/auth"
	"github.com/tlsmail/tlsmail/internal/records"
	"github.com/tlsmail/tlsmail/internal/tlsconf"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

const (
	adminUser  = "admin"
	adminPass  = "correct horse battery"
	adminToken = "tok-5f1d2a9e7c3b4d60a8e1"
)

func testUsers(t *testing.T) *auth.Users {
	t.Helper()
	u, err := auth.LoadUsers(filepath.Join(t.TempDir(), "users"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(adminPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Set(adminUser, string(h)); err != nil {
		t.Fatal(err)
	}
	return u
}

type env struct {
	h   *Handler
	log *bytes.Buffer
	st  *records.Store
}

func newEnv(t *testing.T, throttle *auth.Throttle) *env {
	t.Helper()
	st, err := records.Open(filepath.Join(t.TempDir(), "records.db"), records.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	var buf bytes.Buffer
	h := New(Options{Store: st, Users: testUsers(t), User: adminUser, Token: adminToken, Throttle: throttle, Hostname: "mx.example.test",
		Log:       slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		QueueSize: func() (int, error) { return 17, nil },
		CertHealth: func(now time.Time) []tlsconf.CertHealth {
			return []tlsconf.CertHealth{{Name: "mx.example.test", Source: "file", NotAfter: now.Add(5*24*time.Hour + time.Hour), DaysLeft: 5.04}}
		}})
	return &env{h: h, log: &buf, st: st}
}

func (e *env) do(method, target, ip string, form url.Values, cookie *http.Cookie) *http.Response {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = ip + ":40000"
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w.Result()
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == CookieName && c.Value != "" {
			return c
		}
	}
	return nil
}

func bodyOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

func TestLoginRequired(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.do("GET", "/", "127.0.0.1", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / without login: %d %s, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp = e.do("GET", "/", "127.0.0.1", nil, &http.Cookie{Name: CookieName, Value: strings.Repeat("a", 64)})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET / with a made-up cookie: %d, want 303", resp.StatusCode)
	}
	if b := bodyOf(t, e.do("GET", "/login", "127.0.0.1", nil, nil)); !strings.Contains(b, `name="password"`) || !strings.Contains(b, `name="token"`) {
		t.Fatalf("login page lacks the password or token field:\n%s", b)
	}
	resp = e.do("GET", "/", "127.0.0.1", nil, nil)
	for in, want := range map[string]string{"/?days=7": "/login?next=%2F%3Fdays%3D7", "/?days=x": "/login"} {
		if resp := e.do("GET", in, "127.0.0.1", nil, nil); resp.Header.Get("Location") != want {
			t.Errorf("GET %s: to %q, want %q", in, resp.Header.Get("Location"), want)
		}
	}
	for in, want := range map[string]string{"/?days=7": "/?days=7", "//evil.test/?days=7": "/", "https://evil.test/": "/", "/static/x": "/", "/?days=9999": "/"} {
		resp := e.do("POST", "/login", "127.0.0.1", url.Values{"token": {adminToken}, "next": {in}}, nil)
		if resp.Header.Get("Location") != want {
			t.Errorf("login with next %q: to %q, want %q", in, resp.Header.Get("Location"), want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}
}

func TestLoginCookieAndLogout(t *testing.T) {
	e := newEnv(t, nil)
	for _, form := range []url.Values{
		{"user": {adminUser}, "password": {adminPass}},
		{"user": {"ADMIN"}, "password": {adminPass}}, // names are case-insensitive
		{"token": {adminToken}},
	} {
		resp := e.do("POST", "/login", "127.0.0.1", form, nil)
		c := sessionCookie(resp)
		if resp.StatusCode != http.StatusSeeOther || c == nil {
			t.Fatalf("login with %v: %d, cookie %v", form.Get("user"), resp.StatusCode, c)
		}
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || len(c.Value) != 64 {
			t.Fatalf("cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/, 32 random bytes", c)
		}
		if resp := e.do("GET", "/", "127.0.0.1", nil, c); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET / with the session: %d", resp.StatusCode)
		}
		if resp := e.do("POST", "/logout", "127.0.0.1", nil, c); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", resp.StatusCode)
		}
		if resp := e.do("GET", "/", "127.0.0.1", nil, c); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET / after logout: %d, want 303", resp.StatusCode)
		}
	}
	// A session expires.
	now := time.Now()
	e.h.o.Now = func() time.Time { return now }
	c := sessionCookie(e.do("POST", "/login", "127.0.0.1", url.Values{"token": {adminToken}}, nil))
	e.h.o.Now = func() time.Time { return now.Add(DefaultSessionTTL + time.Second) }
	if resp := e.do("GET", "/", "127.0.0.1", nil, c); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET / with an expired session: %d, want 303", resp.StatusCode)
	}
	if strings.Contains(e.log.String(), adminPass) || strings.Contains(e.log.String(), adminToken) || strings.Contains(e.log.String(), c.Value) {
		t.Fatalf("a secret is in the log:\n%s", e.log)
	}
	if !strings.Contains(e.log.String(), "admin: login") {
		t.Fatalf("logins not logged:\n%s", e.log)
	}
}

func TestWrongPasswordThrottled(t *testing.T) {
	e := newEnv(t, auth.NewThrottle(3, 10*time.Minute))
	bad := []url.Values{
		{"user": {adminUser}, "password": {"wrong"}},
		{"user": {"alice"}, "password": {adminPass}}, // right password, not the admin user
		{"token": {adminToken + "x"}},
	}
	for _, f := range bad {
		resp := e.do("POST", "/login", "192.0.2.7", f, nil)
		if resp.StatusCode != http.StatusUnauthorized || sessionCookie(resp) != nil {
			t.Fatalf("bad login %v: %d, cookie %v; want 401 and none", f, resp.StatusCode, sessionCookie(resp))
		}
	}
	// Now even the right password is refused from that address…
	resp := e.do("POST", "/login", "192.0.2.7", url.Values{"user": {adminUser}, "password": {adminPass}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests || sessionCookie(resp) != nil {
		t.Fatalf("login after 3 failures: %d, want 429 without a cookie", resp.StatusCode)
	}
	// …but not from another.
	if resp := e.do("POST", "/login", "192.0.2.8", url.Values{"token": {adminToken}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login from another address: %d, want 303", resp.StatusCode)
	}
	for _, secret := range []string{"wrong", adminPass, adminToken} {
		if strings.Contains(e.log.String(), "="+secret) || strings.Contains(e.log.String(), adminToken) {
			t.Fatalf("a secret (%q) is in the log:\n%s", secret, e.log)
		}
	}
}

func tls13(pq, verified bool, method string) tlsinfo.State {
	st := tlsinfo.State{TLS: true, Protocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", Group: "X25519"}
	st.Verified, st.Method = verified, method
	if pq {
		st.Group, st.PQ = "X25519MLKEM768", true
	}
	return st
}

// seed writes a known set of records (today and yesterday) and returns
// the number of outbound records by level.
func seed(t testing.TB, st *records.Store) map[string]int {
	t.Helper()
	now := time.Now().UTC()
	yesterday := now.Add(-24 * time.Hour)
	recs := []records.Record{
		{Time: now, Direction: records.Out, Service: "smtp", Domain: "dane.test", TLS: tls13(false, true, "dane-ee"), Outcome: records.Delivered},
		{Time: now, Direction: records.Out, Service: "smtp", Domain: "dane.test", TLS: tls13(false, true, "dane-ee"), Outcome: records.Delivered},
		{Time: yesterday, Direction: records.Out, Service: "smtp", Domain: "sts.test", TLS: tls13(false, true, "pkix"), MTASTS: true, Outcome: records.Delivered},
		{Time: yesterday, Direction: records.Out, Service: "smtp", Domain: "legacy-plain.test", PeerName: "mx.legacy-plain.test", Outcome: records.Delivered},
		{Time: now, Direction: records.Out, Service: "smtp", Domain: "legacy-plain.test", PeerName: "mx.legacy-plain.test", Outcome: records.Delivered},
		{Time: now, Direction: records.Out, Service: "smtp", Domain: "broken-sts.test", PeerName: "mx.broken-sts.test", PeerIP: "192.0.2.9",
			Outcome: records.Deferred, TLSFailure: true, PolicyType: "sts", Level: "mta-sts", Reason: "certificate has expired"},
		{Time: now, Direction: records.In, Service: "smtp", TLS: tls13(true, false, ""), Outcome: records.OK},
		{Time: now, Direction: records.In, Service: "smtp", TLS: tls13(true, false, ""), Outcome: records.OK},
		{Time: yesterday, Direction: records.In, Service: "smtp", TLS: tls13(false, false, ""), Outcome: records.OK},
		{Time: yesterday, Direction: records.In, Service: "smtp", Outcome: records.OK},
	}
	for _, r := range recs {
		if !st.Add(r) {
			t.Fatal("record dropped")
		}
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := st.AddReceived(context.Background(), []records.ReceivedPolicy{{Received: now, Org: "Reporter Org Inc.", ReportID: "r-1",
		Begin: yesterday, End: now, Domain: "example.test", Type: "sts", MX: []string{"mx.example.test"}, Success: 40, Failure: 2,
		Failures: []records.ReceivedFailure{{ResultType: "certificate-expired", MX: "mx.example.test", IP: "192.0.2.1", Count: 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]int{"dane": 2, "mta-sts": 1, "plaintext": 2, "failed": 1}
}

var barTitle = regexp.MustCompile(`<rect class="bar" data-key="([^"]+)"[^>]*><title>[0-9-]+: ([0-9]+) `)

// TestNumbersShown: the page shows what the store holds.
func TestNumbersShown(t *testing.T) {
	e := newEnv(t, nil)
	want := seed(t, e.st)
	c := sessionCookie(e.do("POST", "/login", "127.0.0.1", url.Values{"token": {adminToken}}, nil))
	resp := e.do("GET", "/?days=7", "127.0.0.1", nil, c)
	b := bodyOf(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %d\n%s", resp.StatusCode, b)
	}
	charts := strings.SplitN(b, `id="inbound-chart"`, 2)
	if len(charts) != 2 || !strings.Contains(charts[0], `id="outbound-chart"`) {
		t.Fatalf("charts missing:\n%s", b)
	}
	got := map[string]int{}
	for _, m := range barTitle.FindAllStringSubmatch(charts[0], -1) {
		n, _ := strconv.Atoi(m[2])
		got[m[1]] += n
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("outbound chart: %s = %d, want %d (all %v)", k, got[k], n, got)
		}
	}
	in := map[string]int{}
	for _, m := range barTitle.FindAllStringSubmatch(charts[1], -1) {
		n, _ := strconv.Atoi(m[2])
		in[m[1]] += n
	}
	if in["TLSv1.3 PQ"] != 2 || in["TLSv1.3"] != 1 || in["plaintext"] != 1 {
		t.Errorf("inbound chart = %v, want 2 PQ, 1 TLSv1.3, 1 plaintext", in)
	}
	for _, s := range []string{
		`<span class="big" id="pq-share">50.0%</span>`, // 2 of 4 sessions
		`<span class="big" id="queue-size">17</span>`,
		`% post-quantum (0 of 2)</title>`, `100% post-quantum (2 of 2)</title>`, `<polyline class="share" points="`,
		`<td class="domain">legacy-plain.test</td><td class="n">2</td>`,
		`<td class="n days-left">5</td>`,
		`certificate has expired`, `broken-sts.test`,
		`Reporter Org Inc.`, `2× certificate-expired at mx.example.test`,
		`<span class="big">60.0%</span> outbound over TLS`, // 3 of 5 delivered
	} {
		if !strings.Contains(b, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", b)
	}
	if resp := e.do("GET", "/?days=0", "127.0.0.1", nil, c); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("days=0: %d, want 400", resp.StatusCode)
	}
}
