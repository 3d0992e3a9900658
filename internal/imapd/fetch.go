package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"

	"github.com/tlsmail/tlsmail/internal/maildir"
	"github.com/tlsmail/tlsmail/internal/safeio"
)

// The system flags and their Maildir letters ($Forwarded is the keyword
// Dovecot maps to P). Other keywords: keywords.go.
var flagLetters = []struct {
	flag   imap.Flag
	letter rune
}{{imap.FlagDraft, 'D'}, {imap.FlagFlagged, 'F'}, {imap.FlagForwarded, 'P'}, {imap.FlagAnswered, 'R'}, {imap.FlagSeen, 'S'}, {imap.FlagDeleted, 'T'}}

var allFlags = func() []imap.Flag {
	var out []imap.Flag
	for _, f := range flagLetters {
		out = append(out, f.flag)
	}
	return out
}()

func imapFlags(letters string) []imap.Flag {
	out := []imap.Flag{}
	for _, f := range flagLetters {
		if strings.ContainsRune(letters, f.letter) {
			out = append(out, f.flag)
		}
	}
	return out
}

func maildirFlags(flags []imap.Flag) string {
	var b strings.Builder
	for _, fl := range flags {
		for _, f := range flagLetters {
			if strings.EqualFold(string(fl), string(f.flag)) {
				b.WriteRune(f.letter)
			}
		}
	}
	return maildir.NormalizeFlags(b.String())
}

// item is one message of a command, taken under the mailbox lock.
type item struct {
	seq uint32 // in the mailbox (not yet the session's numbering)
	msg *message
	m   maildir.Message // a copy: the file name then
}

// pick returns the messages of numSet ("*" and "$" resolved); mu held.
func (sess *session) pickLocked(numSet imap.NumSet) []item {
	mb := sess.sel
	if imap.IsSearchRes(numSet) {
		numSet = sess.searchRes
	}
	var out []item
	switch set := numSet.(type) {
	case imap.SeqSet:
		maxSeq := uint32(len(mb.msgs))
		set = append(imap.SeqSet(nil), set...)
		for i := range set {
			staticRange(&set[i].Start, &set[i].Stop, maxSeq)
		}
		for i, m := range mb.msgs {
			if seq := sess.view.EncodeSeqNum(uint32(i + 1)); seq != 0 && set.Contains(seq) {
				out = append(out, item{uint32(i + 1), m, m.m})
			}
		}
	case imap.UIDSet:
		maxUID := uint32(0)
		if n := len(mb.msgs); n > 0 {
			maxUID = uint32(mb.msgs[n-1].uid)
		}
		set = append(imap.UIDSet(nil), set...)
		for i := range set {
			staticRange((*uint32)(&set[i].Start), (*uint32)(&set[i].Stop), maxUID)
		}
		for i, m := range mb.msgs {
			if set.Contains(m.uid) {
				out = append(out, item{uint32(i + 1), m, m.m})
			}
		}
	}
	return out
}

func (sess *session) pick(numSet imap.NumSet) []item {
	sess.sel.mu.Lock()
	defer sess.sel.mu.Unlock()
	return sess.pickLocked(numSet)
}

func staticRange(start, stop *uint32, max uint32) {
	dyn := *start == 0 || *stop == 0
	if *start == 0 {
		*start = max
	}
	if *stop == 0 {
		*stop = max
	}
	if dyn && *start > *stop {
		*start, *stop = *stop, *start
	}
}

