package privs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// DropCapabilities clears every capability set (permitted, effective,
// inheritable, ambient) and sets no_new_privs, on every thread of the
// process: a server started by systemd as its user with
// AmbientCapabilities=CAP_NET_BIND_SERVICE keeps that capability for its
// whole life otherwise (a switch from root clears the sets; a process
// that never was root keeps them), and with no_new_privs no program it
// runs can gain privileges through setuid bits or file capabilities.
//
// Capabilities and no_new_privs belong to a thread, not to the process,
// and Go runs on several OS threads. Without cgo, one AllThreadsSyscall
// per step reaches them all. With cgo (the default build, and every -race
// build) the runtime refuses AllThreadsSyscall, so each thread is
// signalled to drop its own (as glibc's setuid does for all threads);
// this returns once /proc/self/task shows every thread dropped in two
// scans in a row — a thread made by one not yet dropped shows in the
// second scan.
func DropCapabilities() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return dropAllThreads()
}

// threadsNotDropped lists the threads that still have a capability or
// lack no_new_privs.
func threadsNotDropped() ([]int, error) {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	var left []int
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/status")
		if err != nil {
			continue // the thread has exited
		}
		if !Dropped(b) {
			left = append(left, tid)
		}
	}
	return left, nil
}

// Dropped reports whether a /proc status file shows no capabilities
// (CapInh, CapPrm, CapEff, CapAmb all zero) and NoNewPrivs 1.
func Dropped(status []byte) bool {
	want := map[string]string{"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000", "CapAmb": "0000000000000000", "NoNewPrivs": "1"}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if w, in := want[k]; ok && in {
			if strings.TrimSpace(v) != w {
				return false
			}
			seen++
		}
	}
	return seen == len(want)
}

// untilAllDropped signals (with signal) the threads not yet dropped until
// two scans in a row find none, or fails after a generous deadline.
func untilAllDropped(signal func(tid int) error) error {
	deadline := time.Now().Add(60 * time.Second)
	for clean := 0; clean < 2; {
		left, err := threadsNotDropped()
		if err != nil {
			return err
		}
		if len(left) == 0 {
			clean++
			continue
		}
		clean = 0
		if time.Now().After(deadline) {
			return fmt.Errorf("threads %v still hold capabilities", left)
		}
		for _, tid := range left {
			if err := signal(tid); err != nil {
				return err
			}
		}
		time.Sleep(time.Millisecond) // the handlers run as each thread is scheduled
	}
	return nil
}
