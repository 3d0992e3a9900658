// Package e2e runs the built tlsmail binary against real peers. TestMain
// builds the binary once; each test starts its own peers on fresh loopback
// ports through internal/testpeer and stops them by PID.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// tlsmailBin is the binary under test, built once by TestMain.
var tlsmailBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tlsmail-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tlsmailBin, err = testpeer.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