// content is a message with CRLF line ends; a message another session
// or POP3 removed meanwhile is fs.ErrNotExist.
func (sess *session) content(it *item) ([]byte, error) {
	mb := sess.sel
	b, err := readCRLF(mb.dir.Path(it.m), it.msg.size)
	if errors.Is(err, fs.ErrNotExist) {
		var m maildir.Message
		if m, err = mb.dir.Find(it.m.Name); err == nil {
			it.m = m
			b, err = readCRLF(mb.dir.Path(m), it.msg.size)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		mb.dirty.Store(true)
	}
	return b, err
}

func (sess *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, opts *imap.FetchOptions) error {
	markSeen := false
	for _, bs := range opts.BodySection {
		markSeen = markSeen || !bs.Peek
	}
	items := sess.pick(numSet)
	kw := readKeywords(sess.sel.dir)
	if markSeen && !sess.readOnly {
		if err := sess.setFlags(items, imap.StoreFlagsAdd, "S", nil); err != nil {
			return err
		}
		items = sess.pick(numSet)
	}
	needBody := opts.Envelope || opts.BodyStructure != nil || len(opts.BodySection) > 0 ||
		len(opts.BinarySection) > 0 || len(opts.BinarySectionSize) > 0
	for i := range items {
		it := &items[i]
		var body []byte
		if needBody {
			var err error
			if body, err = sess.content(it); errors.Is(err, fs.ErrNotExist) {
				continue // expunged by another session; the EXPUNGE follows
			} else if err != nil {
				sess.srv.log.Error("imap: fetch", "user", sess.user, "err", err)
				return serverError("cannot read a message")
			}
		}
		seq := sess.view.EncodeSeqNum(it.seq)
		if seq == 0 {
			continue
		}
		rw := w.CreateMessage(seq)
		rw.WriteUID(it.msg.uid)
		if opts.Flags || markSeen {
			rw.WriteFlags(kw.flags(it.m.Flags()))
		}
		if opts.InternalDate {
			rw.WriteInternalDate(sess.sel.date(it.msg))
		}
		if opts.RFC822Size {
			rw.WriteRFC822Size(it.msg.size)
		}
		if opts.Envelope {
			if h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(body))); err == nil {
				rw.WriteEnvelope(imapserver.ExtractEnvelope(h))
			}
		}
		if opts.BodyStructure != nil {
			rw.WriteBodyStructure(imapserver.ExtractBodyStructure(bytes.NewReader(body)))
		}
		for _, bs := range opts.BodySection {
			buf := body // BODY[] as stored, not re-serialised
			if len(bs.Part) > 0 || bs.Specifier != imap.PartSpecifierNone || bs.Partial != nil ||
				len(bs.HeaderFields) > 0 || len(bs.HeaderFieldsNot) > 0 {
				buf = imapserver.ExtractBodySection(bytes.NewReader(body), bs)
			}
			if err := writeAll(rw.WriteBodySection(bs, int64(len(buf))), buf); err != nil {
				return err
			}
		}
		for _, bs := range opts.BinarySection {
			buf := imapserver.ExtractBinarySection(bytes.NewReader(body), bs)
			if err := writeAll(rw.WriteBinarySection(bs, int64(len(buf))), buf); err != nil {
				return err
			}
		}
		for _, bss := range opts.BinarySectionSize {
			rw.WriteBinarySectionSize(bss, imapserver.ExtractBinarySectionSize(bytes.NewReader(body), bss))
		}
		if err := rw.Close(); err != nil {
			return err
		}
		sess.fetched++
	}
	return nil
}

func writeAll(wc interface {
	Write([]byte) (int, error)
	Close() error
}, b []byte) error {
	_, err := wc.Write(b)
	if cerr := wc.Close(); err == nil {
		err = cerr
	}
	return err
}

