package testpeer

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// OCSPResponder answers OCSP requests (RFC 6960 over HTTP, POST or GET)
// on 127.0.0.1 with responses made by openssl's own responder:
// each request is handed to `openssl ocsp -index … -reqin … -respout …`
// in dir with args (e.g. -index index.txt -rsigner ca.pem -rkey ca.key -CA
// ca.pem -nmin 10). `openssl ocsp -port` would do the HTTP itself, but it
// binds every interface (it takes no address), and the tests here listen
// on loopback only; the OCSP logic — index lookup, status, signing — is
// still openssl's. It returns the responder's URL; it stops with the test.
func OCSPResponder(t testing.TB, openssl, dir string, args ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req []byte
		switch r.Method {
		case http.MethodPost:
			req, err = io.ReadAll(io.LimitReader(r.Body, 64<<10))
		case http.MethodGet:
			var p string
			if p, err = url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/")); err == nil {
				req, err = base64.StdEncoding.DecodeString(p)
			}
		default:
			http.Error(w, "POST or GET", http.StatusMethodNotAllowed)
			return
		}
		if err != nil || len(req) == 0 {
			http.Error(w, "bad OCSP request", http.StatusBadRequest)
			return
		}
		tmp, err := os.MkdirTemp(dir, "ocsp-req-")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer os.RemoveAll(tmp)
		in, out := filepath.Join(tmp, "req.der"), filepath.Join(tmp, "resp.der")
		if err := os.WriteFile(in, req, 0o600); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		cmd := exec.CommandContext(r.Context(), openssl, append(append([]string{"ocsp"}, args...), "-reqin", in, "-respout", out)...)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Logf("openssl ocsp: %v: %s", err, msg)
			http.Error(w, "openssl ocsp failed", http.StatusInternalServerError)
			return
		}
		resp, err := os.ReadFile(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(resp)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}
