package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestSSLServerCRLFILE: sslserver -m with CRLFILE, the CRL made by
// `openssl ca -revoke` and `openssl ca -gencrl`: openssl s_client with the
// revoked client certificate is refused in the handshake (the program
// never runs), with the good one the program runs with SSL_CLIENT_*; a
// CRLFILE that does not load is one error line at start.
func TestSSLServerCRLFILE(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	caAndServerCert(t, dir, "localhost,127.0.0.1")
	ca := filepath.Join(dir, "ca")
	tlsmail(t, "cert", "issue", "--ca", ca, "--client", "--cn", "good-client", "--out", filepath.Join(dir, "good"))
	tlsmail(t, "cert", "issue", "--ca", ca, "--client", "--cn", "revoked-client", "--out", filepath.Join(dir, "revoked"))

	// A minimal `openssl ca` set-up: the index is the CA's database.
	cnf := filepath.Join(dir, "ca.cnf")
	os.WriteFile(filepath.Join(dir, "index.txt"), nil, 0o644)
	os.WriteFile(cnf, []byte("[ca]\ndefault_ca = d\n[d]\ndatabase = "+filepath.Join(dir, "index.txt")+
		"\ndefault_md = sha256\ndefault_crl_days = 1\n"), 0o644)
	caArgs := []string{"-config", cnf, "-cert", filepath.Join(ca, "ca.pem"), "-keyfile", filepath.Join(ca, "ca.key")}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	run(append([]string{"ca", "-revoke", filepath.Join(dir, "revoked.pem")}, caArgs...)...)
	// Without a crlnumber file, `openssl ca` makes a version 1 CRL,
	// which Go cannot parse: the start-up error says what to do.
	crlV1 := filepath.Join(dir, "crl-v1.pem")
	run(append([]string{"ca", "-gencrl", "-out", crlV1}, caArgs...)...)
	os.WriteFile(filepath.Join(dir, "crlnumber"), []byte("01\n"), 0o644)
	os.WriteFile(cnf, []byte("[ca]\ndefault_ca = d\n[d]\ndatabase = "+filepath.Join(dir, "index.txt")+
		"\ncrlnumber = "+filepath.Join(dir, "crlnumber")+"\ndefault_md = sha256\ndefault_crl_days = 1\n"), 0o644)
	crl := filepath.Join(dir, "crl.pem")
	run(append([]string{"ca", "-gencrl", "-out", crl}, caArgs...)...)

	prog := `echo "DN=$SSL_CLIENT_S_DN_CN VERIFY=$SSL_CLIENT_VERIFY"`
	p, port := startSSLServer(t, dir, []string{"CAFILE=" + filepath.Join(ca, "ca.pem"), "CRLFILE=" + crl},
		"-v", "-m", "-s", "127.0.0.1", "0", "sh", "-c", prog)
	sClient := func(name string) string {
		t.Helper()
		cmd := exec.Command(openssl, "s_client", "-connect", "127.0.0.1:"+port, "-CAfile", filepath.Join(ca, "ca.pem"),
			"-cert", filepath.Join(dir, name+".pem"), "-key", filepath.Join(dir, name+".key"), "-ign_eof")
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := sClient("good"); !strings.Contains(out, "DN=good-client VERIFY=SUCCESS") {
		t.Errorf("good client: the program did not run with SSL_CLIENT_*:\n%s", out)
	}
	out := sClient("revoked")
	if strings.Contains(out, "DN=") {
		t.Errorf("revoked client: the program ran:\n%s", out)
	}
	if !strings.Contains(out, "alert") {
		t.Errorf("revoked client: no TLS alert seen by s_client:\n%s", out)
	}
	p.WaitOutput(t, `unable to accept SSL: .*client certificate revoked \(serial `, 30*time.Second)

	// A CRL that does not load: one line, exit 111, before any connection.
	tlsmail(t, "cert", "new-ca", "--out", filepath.Join(dir, "other"))
	bad := filepath.Join(dir, "bad-crl.pem")
	os.WriteFile(bad, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), 0o644)
	for _, env := range [][]string{
		{"CAFILE=" + filepath.Join(ca, "ca.pem"), "CRLFILE=" + bad},
		{"CAFILE=" + filepath.Join(ca, "ca.pem"), "CRLFILE=" + filepath.Join(dir, "missing.pem")},
		{"CAFILE=" + filepath.Join(ca, "ca.pem"), "CRLFILE=" + crlV1, "version 2 CRL"},
		{"CAFILE=" + filepath.Join(dir, "other", "ca.pem"), "CRLFILE=" + crl, "not signed by any client CA"},
	} {
		for _, m := range [][]string{{"-m"}, nil} {
			args := append(append([]string{"sslserver", "-1"}, m...), "127.0.0.1", "0", "true")
			cmd := exec.Command(tlsmailBin, args...)
			cmd.Env = append(os.Environ(), "CERTFILE="+filepath.Join(dir, "server.pem"), "KEYFILE="+filepath.Join(dir, "server.key"), env[0], env[1])
			out, err := cmd.Output()
			ee, ok := err.(*exec.ExitError)
			stderr := ""
			if ok {
				stderr = string(ee.Stderr)
			}
			if !ok || ee.ExitCode() != 111 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "fatal:") || !strings.Contains(stderr, filepath.Base(env[1][len("CRLFILE="):])) ||
				(len(env) > 2 && !strings.Contains(stderr, env[2])) {
				t.Errorf("sslserver %v with %v: %v, stdout %q, stderr %q; want exit 111 and one fatal line naming the file", m, env[1], err, out, stderr)
			}
		}
	}
}