// setFlags changes the flags of items by renaming their files (under the
// INBOX's POP3 lock; one fsync of cur/ for all) and tells the other
// sessions.
func (sess *session) setFlags(items []item, op imap.StoreFlagsOp, letters string, kw *keywords) error {
	mb := sess.sel
	if kw == nil {
		k := readKeywords(mb.dir)
		kw = &k
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return mb.withPOP3Lock(func() error {
		renamed := false
		defer func() {
			if renamed {
				if err := mb.dir.SyncCur(); err != nil {
					sess.srv.log.Error("imap: store flags", "user", sess.user, "err", err)
				}
			}
		}()
		for _, it := range items {
			msg := it.msg
			if mb.seqOf(msg.uid) == 0 {
				continue // expunged meanwhile
			}
			if _, err := mb.path(msg); err != nil {
				continue
			}
			old := msg.m.Flags()
			var next string
			switch op {
			case imap.StoreFlagsSet:
				// Keyword letters the table does not define are not
				// the client's to replace: they stay (keywords.go).
				next = letters + strings.Map(func(r rune) rune {
					if r >= 'a' && r <= 'z' && kw.names[r-'a'] == "" {
						return r
					}
					return -1
				}, old)
			case imap.StoreFlagsAdd:
				next = old + letters
			case imap.StoreFlagsDel:
				next = strings.Map(func(r rune) rune {
					if strings.ContainsRune(letters, r) {
						return -1
					}
					return r
				}, old)
			}
			next = maildir.NormalizeFlags(next)
			if next == old && !msg.m.New {
				continue
			}
			m, err := mb.dir.SetFlags(msg.m, next)
			if err != nil {
				sess.srv.log.Error("imap: store flags", "user", sess.user, "err", err)
				return serverError("cannot change flags")
			}
			msg.m, renamed = m, true
			if next != old {
				mb.tracker.QueueMessageFlags(mb.seqOf(msg.uid), msg.uid, kw.flags(next), sess.view)
			}
		}
		return nil
	})
}

func (sess *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, _ *imap.StoreOptions) error {
	if sess.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "the mailbox is read-only (EXAMINE)"}
	}
	items := sess.pick(numSet)
	// A removal needs no letter for a keyword the folder lacks: no
	// message carries it.
	assign := assignKeywords
	if flags.Op == imap.StoreFlagsDel {
		assign = func(d maildir.Dir, _ []imap.Flag) (keywords, error) { return readKeywords(d), nil }
	}
	kw, err := assign(sess.sel.dir, flags.Flags)
	if errors.Is(err, errTooManyKeywords) {
		return errKeywordLimit
	} else if err != nil {
		sess.srv.log.Error("imap: store keywords", "user", sess.user, "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "cannot keep the keywords"}
	}
	if err := sess.setFlags(items, flags.Op, kw.letters(flags.Flags), &kw); err != nil {
		return err
	}
	if flags.Silent {
		return nil
	}
	return sess.Fetch(w, numSet, &imap.FetchOptions{Flags: true, UID: true})
}

func (sess *session) Expunge(_ *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if sess.readOnly {
		return nil
	}
	mb := sess.sel
	mb.mu.Lock()
	defer mb.mu.Unlock()
	n := 0
	var removed, bytes int64                             // what this session removed, for the quota
	defer func() { sess.countQuota(-removed, -bytes) }() // quota.go
	err := mb.withPOP3Lock(func() error {
		for _, msg := range mb.msgs {
			if uids != nil && !uids.Contains(msg.uid) {
				continue
			}
			if !strings.ContainsRune(msg.m.Flags(), maildir.FlagTrashed) {
				continue
			}
			err := safeio.Unlink(mb.dir.Path(msg.m))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			n++
			if err == nil {
				removed++
				bytes += msg.m.Size
			}
		}
		if n > 0 {
			_ = safeio.SyncDir(filepath.Join(string(mb.dir), "cur"))
		}
		return nil
	})
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return err
		}
		sess.srv.log.Error("imap: expunge", "user", sess.user, "err", err)
		return serverError("cannot expunge")
	}
	sess.expunged += n
	return mb.syncLocked(false) // queues the EXPUNGEs for every session
}

