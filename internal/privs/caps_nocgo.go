//go:build !cgo

package privs

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func dropAllThreads() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	steps := []struct {
		what string
		trap uintptr
		a    [3]uintptr
	}{
		{"clear ambient capabilities", unix.SYS_PRCTL, [3]uintptr{unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0}},
		{"capset", unix.SYS_CAPSET, [3]uintptr{uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0}},
		{"set no_new_privs", unix.SYS_PRCTL, [3]uintptr{unix.PR_SET_NO_NEW_PRIVS, 1, 0}},
	}
	for _, s := range steps {
		if _, _, e := syscall.AllThreadsSyscall(s.trap, s.a[0], s.a[1], s.a[2]); e != 0 {
			return fmt.Errorf("drop capabilities: %s: %w", s.what, e)
		}
	}
	runtime.KeepAlive(&hdr)
	runtime.KeepAlive(&data)
	// Every thread made the same calls; check as the cgo build does.
	return untilAllDropped(func(tid int) error { return fmt.Errorf("thread %d did not drop", tid) })
}
