package tlsconf

import (
	"crypto/tls"
	"reflect"
	"testing"

	"github.com/tlsmail/tlsmail/internal/certs"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// State describes the local certificate from a description made once per
// certificate, identical to a fresh one, and a reload's new certificate
// gets its own.
func TestStateLocalCertIsRememberedAndFollowsReload(t *testing.T) {
	f := newFixture(t)
	srv, err := NewServer(ServerSettings{Certs: []CertSpec{{CertFile: f.serverCert, KeyFile: f.serverKey}}})
	if err != nil {
		t.Fatal(err)
	}
	cs := tls.ConnectionState{HandshakeComplete: true, ServerName: "localhost"}
	a, b := srv.State(cs).Local, srv.State(cs).Local
	if a != b {
		t.Error("the local certificate was described anew for the second handshake")
	}
	if want := tlsinfo.NewCert(srv.Store.ForName("localhost")); !reflect.DeepEqual(a, want) {
		t.Errorf("remembered description differs from a fresh one:\n%+v\n%+v", a, want)
	}
	leaf, err := certs.Issue(f.ca, certs.Template{Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(f.serverCert, f.serverKey); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := srv.State(cs).Local; got.Serial != leaf.Cert.SerialNumber.String() || got.Serial == a.Serial {
		t.Errorf("after reload the state describes serial %s, want the new %s", got.Serial, leaf.Cert.SerialNumber)
	}
}
