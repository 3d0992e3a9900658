package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// TestSendFailureExitCodes: the sysexits a script retries on (75) only for
// what may pass: a 454 AUTH reply and a timeout are temporary, a 535 is
// not.
func TestSendFailureExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err      error
		timedOut bool
		code     int
		msg      string
	}{
		{&smtpclient.AuthError{Reply: &smtpwire.Reply{Code: 454, Lines: []string{"4.7.0 Temporary authentication failure"}}}, false, exTempFail, "454"},
		{&smtpclient.AuthError{Reply: &smtpwire.Reply{Code: 535, Lines: []string{"5.7.8 bad"}}}, false, exNoPerm, "535"},
		{&smtpclient.NetError{Op: "read reply", Addr: "h:587", Err: context.DeadlineExceeded}, true, exTempFail, "gave up after --timeout 8s"},
		// A stage's own deadline (a handshake's) is not --timeout.
		{&smtpclient.NetError{Op: "read reply", Addr: "h:587", Err: context.DeadlineExceeded}, false, exTempFail, "read reply h:587"},
		{&smtpclient.NetError{Op: "connect", Addr: "h:587", Err: fmt.Errorf("refused")}, false, exTempFail, "connect h:587"},
	} {
		var out, errb bytes.Buffer
		env := &cliEnv{name: "tlsmail send", stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := sendFailure(env, tc.err, sendRequest{timeout: 8 * time.Second}, tc.timedOut)
		if code != tc.code || !strings.Contains(errb.String(), tc.msg) || !tc.timedOut && strings.Contains(errb.String(), "--timeout") {
			t.Errorf("%v: exit %d (want %d), %q (want %q)", tc.err, code, tc.code, errb.String(), tc.msg)
		}
	}
}
