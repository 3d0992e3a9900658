package server

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// Local delivery in batches (issue 13): a Maildir file is written to
// tmp/ without an fsync of its own; the queue's completer then waits for
// the deliveries of a batch of finished messages together, and the first
// wait starts one round for the batch: a syncfs(2) of the Maildirs' file
// system makes every staged file durable, each is then moved into new/,
// and each new/ touched is fsynced once. Only then does the queue drop
// the message. A crash before leaves it queued, and the retry finds in
// new/ only copies that were durable before they got their name there.
//
// syncfs flushes the whole file system's dirty data, other writers'
// included: with the spool and the Maildirs on one file system that is
// mostly the queue log, which the accepting sessions fdatasync anyway.
// It is used only where it reports writeback errors (Linux 5.8+);
// elsewhere each file is fsynced as before.
type localBatch struct {
	once    sync.Once
	enabled bool
	fs      *safeio.DirSyncer // one round at a time per file system, keyed by its device
	keys    sync.Map          // Maildir path -> key (the device, as a string)

	mu     sync.Mutex
	staged map[string][]stagedFile // by key: written, waiting for a round
	// failures counts, by key, the syncfs calls that failed. A writeback
	// error is reported once, to the first syncfs after it: a file
	// written before a failed syncfs may have lost its pages to it even
	// if a later round (its own) succeeds, so it is made durable only if
	// no syncfs failed since its write began.
	failures map[string]uint64
	// roots holds, by key, a directory of the file system opened when the
	// device was first seen: syncfs goes through it, so it reports every
	// writeback error since then (an error is reported only to
	// descriptors open before it), and it still works when that
	// directory has been removed (a user's Maildir deleted by the admin).
	// One descriptor per file system, open for the process's life.
	roots map[string]*os.File

	syncFS  func(f *os.File) error // safeio.SyncFSFile (a test's observer)
	syncDir func(dir string) error // fsyncs new/: the delivery's DirSyncer
}

// stagedFile is a Maildir file in tmp/ waiting to be made durable and
// published.
type stagedFile struct {
	md    maildir.Dir
	name  string
	retry bool        // an earlier attempt may have published it
	res   *fileResult // set by the round that handles it
	fails uint64      // failures[key] before it was written
	// count ends its quota count (maildir.BeginStore; nil without a
	// quota): called by the round with its size once it is published,
	// or as not stored when the round fails it.
	count func(n int64, stored bool)
	size  int64
}

// counted ends f's quota count, if it has one.
func (f stagedFile) counted(stored bool) {
	if f.count != nil {
		f.count(f.size, stored)
	}
}

// fileResult is what a round did with one staged file: each delivery
// gets its own outcome, so one broken Maildir does not fail the others
// of the round (whose copies are in new/: a retry could store one twice
// if the user moved it meanwhile).
type fileResult struct {
	done bool
	err  error
}

// round makes every file staged on key's file system durable (one
// syncfs), publishes them into new/ and fsyncs each new/ once, and sets
// each file's result. It is the DirSyncer's hook: files staged before it
// started are covered. It returns the syncfs error.
func (b *localBatch) round(key string) error {
	b.mu.Lock()
	files := b.staged[key]
	delete(b.staged, key)
	root := b.roots[key]
	b.mu.Unlock()
	if len(files) == 0 {
		return nil // handled by an earlier round
	}
	err := b.syncFS(root)
	b.mu.Lock()
	if err != nil {
		b.failures[key]++
	}
	fails := b.failures[key]
	b.mu.Unlock()
	if err != nil {
		// They stay in tmp/; the retry writes them again.
		for _, f := range files {
			f.counted(false)
			*f.res = fileResult{done: true, err: err}
		}
		return err
	}
	byDir := map[string][]stagedFile{}
	for _, f := range files {
		if f.fails != fails {
			// An earlier round's syncfs failed after this file was
			// written: that error may have been its pages'.
			f.counted(false)
			*f.res = fileResult{done: true, err: fmt.Errorf("maildir deliver: a writeback error on the file system since %s was written", f.name)}
			continue
		}
		// Counted as it gets its name in new/: a recount before saw
		// it nowhere, one after finds it being stored and leaves it
		// to this count.
		published, err := f.md.Publish(f.name, f.retry)
		f.counted(published)
		if err != nil {
			*f.res = fileResult{done: true, err: err}
			continue
		}
		byDir[f.md.NewDir()] = append(byDir[f.md.NewDir()], f)
	}
	for dir, fs := range byDir {
		err := b.syncDir(dir)
		for _, f := range fs {
			*f.res = fileResult{done: true, err: err}
		}
	}
	return nil
}

