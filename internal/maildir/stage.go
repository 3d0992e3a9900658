package maildir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Batched delivery (issue 13): Stage writes tmp/NAME without an fsync of
// its own; the caller makes a batch of staged files durable together
// (one syncfs(2) of the file system, safeio.SyncFS), then Publishes each
// into new/ and fsyncs new/ once for the batch. A name is in new/ only
// once its content is durable, so the idempotent-by-name rule still holds
// after a power cut: a retry that finds NAME in new/ or cur/ finds a whole
// copy, and one that does not writes tmp/NAME again.

// Stage writes the message read from r to tmp/NAME (see UniqueName),
// unsynced. With maybeDelivered, a name already in new/ or cur/ is
// reported as staged=false and nothing is written.
func (d Dir) Stage(name string, r io.Reader, maybeDelivered bool) (staged bool, err error) {
	return d.stage(name, r, maybeDelivered, false)
}

// stage writes tmp/NAME, fsynced with sync: the write half of Stage and
// Deliver.
func (d Dir) stage(name string, r io.Reader, maybeDelivered, sync bool) (staged bool, err error) {
	if strings.ContainsAny(name, "/:") || name == "" {
		return false, fmt.Errorf("maildir: invalid name %q", name)
	}
	if maybeDelivered && d.has(name) {
		return false, nil
	}
	tmp := filepath.Join(string(d), "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return false, fmt.Errorf("maildir deliver: %w", err)
	}
	// Through one pooled buffer, filled before each write, so the caller's
	// header and the message go out in one write when they fit, and a
	// delivery leaves no buffer behind for the GC.
	err = copyFull(f, r)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("maildir deliver: %w", err)
	}
	return true, nil
}

// stageBufs holds the 64 KiB buffers stage writes through.
var stageBufs = sync.Pool{New: func() any { b := make([]byte, 64*1024); return &b }}

// copyFull copies r to w in writes of a whole buffer (the last one
// shorter): a message of up to 64 KiB is one write, whatever the sizes
// of r's reads.
func copyFull(w io.Writer, r io.Reader) error {
	bp := stageBufs.Get().(*[]byte)
	defer stageBufs.Put(bp)
	buf := *bp
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return nil
		default:
			return err
		}
	}
}

// Publish moves a staged tmp/NAME into new/ — call it only once the file
// is durable. With mayExist (a retry) it never replaces a copy already
// there: the staged file is linked, and dropped; otherwise it is renamed
// (one call). The caller fsyncs NewDir afterwards. published says whether
// the file got its name in new/ (false: with mayExist, a copy was there).
func (d Dir) Publish(name string, mayExist bool) (published bool, err error) {
	return d.publish(name, mayExist)
}

// publish is Publish that also says whether the file got its name in
// new/ (false: with mayExist, a copy was there already).
func (d Dir) publish(name string, mayExist bool) (published bool, err error) {
	tmp := filepath.Join(string(d), "tmp", name)
	dst := filepath.Join(string(d), "new", name)
	if !mayExist {
		if err := safeio.Rename(tmp, dst); err != nil {
			os.Remove(tmp)
			return false, fmt.Errorf("maildir deliver: %w", err)
		}
		return true, nil
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("maildir deliver: %w", err)
	}
	return true, nil
}
