package ucspi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/privs"
)

// DropPrivileges makes the whole process (every thread) run as uid and
// gid with no supplementary groups. fehcom's sslserver keeps its listening
// process as it was started and drops -u/-g in each per-connection TLS
// process; here TLS runs in the one sslserver process, so that process
// drops to -u/-g once it has bound the port and read the keys (rules
// files and per-connection certificates are then read as that user, as
// tcpserver reads its rules). A negative value leaves that id alone.
func DropPrivileges(uid, gid int) error {
	ids := privs.IDs{Name: fmt.Sprintf("uid %d", uid), UID: uid, GID: gid}
	if gid >= 0 {
		ids.Groups = []int{gid}
	}
	return privs.Drop(ids) // no supplementary groups, also with -u and no -g
}

// CheckReadable fails when a file the server reads per connection (the
// rules cdbs) cannot be opened because of its permissions. Run after
// DropPrivileges: fehcom reads rules as root in each connection process,
// this process reads them as the -u user, so a root-only cdb that worked
// there would drop every connection here; it is refused at start instead.
// A missing file is left to the per-connection rules (-X).
func CheckReadable(path string) error {
	f, err := os.Open(path)
	if err == nil {
		return f.Close()
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%s is not readable by uid %d gid %d (the -u/-g user, which reads it for every connection): %w", path, os.Geteuid(), os.Getegid(), err)
	}
	return nil
}

// InheritedFile returns descriptor fd as a file if the caller opened it
// for this process (UCSPI-SSL's -3 reads a key password there). A
// descriptor the Go runtime opened itself (its event poll, an eventfd,
// cgroup files) is refused: a -3 without a descriptor 3 must fail, not read the
// runtime's.
func InheritedFile(fd int, name string) (*os.File, error) {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		var st syscall.Stat_t
		if serr := syscall.Fstat(fd, &st); serr != nil {
			return nil, fmt.Errorf("descriptor %d is not open", fd)
		}
		// No /proc: fstat says it is open; trust it.
		return os.NewFile(uintptr(fd), name), nil
	}
	// Go's runtime opens its event poll and eventfd (anon_inode:…) and,
	// since Go 1.25, the cgroup CPU limit files before main runs, so the
	// lowest free descriptor may already be one of those.
	for _, own := range []string{"anon_inode:", "/sys/", "/proc/"} {
		if strings.HasPrefix(link, own) {
			return nil, fmt.Errorf("descriptor %d is not open (the caller gave none; %s is this process's own)", fd, link)
		}
	}
	return os.NewFile(uintptr(fd), name), nil
}
