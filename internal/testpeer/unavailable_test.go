package testpeer

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
)

// recordingTB is a testing.TB whose Skipf and Fatalf record the outcome
// and end the goroutine, as the real ones do.
type recordingTB struct {
	testing.TB
	outcome string
}

func (r *recordingTB) Helper()        {}
func (r *recordingTB) Cleanup(func()) {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.outcome = "skip: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.outcome = "fail: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func run(f func(tb testing.TB)) string {
	r := &recordingTB{}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r.outcome
}

// Under CI=true a test that cannot make its directory read-only fails
// instead of skipping; outside CI it skips, saying why.
func TestReadOnlyFailsUnderCIWhenItCannotWork(t *testing.T) {
	RequireRoot(t, "ReadOnly's bind-mount path")     // mode bits always work otherwise
	missing := filepath.Join(t.TempDir(), "missing") // a bind mount of it fails
	t.Setenv("CI", "true")
	if got := run(func(tb testing.TB) { ReadOnly(tb, missing) }); len(got) < 5 || got[:5] != "fail:" {
		t.Errorf("under CI=true: %q, want a failure", got)
	}
	t.Setenv("CI", "")
	if got := run(func(tb testing.TB) { ReadOnly(tb, missing) }); len(got) < 5 || got[:5] != "skip:" {
		t.Errorf("outside CI: %q, want a skip", got)
	}
}

// TestFreePortNeverRepeats: a test that sets up several listeners before
// any binds must get distinct ports (a mail server config once got the
// same port for two listeners). 2,000 draws from ~22,000 ports would
// repeat one almost surely if FreePort did not remember them.
func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 2000 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
}
