package imapd

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watcher tells the registry when a watched Maildir directory changes:
// inotify(7) on new/ and cur/ of every mailbox a session has open, so a
// message that local delivery (or anything else: POP3, another IMAP
// session, a shell) puts there reaches sessions in IDLE at once.
type watcher struct {
	f       *os.File
	changed func(wd int) // wd -1: the kernel's queue overflowed

}

func newWatcher(changed func(wd int)) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	// Non-blocking and wrapped in an *os.File: reads park in the runtime
	// poller, and Close wakes them.
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify"), changed: changed}
	go w.run()
	return w, nil
}

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE

func (w *watcher) add(dir string) (int, error) {
	var wd int
	err := w.control(func(fd int) error {
		var err error
		wd, err = unix.InotifyAddWatch(fd, dir, watchMask|unix.IN_ONLYDIR)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("inotify %s: %w", dir, err)
	}
	return wd, nil
}

func (w *watcher) remove(wd int) {
	_ = w.control(func(fd int) error {
		_, err := unix.InotifyRmWatch(fd, uint32(wd))
		return err
	})
}

func (w *watcher) control(f func(fd int) error) error {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (w *watcher) run() {
	buf := make([]byte, 64*1024)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return // closed
		}
		seen := map[int]bool{}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafePointer(buf, off))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				seen[-1] = true
			case ev.Mask&unix.IN_IGNORED != 0:
			default:
				seen[int(ev.Wd)] = true
			}
		}
		for wd := range seen {
			w.changed(wd)
		}
	}
}

func (w *watcher) close() error { return w.f.Close() }