// batchKey says whether the Maildir at path is delivered to in batches,
// and under which syncfs key.
func (d *delivery) batchKey(path string) (string, bool) {
	b := &d.batch
	b.once.Do(func() {
		b.enabled = safeio.SyncFSReportsErrors()
		b.fs = safeio.NewDirSyncerFunc(b.round)
		b.staged = map[string][]stagedFile{}
		b.failures = map[string]uint64{}
		b.roots = map[string]*os.File{}
		if b.syncFS == nil {
			b.syncFS = safeio.SyncFSFile
		}
		b.syncDir = d.syncer.Sync
	})
	if !b.enabled {
		return "", false
	}
	if k, ok := b.keys.Load(path); ok {
		return k.(string), true
	}
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	var st *syscall.Stat_t
	fi, err := f.Stat()
	if err == nil {
		st, _ = fi.Sys().(*syscall.Stat_t)
	}
	if st == nil {
		f.Close()
		return "", false
	}
	key := strconv.FormatUint(st.Dev, 10)
	b.mu.Lock()
	if _, ok := b.roots[key]; ok {
		f.Close()
	} else {
		b.roots[key] = f
	}
	b.mu.Unlock()
	b.keys.Store(path, key)
	return key, true
}

// localBatched stages one delivery and returns its outcome, whose Durable
// makes it durable with the rest of the batch and publishes it. count
// (nil without a quota) ends the message's quota count: the round that
// publishes the file calls it, or this when nothing is staged. msg
// counts what Stage reads: the message's size.
func (d *delivery) localBatched(md maildir.Dir, key, name, user string, i int, msg *countingReader, retry bool, count func(n int64, stored bool)) queue.Outcome {
	b := &d.batch
	b.mu.Lock()
	fails := b.failures[key]
	b.mu.Unlock()
	staged, err := md.Stage(name, msg, retry)
	if (err != nil || !staged) && count != nil {
		// Nothing stored now; a copy from an earlier attempt is counted
		// already, or by this if a recount skipped it.
		count(msg.n, false)
	}
	if err != nil {
		return queue.Outcome{Rcpt: i, Status: dstatus.Temp("4.3.0", "mailbox unavailable").WithDetail(err.Error())}
	}
	if !staged {
		// A copy from an earlier attempt: durable before it was named,
		// but its name may not be yet (killed before new/ was synced).
		tk := d.syncer.Mark(md.NewDir())
		return queue.Outcome{Rcpt: i, Delivered: true, Status: dstatus.Delivered("already in maildir " + user + " (not stored twice)"),
			Durable: func() error { return d.syncer.Wait(tk) }}
	}
	// Listed and marked together, after the write: the round that
	// covers the ticket, or an earlier one, publishes the file.
	res := &fileResult{}
	b.mu.Lock()
	b.staged[key] = append(b.staged[key], stagedFile{md: md, name: name, retry: retry, res: res, fails: fails, count: count, size: msg.n})
	tk := b.fs.Mark(key)
	b.mu.Unlock()
	return queue.Outcome{Rcpt: i, Delivered: true, Status: dstatus.Delivered("delivered to maildir " + user),
		Durable: func() error {
			err := b.fs.Wait(tk)
			// The round has run (Wait orders it before this read).
			if res.done {
				return res.err
			}
			return err
		}}
}
