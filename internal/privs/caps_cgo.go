//go:build cgo

package privs

/*
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

static volatile int tlsmail_drop_err;

// tlsmail_drop_self clears this thread's capability sets and sets
// no_new_privs; it returns 0 or an errno. Async-signal-safe.
static int tlsmail_drop_self(void) {
	struct __user_cap_header_struct h;
	struct __user_cap_data_struct d[2];
	memset(&h, 0, sizeof h);
	memset(d, 0, sizeof d);
	h.version = _LINUX_CAPABILITY_VERSION_3;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return errno;
	if (syscall(SYS_capset, &h, d) != 0)
		return errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return errno;
	return 0;
}

static void tlsmail_drop_handler(int sig) {
	int saved = errno;
	int e = tlsmail_drop_self();
	if (e != 0)
		tlsmail_drop_err = e;
	errno = saved;
	(void)sig;
}

static struct sigaction tlsmail_old;

static int tlsmail_drop_signal(void) { return SIGRTMIN + 7; }

// SA_ONSTACK: Go's threads run signal handlers on their signal stacks.
static int tlsmail_install(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = tlsmail_drop_handler;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(tlsmail_drop_signal(), &sa, &tlsmail_old) != 0)
		return errno;
	return 0;
}

static void tlsmail_restore(void) { sigaction(tlsmail_drop_signal(), &tlsmail_old, NULL); }

static int tlsmail_signal_thread(int tid) {
	if (syscall(SYS_tgkill, getpid(), tid, tlsmail_drop_signal()) != 0 && errno != ESRCH)
		return errno;
	return 0;
}

static int tlsmail_handler_err(void) { return tlsmail_drop_err; }
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func dropAllThreads() error {
	if e := C.tlsmail_drop_self(); e != 0 {
		return fmt.Errorf("drop capabilities: %w", syscall.Errno(e))
	}
	// os/signal's thread blocks every signal not asked for with Notify;
	// asking for this one unblocks it there. Go's handler, installed by
	// Notify, is then replaced by the drop handler for the broadcast, and
	// the signal ignored after it (an extra queued one is then discarded).
	sig := syscall.Signal(C.tlsmail_drop_signal())
	signal.Notify(make(chan os.Signal, 1), sig)
	defer signal.Ignore(sig)
	if e := C.tlsmail_install(); e != 0 {
		return fmt.Errorf("drop capabilities: signal handler: %w", syscall.Errno(e))
	}
	defer C.tlsmail_restore()
	err := untilAllDropped(func(tid int) error {
		if e := C.tlsmail_signal_thread(C.int(tid)); e != 0 {
			return fmt.Errorf("drop capabilities: signal thread %d: %w", tid, syscall.Errno(e))
		}
		if e := C.tlsmail_handler_err(); e != 0 {
			return fmt.Errorf("drop capabilities: %w", syscall.Errno(e))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	return nil
}