// Copy links the messages into dest under new names (a copy where links
// cannot be made), with their flags.
func (sess *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	dd, lock, err := sess.folder(dest)
	if err != nil {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "no such mailbox"}
	}
	items := sess.pick(numSet)
	var names []string
	var src imap.UIDSet
	var size int64
	for _, it := range items {
		size += it.m.Size
	}
	if err := sess.checkQuota(int64(len(items)), size); err != nil { // quota.go
		return nil, err
	}
	var copied, copiedBytes int64
	defer func() { sess.countQuota(copied, copiedBytes) }()
	for i := range items {
		it := &items[i]
		name := uniqueName(sess.sel.date(it.msg))
		if err := linkInto(sess.sel.dir, it, dd, name); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if errors.Is(err, errTooManyKeywords) {
			return nil, errKeywordLimit
		} else if err != nil {
			sess.srv.log.Error("imap: copy", "user", sess.user, "err", err)
			return nil, serverError("cannot copy")
		}
		names = append(names, name)
		src.AddNum(it.msg.uid)
		copied++
		copiedBytes += it.m.Size
	}
	if len(names) > 0 {
		if err := safeio.SyncDir(filepath.Join(string(dd), "cur")); err != nil {
			return nil, serverError("cannot copy")
		}
	}
	return sess.register(dd, lock, names, src)
}

// register gives names just stored in the Maildir d their UIDs.
func (sess *session) register(d maildir.Dir, lock string, names []string, src imap.UIDSet) (*imap.CopyData, error) {
	mb, err := sess.srv.reg.open(d, lock)
	if err != nil {
		return nil, serverError("cannot open the mailbox")
	}
	defer sess.srv.reg.release(mb)
	uids, err := mb.addDelivered(names)
	if err != nil {
		sess.srv.log.Error("imap: index", "user", sess.user, "err", err)
		return nil, serverError("cannot index the messages")
	}
	var dst imap.UIDSet
	for _, u := range uids {
		dst.AddNum(u)
	}
	return &imap.CopyData{UIDValidity: mb.validity, SourceUIDs: src, DestUIDs: dst}, nil
}

// linkInto puts a second name for the message file into dest's cur/.
func linkInto(src maildir.Dir, it *item, dest maildir.Dir, name string) error {
	p := src.Path(it.m)
	if _, err := os.Lstat(p); err != nil {
		m, err := src.Find(it.m.Name)
		if err != nil {
			return err
		}
		it.m, p = m, src.Path(m)
	}
	letters, err := translateKeywords(src, dest, it.m.Flags())
	if err != nil {
		return err
	}
	to := filepath.Join(string(dest), "cur", maildir.FlagFile(name, letters))
	if err := os.Link(p, to); err == nil {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := dest.Deliver(name, f, maildir.Options{}); err != nil {
		return err
	}
	_, err = dest.SetFlags(maildir.Message{Name: name, File: name, New: true}, letters)
	return err
}

// Move renames the files into dest (same names, same flags), then
// registers them there and lets the source's sync expunge them.
func (sess *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if sess.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "the mailbox is read-only (EXAMINE)"}
	}
	dd, lock, err := sess.folder(dest)
	if err != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "no such mailbox"}
	}
	mb := sess.sel
	if filepath.Clean(string(dd)) == mb.key {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "source and destination are the same mailbox"}
	}
	items := sess.pick(numSet)
	var names []string
	var src imap.UIDSet
	err = mb.withPOP3Lock(func() error {
		for i := range items {
			it := &items[i]
			m, err := mb.dir.Find(it.m.Name)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			letters, err := translateKeywords(mb.dir, dd, m.Flags())
			if err != nil {
				return err
			}
			if _, err := mb.dir.MoveTo(m, dd, letters); err != nil {
				return err
			}
			names = append(names, m.Name)
			src.AddNum(it.msg.uid)
		}
		return nil
	})
	if err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) {
			return err
		}
		if errors.Is(err, errTooManyKeywords) {
			return errKeywordLimit
		}
		sess.srv.log.Error("imap: move", "user", sess.user, "err", err)
		return serverError("cannot move")
	}
	data, err := sess.register(dd, lock, names, src)
	if err != nil {
		return err
	}
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	mb.dirty.Store(true)
	if err := mb.sync(); err != nil {
		return fmt.Errorf("imap move: %w", err)
	}
	return nil
}
