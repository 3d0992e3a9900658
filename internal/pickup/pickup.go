// Package pickup is tlsmail's local mail drop, the counterpart of
// Postfix's maildrop: `sendmail` writes a message with its envelope into
// DATA/pickup (no SMTP, no credentials, no running server needed), and
// the running server collects each file into the queue and only then
// removes it. So mail from a cron job survives a stopped server.
//
// The directory is mode 1733 (sticky, writable by every local user, not
// listable by them), as Postfix's historical world-writable maildrop (its
// default now is 1730 written by the setgid postdrop helper; tlsmail has
// no such helper): a user can drop a file but not see, read or remove the
// files of others. Which users may submit is the server's
// authorized_submit_users (see Authorized). A file is
// written to a dot-name, fsynced and renamed into place (safeio), so the
// collector sees only complete files. The submitter is the file's owner
// (fstat), which the writer cannot forge; the collector refuses anything
// but a regular file with one link, opened without following symlinks.
package pickup

import (
	"bufio"
	"bytes"
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

// The envelope line is bounded before it is parsed: headerBase plus
// headerPerRcpt for each recipient the server allows (an address of up to
// 512 octets, quoted, with its comma), so a file cannot make the server
// hold more than the limits allow.
const (
	headerBase    = 64 << 10
	headerPerRcpt = 520
)

// MaxHeader is the longest envelope line accepted with at most maxRcpts
// recipients.
func MaxHeader(maxRcpts int) int { return headerBase + headerPerRcpt*max(maxRcpts, 0) }

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

// ValidNotify reports whether n is a DSN NOTIFY value as SMTP's RCPT
// accepts it (RFC 3461): "" (not given), NEVER, or a list of SUCCESS,
// FAILURE and DELAY; case does not matter.
func ValidNotify(n string) bool {
	if n == "" {
		return true
	}
	n = strings.ToUpper(n)
	if n == "NEVER" {
		return true
	}
	for _, v := range strings.Split(n, ",") {
		if v != "SUCCESS" && v != "FAILURE" && v != "DELAY" {
			return false
		}
	}
	return true
}

// Check validates an envelope against the server's recipient limit
// (maxRcpts; 0 is no limit): at least one recipient, not more than
// maxRcpts, a valid NOTIFY, no line breaks or NULs in the addresses.
func (e Envelope) Check(maxRcpts int) error {
	switch {
	case len(e.Rcpts) == 0:
		return errors.New("no recipients")
	case maxRcpts > 0 && len(e.Rcpts) > maxRcpts:
		return fmt.Errorf("too many recipients: %d, the limit is %d", len(e.Rcpts), maxRcpts)
	case !ValidNotify(e.Notify):
		return fmt.Errorf("bad NOTIFY %.40q", e.Notify)
	}
	for _, a := range append([]string{e.From}, e.Rcpts...) {
		if strings.ContainsAny(a, "\r\n\x00") {
			return fmt.Errorf("bad address %.80q", a)
		}
	}
	return nil
}

// Submit writes msg with env into dir durably and returns the file's
// name. msg is stored as given; the collector makes line ends CRLF.
// maxRcpts is the server's recipient limit (0: none).
func Submit(dir string, env Envelope, msg []byte, maxRcpts int) (string, error) {
	if err := env.Check(maxRcpts); err != nil {
		return "", fmt.Errorf("pickup: %w", err)
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
// reads its envelope: a line of at most MaxHeader(maxRcpts) octets,
// checked with Envelope.Check (NOTIFY is made uppercase).
func Open(dir, name string, maxRcpts int) (*File, error) {
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
	f, err := readEntry(fd, name, maxRcpts)
	if err != nil {
		fd.Close()
		return nil, err
	}
	return f, nil
}

func readEntry(fd *os.File, name string, maxRcpts int) (*File, error) {
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
	line, err := readLine(br, MaxHeader(maxRcpts))
	if err != nil || !strings.HasPrefix(line, magic) {
		why := "no envelope line"
		if errors.Is(err, errLineTooLong) {
			why = fmt.Sprintf("envelope line longer than %d octets", MaxHeader(maxRcpts))
		}
		return nil, fmt.Errorf("pickup %s: %w: %s", name, ErrNotPickup, why)
	}
	f := &File{f: fd, br: br, Entry: Entry{Name: name, UID: st.Uid, Time: fi.ModTime()}}
	if err := json.Unmarshal([]byte(line[len(magic):]), &f.Envelope); err != nil {
		return nil, fmt.Errorf("pickup %s: %w: envelope: %v", name, ErrNotPickup, err)
	}
	if err := f.Envelope.Check(maxRcpts); err != nil {
		return nil, fmt.Errorf("pickup %s: %w: %v", name, ErrNotPickup, err)
	}
	f.Notify = strings.ToUpper(f.Notify)
	f.Size = fi.Size() - int64(len(line)) - 1
	return f, nil
}

var errLineTooLong = errors.New("line too long")

// readLine reads one LF-terminated line of at most limit bytes.
func readLine(br *bufio.Reader, limit int) (string, error) {
	var b strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		if b.Len()+len(chunk) > limit+1 {
			return "", errLineTooLong
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
func List(dir string, maxRcpts int) ([]Entry, error) {
	names, err := Names(dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, n := range names {
		f, err := Open(dir, n, maxRcpts)
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

// Authorized reports whether the local user name (with uid) may submit
// mail, by a list like Postfix's authorized_submit_users: an empty list
// allows everyone (Postfix's default static:anyone); otherwise the first
// entry that matches decides: "name" or a numeric uid allows, "!name"
// refuses, "static:anyone" (or "*") matches everyone; no match refuses.
// So "!www-data, static:anyone" is everyone but www-data.
func Authorized(list []string, name string, uid uint32) bool {
	if len(list) == 0 {
		return true
	}
	id := fmt.Sprint(uid)
	for _, e := range list {
		e = strings.TrimSpace(e)
		neg := strings.HasPrefix(e, "!")
		e = strings.TrimSpace(strings.TrimPrefix(e, "!"))
		if e == "static:anyone" || e == "*" || e == name || e == id {
			return !neg
		}
	}
	return false
}

// HeaderEnd is the offset of the blank line that ends the message
// header, or -1 if there is none (the whole message is header).
func HeaderEnd(msg []byte) int {
	for i := 0; i < len(msg); {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			return -1
		}
		line := bytes.TrimRight(msg[i:i+j], "\r")
		if len(line) == 0 {
			return i
		}
		i += j + 1
	}
	return -1
}
