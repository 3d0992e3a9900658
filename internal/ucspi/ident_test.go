package ucspi

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseIdentReply(t *testing.T) {
	for _, tc := range []struct {
		line, user, err string
	}{
		{"6193, 23 : USERID : UNIX : stjohns\r\n", "stjohns", ""},
		{"6193 , 23 : USERID : OTHER,US-ASCII : a b:c", "a?b?c", ""},
		{"6193 , 23 : ERROR : NO-USER", "", "NO-USER"},
		{"6194 , 23 : USERID : UNIX : joe", "", "other ports"},
		{"6193 , 23 : USERID : UNIX : ", "", "empty user"},
		{"garbage", "", "malformed"},
		{"6193 , 23 : WHAT : x : y", "", "malformed"},
	} {
		user, err := parseIdentReply(tc.line, 6193, 23)
		if user != tc.user || (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: got %q, %v; want %q, %q", tc.line, user, err, tc.user, tc.err)
		}
	}
}

// TestIdentLookupTimeout: a responder that never answers costs the
// timeout, not more.
func TestIdentLookupTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			held <- c
		}
	}()
	start := time.Now()
	_, err = IdentLookup(context.Background(), net.ParseIP("127.0.0.1"), l.Addr().String(), 1, 2, 300*time.Millisecond)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("silent responder: err %v after %v", err, time.Since(start))
	}
	(<-held).Close()
}
