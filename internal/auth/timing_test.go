package auth

import (
	"path/filepath"
	"testing"
)

// TestUnknownUserCostsAPasswordHash: Authenticate for a user who does not
// exist runs the same hash comparison as for a wrong password (against a
// dummy hash), so a client cannot tell by timing which names exist. Timing
// itself would make a flaky test on a loaded machine; the work done shows
// in the allocations, which do not depend on load: bcrypt's comparison
// allocates its key schedule and output every time, an early return
// allocates nothing.
func TestUnknownUserCostsAPasswordHash(t *testing.T) {
	u, err := LoadUsers(filepath.Join(t.TempDir(), "users"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Set("demo", h); err != nil {
		t.Fatal(err)
	}
	wrong := testing.AllocsPerRun(3, func() { u.Authenticate("demo", "wrong password") })
	unknown := testing.AllocsPerRun(3, func() { u.Authenticate("nosuchuser", "wrong password") })
	t.Logf("allocations per Authenticate: wrong password %.0f, unknown user %.0f", wrong, unknown)
	if wrong < 2 {
		t.Fatalf("a wrong password costs %.0f allocations; the hash comparison should cost more", wrong)
	}
	if unknown < wrong*0.8 {
		t.Errorf("an unknown user costs %.0f allocations, a wrong password %.0f: the unknown user skips the hash", unknown, wrong)
	}
}
