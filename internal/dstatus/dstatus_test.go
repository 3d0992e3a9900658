package dstatus

import (
	"encoding/json"
	"testing"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// A server's multi-line reply becomes one value: its code, enhanced code
// and lines; 4xx is temporary, 5xx permanent; the renderings never carry
// the detail.
func TestFromReplyAndRenderings(t *testing.T) {
	r := &smtpwire.Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"<x@example.org>: no such user", "see the\r\nhelp"}}
	s := FromReply(r).WithDetail("/etc/tlsmail/tlsmail.toml:3")
	if s.Code != 550 || s.Enhanced != "5.1.1" || s.Temporary || !s.Permanent() || !s.Remote || s.Delivered() {
		t.Errorf("%+v", s)
	}
	if got := s.Reply(); got != "550 5.1.1 <x@example.org>: no such user see the  help" {
		t.Errorf("Reply() = %q", got)
	}
	if got := s.DSNStatus(); got != "5.1.1" {
		t.Errorf("DSNStatus() = %q", got)
	}
	if s := FromReply(smtpwire.R(452, "4.2.2", "over quota")); !s.Temporary || s.Permanent() || s.DSNStatus() != "5.2.2" {
		t.Errorf("452: %+v", s)
	}
	if s := FromReply(smtpwire.R(550, "", "no")); s.DSNStatus() != "5.0.0" {
		t.Errorf("no enhanced code: %q", s.DSNStatus())
	}
	// A zero status is never a permanent failure: it is tried again.
	if (Status{}).Permanent() {
		t.Error("zero Status is permanent")
	}
	if s := Perm("5.1.10", "null MX"); s.Code != 550 || s.Permanent() != true {
		t.Errorf("Perm: %+v", s)
	}
	if s := Temp("4.4.1", "cannot connect"); s.Code != 451 || !s.Temporary {
		t.Errorf("Temp: %+v", s)
	}
	b, _ := json.Marshal(Temp("4.4.1", "cannot connect").WithDetail("dial tcp: refused"))
	if string(b) != `{"code":451,"enhanced":"4.4.1","temporary":true,"text":"cannot connect","detail":"dial tcp: refused"}` {
		t.Errorf("JSON: %s", b)
	}
}

// BenchmarkReply is the rendering in every delivery's log line.
func BenchmarkReply(b *testing.B) {
	s := Delivered("delivered to maildir demo")
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Reply()
	}
}

// TestReplyOneLine: a reply never spans lines.
func TestReplyOneLine(t *testing.T) {
	if got := Delivered("a\r\nb\nc").Reply(); got != "250 2.0.0 a  b c" {
		t.Errorf("got %q", got)
	}
}
