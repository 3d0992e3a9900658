package server

import (
	"io"
	"os"
	"sync"
	"syscall"

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
	fs      *safeio.DirSyncer // one round per file system, keyed by a directory on it
	keys    sync.Map          // Maildir path -> key: the first Maildir seen on its device
	devs    sync.Map          // device -> key

	mu     sync.Mutex
	staged map[string][]stagedFile // by key: written, waiting for a round

	syncFS  func(dir string) error // safeio.SyncFS (a test's observer)
	syncDir func(dir string) error // fsyncs new/: the delivery's DirSyncer
}

// stagedFile is a Maildir file in tmp/ waiting to be made durable and
// published.
type stagedFile struct {
	md    maildir.Dir
	name  string
	retry bool // an earlier attempt may have published it
}

// round makes every file staged on key's file system durable (one
// syncfs), publishes them into new/ and fsyncs each new/ once. It is the
// DirSyncer's hook: files staged before it started are covered.
func (b *localBatch) round(key string) error {
	b.mu.Lock()
	files := b.staged[key]
	delete(b.staged, key)
	b.mu.Unlock()
	if err := b.syncFS(key); err != nil {
		return err
	}
	dirs := map[string]bool{}
	var first error
	for _, f := range files {
		if err := f.md.Publish(f.name, f.retry); err != nil && first == nil {
			first = err
		}
		dirs[f.md.NewDir()] = true
	}
	for dir := range dirs {
		if err := b.syncDir(dir); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// batchKey says whether the Maildir at path is delivered to in batches,
// and under which syncfs key.
func (d *delivery) batchKey(path string) (string, bool) {
	b := &d.batch
	b.once.Do(func() {
		b.enabled = safeio.SyncFSReportsErrors()
		b.fs = safeio.NewDirSyncerFunc(b.round)
		b.staged = map[string][]stagedFile{}
		if b.syncFS == nil {
			b.syncFS = safeio.SyncFS
		}
		b.syncDir = d.syncer.Sync
	})
	if !b.enabled {
		return "", false
	}
	if k, ok := b.keys.Load(path); ok {
		return k.(string), true
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false
	}
	k, _ := b.devs.LoadOrStore(st.Dev, path)
	b.keys.Store(path, k)
	return k.(string), true
}

// localBatched stages one delivery and returns its outcome, whose Durable
// makes it durable with the rest of the batch and publishes it.
func (d *delivery) localBatched(md maildir.Dir, key, name, user string, i int, r io.Reader, retry bool) queue.Outcome {
	staged, err := md.Stage(name, r, retry)
	if err != nil {
		return queue.Outcome{Rcpt: i, Reply: "4.3.0 " + err.Error()}
	}
	if !staged {
		// A copy from an earlier attempt: durable before it was named,
		// but its name may not be yet (killed before new/ was synced).
		tk := d.syncer.Mark(md.NewDir())
		return queue.Outcome{Rcpt: i, Delivered: true, Reply: "already in maildir " + user + " (not stored twice)",
			Durable: func() error { return d.syncer.Wait(tk) }}
	}
	// Listed and marked together, after the write: the round that
	// covers the ticket publishes the file.
	b := &d.batch
	b.mu.Lock()
	b.staged[key] = append(b.staged[key], stagedFile{md: md, name: name, retry: retry})
	tk := b.fs.Mark(key)
	b.mu.Unlock()
	return queue.Outcome{Rcpt: i, Delivered: true, Reply: "delivered to maildir " + user,
		Durable: func() error { return b.fs.Wait(tk) }}
}
