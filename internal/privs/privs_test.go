package privs

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// helperEnv names the Drop a re-executed test binary makes (see TestMain):
// Drop changes the whole process, so a test that drops runs it in a child.
const helperEnv = "TLSMAIL_PRIVS_TEST_DROP"

// TestMain runs the tests, or, in a child started by dropInChild, one
// Drop and then prints the child's Uid, Gid and Groups lines of
// /proc/self/status.
func TestMain(m *testing.M) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		os.Exit(m.Run())
	}
	if spec == "caps" {
		os.Exit(capsChild())
	}
	var ids IDs
	if spec == "own" {
		ids = IDs{UID: os.Getuid(), GID: os.Getgid()}
	} else if _, err := fmt.Sscanf(spec, "%d %d", &ids.UID, &ids.GID); err != nil {
		fmt.Println("bad spec", spec)
		os.Exit(3)
	}
	ids.Groups = []int{ids.GID} // as ucspi.DropPrivileges passed it, -1 included
	if err := Drop(ids); err != nil {
		fmt.Println("drop:", err)
		os.Exit(1)
	}
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && (k == "Uid" || k == "Gid" || k == "Groups") {
			fmt.Printf("%s:%s\n", k, strings.Join(strings.Fields(v), " "))
		}
	}
	os.Exit(0)
}

// dropInChild runs Drop(spec) in a child test binary with cred (nil: this
// process's ids) and returns its output.
func dropInChild(t *testing.T, spec string, cred *syscall.Credential) string {
	t.Helper()
	bin := os.Args[0]
	if cred != nil && cred.Uid != 0 { // the go build dir is root's 0700: copy the binary out
		dir := t.TempDir()
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(dir, "privs.test")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+spec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if spec == "caps" { // started the systemd way: AmbientCapabilities=CAP_NET_BIND_SERVICE
		cmd.SysProcAttr.AmbientCaps = []uintptr{capNetBindService}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("Drop(%s) in a child: %v\n%s", spec, err, out.String())
	}
	return out.String()
}

func TestLookup(t *testing.T) {
	ids, err := Lookup("nobody", "")
	if err != nil {
		if testpeer.InCI() {
			t.Fatalf("no user nobody, which CI must have: %v", err)
		}
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
// User=) passes through Drop unchanged. As root (CI) the test runs a child
// as uid 65534 with two groups, so the no-op really is one of a non-root
// process.
func TestDropToOwnIDsIsANoOp(t *testing.T) {
	var cred *syscall.Credential
	want := ""
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534, 100}}
		want = "Uid:65534 65534 65534 65534\nGid:65534 65534 65534 65534\nGroups:100 65534\n"
	}
	out := dropInChild(t, "own", cred)
	if want != "" && out != want {
		t.Errorf("after Drop to its own ids:\n%swant\n%s", out, want)
	}
}

// TestDropOfUIDAloneClearsRootsGroups: sslserver -u without -g leaves the
// gid but must not keep root's supplementary groups (the old Drop skipped
// setgroups whenever the gid was left alone).
func TestDropOfUIDAloneClearsRootsGroups(t *testing.T) {
	testpeer.RequireRoot(t, "a switch away from root")
	out := dropInChild(t, "65534 -1", &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 4, 27}})
	if !strings.Contains(out, "Uid:65534 65534 65534 65534\n") || !strings.Contains(out, "Groups:\n") {
		t.Errorf("after Drop(uid 65534, gid -1) from root with groups 0 4 27:\n%s(want uid 65534 and no groups)", out)
	}
	out = dropInChild(t, "65534 65534", &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 4, 27}})
	if !strings.Contains(out, "Gid:65534 65534 65534 65534\nGroups:65534\n") {
		t.Errorf("after Drop(65534, 65534):\n%s", out)
	}
}

const capNetBindService = 10

// capsChild runs in a child started as uid 65534 with CAP_NET_BIND_SERVICE
// ambient: it has os/signal's thread started, parks goroutines on OS
// threads of their own, drops, and then
// has each of those threads (and itself) try to bind a port below 1024.
func capsChild() int {
	status := func() string { b, _ := os.ReadFile("/proc/self/status"); return string(b) }
	if !strings.Contains(status(), "CapAmb:\t0000000000000400") {
		fmt.Println("child does not hold CAP_NET_BIND_SERVICE:", status())
		return 1
	}
	// As serve does for SIGHUP: os/signal then runs a thread that blocks
	// every signal not asked for.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	const parked = 8
	try := make([]chan chan error, parked)
	ready := make(chan struct{})
	for i := range try {
		try[i] = make(chan chan error)
		go func() {
			runtime.LockOSThread() // keep this thread, made before the drop
			ready <- struct{}{}
			for res := range try[i] {
				l, err := net.Listen("tcp", "127.0.0.1:1")
				if err == nil {
					l.Close()
				}
				res <- err
			}
		}()
		<-ready
	}
	if err := DropCapabilities(); err != nil {
		fmt.Println("DropCapabilities:", err)
		return 1
	}
	bad := 0
	for i := range try {
		res := make(chan error)
		try[i] <- res
		if err := <-res; !errors.Is(err, syscall.EACCES) {
			fmt.Printf("a thread made before the drop binds port 1: %v\n", err)
			bad++
		}
	}
	if left, err := threadsNotDropped(); err != nil || len(left) > 0 {
		fmt.Printf("threads not dropped: %v %v\n", left, err)
		bad++
	}
	if !Dropped([]byte(status())) {
		fmt.Println("process status:", status())
		bad++
	}
	if bad > 0 {
		return 1
	}
	fmt.Println("dropped")
	return 0
}

// TestDropCapabilitiesReachesEveryThread: a server started as its user
// with an ambient CAP_NET_BIND_SERVICE (systemd's way) holds no capability
// on any thread after DropCapabilities, and no_new_privs is set; threads
// made before the drop cannot bind a low port any more. The test binary
// is built with cgo (always with -race), where the runtime refuses
// AllThreadsSyscall; `CGO_ENABLED=0 go test` covers the other path.
func TestDropCapabilitiesReachesEveryThread(t *testing.T) {
	testpeer.RequireRoot(t, "starting a child as nobody with an ambient capability")
	out := dropInChild(t, "caps", &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}})
	if out != "dropped\n" {
		t.Errorf("child:\n%s", out)
	}
}

func TestDroppedReadsProcStatus(t *testing.T) {
	none := "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n"
	if !Dropped([]byte(none)) {
		t.Error("all zero and NoNewPrivs 1: not dropped")
	}
	for _, c := range []string{
		strings.Replace(none, "CapAmb:\t0000000000000000", "CapAmb:\t0000000000000400", 1),
		strings.Replace(none, "CapPrm:\t0000000000000000", "CapPrm:\t0000000000000400", 1),
		strings.Replace(none, "NoNewPrivs:\t1", "NoNewPrivs:\t0", 1),
		strings.Replace(none, "NoNewPrivs:\t1\n", "", 1),
	} {
		if Dropped([]byte(c)) {
			t.Errorf("dropped:\n%s", c)
		}
	}
}
