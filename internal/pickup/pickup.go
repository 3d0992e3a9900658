// Package pickup is tlsmail's local mail drop, the counterpart of
// Postfix's maildrop: `sendmail` writes a message with its envelope into
// DATA/pickup (no SMTP, no credentials, no running server needed), and
// the running server collects each file into the queue and only then
// removes it. So mail from a cron job survives a stopped server.
//
// The directory is mode 1733 (sticky, writable by every local user, not
// listable by them), as Postfix's world-writable maildrop: a user can drop
// a file but not see, read or remove the files of others. A file is
// written to a dot-name, fsynced and renamed into place (safeio), so the
// collector sees only complete files. The submitter is the file's owner
// (fstat), which the writer cannot forge; the collector refuses anything
// but a regular file with one link, opened without following symlinks.
package pickup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// DirMode is the pickup directory's mode: sticky, writable and searchable
// by all, readable (listable) only by the server.
const DirMode = os.ModeSticky | 0o733

// magic starts every pickup file, followed by the JSON envelope line.
const magic = "tlsmail-pickup 1 "

// maxHeader bounds the envelope line (a 10,000-recipient envelope fits).
const maxHeader = 4 << 20

// Envelope is what the submitter says about the message. The submitting
// user is not part of it: the collector takes the file's owner.
type Envelope struct {
	From   string   `json:"from"` // "" is the null sender <>
	Rcpts  []string `json:"rcpt"`
	Notify string   `json:"notify,omitempty"` // DSN NOTIFY for every recipient
}

// Entry is one file in the pickup directory.
type Entry struct {
	Name string
	UID  uint32 // the file's owner: the submitting user
	Time time.Time
	Size int64 // bytes of the message (without the envelope line)
	Envelope
}

// Submit writes msg with env into dir durably and returns the file's
// name. msg is stored as given; the collector makes line ends CRLF.
func Submit(dir string, env Envelope, msg []byte) (string, error) {
	if len(env.Rcpts) == 0 {
		return "", errors.New("pickup: no recipients")
	}
	for _, a := range append([]string{env.From}, env.Rcpts...) {
		if strings.ContainsAny(a, "\r\n\x00") {
			return "", fmt.Errorf("pickup: bad address %q", a)
		}
	}
	head, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%d.%d.%s", time.Now().UnixNano(), os.Getpid(), hex.EncodeToString(rnd[:]))
	data := make([]byte, 0, len(magic)+len(head)+1+len(msg))
	data = append(append(append(append(data, magic...), head...), '\n'), msg...)
	// 0644 as Postfix's maildrop files: the directory is not listable, and
	// a server running as its own user must be able to read the file.
	if err := safeio.WriteFileInDropDir(filepath.Join(dir, name), data, 0o644); err != nil {
		return "", fmt.Errorf("pickup: %w", err)
	}
	return name, nil
}

// validName reports whether name can be a complete pickup file (temporary
// files start with a dot).
func validName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, "/\x00")
}

// Names lists the complete files waiting in dir, oldest first.
func Names(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		if validName(de.Name()) {
			out = append(out, de.Name())
		}
	}
	sort.Strings(out) // names start with the time in nanoseconds
	return out, nil
}

// File is an open pickup file: its envelope, its owner and the message.
type File struct {
	Entry
	f  *os.File
	br *bufio.Reader
}

// Message returns the message (everything after the envelope line).
func (f *File) Message() io.Reader { return f.br }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// ErrNotPickup marks a file the collector must not take: not a regular
// file, more than one link, or not in the pickup format.
var ErrNotPickup = errors.New("not a pickup file")

// Open opens one file of dir without following symlinks (and without
// blocking on a FIFO), checks it is a regular file with one link, and
// reads its envelope.
func Open(dir, name string) (*File, error) {
	if !validName(name) {
		return nil, fmt.Errorf("pickup %s: %w: bad name", name, ErrNotPickup)
	}
	fd, err := os.OpenFile(filepath.Join(dir, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("pickup %s: %w: a symbolic link", name, ErrNotPickup)
		}
		return nil, fmt.Errorf("pickup %s: %w", name, err)
	}
	f, err := readEntry(fd, name)
	if err != nil {
		fd.Close()
		return nil, err
	}
	return f, nil
}

func readEntry(fd *os.File, name string) (*File, error) {
	fi, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("pickup %s: %w", name, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("pickup %s: %w: not a regular file", name, ErrNotPickup)
	case !ok:
		return nil, fmt.Errorf("pickup %s: %w: no owner", name, ErrNotPickup)
	case st.Nlink != 1:
		return nil, fmt.Errorf("pickup %s: %w: %d links", name, ErrNotPickup, st.Nlink)
	}
	br := bufio.NewReaderSize(fd, 64*1024)
	line, err := readLine(br, maxHeader)
	if err != nil || !strings.HasPrefix(line, magic) {
		return nil, fmt.Errorf("pickup %s: %w: no envelope line", name, ErrNotPickup)
	}
	f := &File{f: fd, br: br, Entry: Entry{Name: name, UID: st.Uid, Time: fi.ModTime()}}
	if err := json.Unmarshal([]byte(line[len(magic):]), &f.Envelope); err != nil {
		return nil, fmt.Errorf("pickup %s: %w: envelope: %v", name, ErrNotPickup, err)
	}
	f.Size = fi.Size() - int64(len(line)) - 1
	return f, nil
}

// readLine reads one LF-terminated line of at most max bytes.
func readLine(br *bufio.Reader, max int) (string, error) {
	var b strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		if b.Len()+len(chunk) > max {
			return "", errors.New("line too long")
		}
		b.Write(chunk)
		if err == nil {
			return strings.TrimSuffix(b.String(), "\n"), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
}

// List returns the envelopes of the files waiting in dir, oldest first;
// files that vanish or cannot be read are left out.
func List(dir string) ([]Entry, error) {
	names, err := Names(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, n := range names {
		f, err := Open(dir, n)
		if err != nil {
			continue
		}
		out = append(out, f.Entry)
		f.Close()
	}
	return out, nil
}

// CRLF copies a message to w with every line ending in CRLF (a bare LF
// becomes CRLF, a lone CR is dropped), ending with a line end.
func CRLF(w io.Writer, r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	bw := bufio.NewWriterSize(w, 64*1024)
	var n int64
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			body := line
			eol := false
			if body[len(body)-1] == '\n' {
				body, eol = body[:len(body)-1], true
			}
			body = []byte(strings.ReplaceAll(string(body), "\r", ""))
			m, werr := bw.Write(body)
			n += int64(m)
			if werr != nil {
				return n, werr
			}
			if eol || err == io.EOF {
				m, werr := bw.WriteString("\r\n")
				n += int64(m)
				if werr != nil {
					return n, werr
				}
			}
		}
		if err == io.EOF {
			return n, bw.Flush()
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, err
		}
	}
}
