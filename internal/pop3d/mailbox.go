package pop3d

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/maildir"
)

// ErrInUse means another session holds the mailbox.
var ErrInUse = errors.New("mailbox in use")

// mailbox is a POP3 session's view of one Maildir: a snapshot taken at
// login (so new mail does not change the numbering), an exclusive lock,
// and deletion marks applied only at QUIT.
type mailbox struct {
	dir  maildir.Dir
	lock *os.File
	msgs []*message
}

type message struct {
	m       maildir.Message
	size    int64 // octets as RETR sends them: CRLF line ends, before byte-stuffing
	uid     string
	deleted bool
}

// openMailbox locks the Maildir (flock on a lock file, so a second session
// — in this process or another — gets ErrInUse), moves new mail to cur/
// as Maildir readers do, and takes the snapshot.
func openMailbox(path string) (*mailbox, error) {
	dir, err := maildir.Create(path)
	if err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(path, ".tlsmail-pop3.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, err
	}
	mb := &mailbox{dir: dir, lock: lock}
	list, err := dir.List()
	if err != nil {
		mb.close(false)
		return nil, err
	}
	for _, m := range list {
		if m.New {
			if seen, err := dir.MarkSeen(m); err == nil {
				m = seen
			}
		}
		size, err := crlfSize(dir.Path(m))
		if err != nil {
			continue // vanished meanwhile
		}
		mb.msgs = append(mb.msgs, &message{m: m, size: size, uid: uidOf(m.Name)})
	}
	return mb, nil
}

// uidOf is the UIDL of a message: its Maildir unique name, which never
// changes, or a digest of it when it is too long or has characters POP3
// does not allow (RFC 1939: 1–70 characters 0x21–0x7E).
func uidOf(name string) string {
	ok := len(name) > 0 && len(name) <= 70
	for i := 0; ok && i < len(name); i++ {
		ok = name[i] >= 0x21 && name[i] <= 0x7e
	}
	if ok {
		return name
	}
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}

// crlfSize is the message's size with every line ending in CRLF.
func crlfSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	prevCR := false
	var last byte
	br := bufio.NewReaderSize(f, 32*1024)
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			if n > 0 && last != '\n' {
				n += 2 // RETR ends the last line with CRLF
			}
			break
		}
		if err != nil {
			return 0, err
		}
		if c == '\n' && !prevCR {
			n++ // the CR we will add
		}
		n++
		prevCR = c == '\r'
		last = c
	}
	return n, nil
}

// get returns message n (1-based) if it exists and is not deleted.
func (mb *mailbox) get(n int) (*message, bool) {
	if n < 1 || n > len(mb.msgs) || mb.msgs[n-1].deleted {
		return nil, false
	}
	return mb.msgs[n-1], true
}

// stat counts the messages not marked deleted and their size.
func (mb *mailbox) stat() (count int, size int64) {
	for _, m := range mb.msgs {
		if !m.deleted {
			count++
			size += m.size
		}
	}
	return
}

// writeMessage sends message m as a multi-line response body: CRLF line
// ends, lines starting with '.' byte-stuffed, the terminating ".". With
// bodyLines >= 0 only the header, the blank line and that many body
// lines are sent (TOP).
func (mb *mailbox) writeMessage(w *bufio.Writer, m *message, bodyLines int) error {
	f, err := os.Open(mb.dir.Path(m.m))
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 32*1024)
	inBody := false
	midLine := false // the previous chunk was part of a long line
	sent := 0
	for {
		line, err := br.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		if len(line) > 0 {
			if !midLine && bodyLines >= 0 && inBody && sent >= bodyLines {
				break
			}
			content := line
			if !full {
				content = trimEOL(content)
			}
			if !midLine && len(content) > 0 && content[0] == '.' {
				w.WriteByte('.')
			}
			w.Write(content)
			if !full {
				w.WriteString("\r\n")
				if inBody {
					sent++
				} else if len(content) == 0 && !midLine {
					inBody = true
				}
			}
			midLine = full
		}
		if full {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	_, err = w.WriteString(".\r\n")
	return err
}

// trimEOL removes one line end (LF or CRLF).
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// close ends the session: with commit (QUIT in TRANSACTION state) the
// messages marked deleted are removed; then the lock is released.
func (mb *mailbox) close(commit bool) (deleted int, err error) {
	if commit {
		var bytes int64
		for _, m := range mb.msgs {
			if m.deleted {
				if e := mb.dir.Remove(m.m); e != nil && err == nil {
					err = fmt.Errorf("delete %s: %w", m.m.Name, e)
					continue
				}
				deleted++
				bytes += m.m.Size
			}
		}
		// The Maildir++ quota file, if the mailbox keeps one.
		if e := maildir.AddUsage(string(mb.dir), -bytes, -int64(deleted)); e != nil && err == nil {
			err = e
		}
	}
	_ = syscall.Flock(int(mb.lock.Fd()), syscall.LOCK_UN)
	mb.lock.Close()
	return deleted, err
}
