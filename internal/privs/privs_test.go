package privs

import (
	"os"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	ids, err := Lookup("nobody", "")
	if err != nil {
		t.Skipf("no user nobody here: %v", err)
	}
	if ids.Name != "nobody" || ids.UID <= 0 || len(ids.Groups) == 0 || ids.Groups[0] != ids.GID {
		t.Errorf("nobody: %+v", ids)
	}
	byID, err := Lookup("65534", "0")
	if err != nil || byID.UID != 65534 || byID.GID != 0 || byID.Groups[0] != 0 {
		t.Errorf("numeric ids: %+v %v", byID, err)
	}
	if _, err := Lookup("no-such-user-here", ""); err == nil || !strings.Contains(err.Error(), `user "no-such-user-here"`) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := Lookup("nobody", "no-such-group-here"); err == nil || !strings.Contains(err.Error(), `group "no-such-group-here"`) {
		t.Errorf("unknown group: %v", err)
	}
}

// TestDropToOwnIDsIsANoOp: a server already running as its user (systemd
// User=) passes through Drop unchanged.
func TestDropToOwnIDsIsANoOp(t *testing.T) {
	if os.Geteuid() == 0 {
		// As root this would switch the test process; Drop's real switch
		// is tested end to end (test/e2e TestServeDropsPrivileges).
		if err := Drop(IDs{UID: -1, GID: -1}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := Drop(IDs{UID: os.Getuid(), GID: os.Getgid()}); err != nil {
		t.Fatal(err)
	}
}
