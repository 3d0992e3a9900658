package tlsrpt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestPostFollowsNoRedirect: a report goes to the https rua itself. A
// redirect — here to plain http — is refused, never followed: following
// it re-POSTed the report in plaintext, wherever the rua's server
// pointed.
func TestPostFollowsNoRedirect(t *testing.T) {
	var got atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
	defer plain.Close()
	rua := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/reports", http.StatusTemporaryRedirect)
	}))
	defer rua.Close()
	err := Post(context.Background(), rua.URL+"/tlsrpt", []byte("report"), rua.Client())
	if err == nil {
		t.Error("a redirected POST succeeded")
	}
	if n := got.Load(); n != 0 {
		t.Errorf("the report was posted %d times to the plain-http redirect target", n)
	}
}
