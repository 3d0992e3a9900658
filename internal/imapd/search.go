package imapd

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// Search evaluates the criteria over the selected mailbox (the matching
// follows imapserver's in-memory example server: substring matches,
// case-insensitive, dates without time zones). A message's file is read
// only when a criterion needs its header or text.
func (sess *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, opts *imap.SearchOptions) (*imap.SearchData, error) {
	items := sess.pick(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}})
	kw := readKeywords(sess.sel.dir)
	sess.staticCriteria(criteria)
	var data imap.SearchData
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for i := range items {
		it := &items[i]
		seq := sess.view.EncodeSeqNum(it.seq)
		c := &candidate{sess: sess, it: it, seq: seq, kw: &kw}
		ok, err := c.match(criteria)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		uids.AddNum(it.msg.uid)
		num := uint32(it.msg.uid)
		if kind == imapserver.NumKindSeq {
			if seq == 0 {
				continue
			}
			seqs.AddNum(seq)
			num = seq
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		if num > data.Max {
			data.Max = num
		}
		data.Count++
	}
	if kind == imapserver.NumKindSeq {
		data.All = seqs
	} else {
		data.All = uids
	}
	if opts.ReturnSave {
		sess.searchRes = uids
	}
	return &data, nil
}

// staticCriteria resolves "*" and "$" in the criteria's sets.
func (sess *session) staticCriteria(c *imap.SearchCriteria) {
	mb := sess.sel
	mb.mu.Lock()
	maxSeq, maxUID := uint32(len(mb.msgs)), uint32(0)
	if len(mb.msgs) > 0 {
		maxUID = uint32(mb.msgs[len(mb.msgs)-1].uid)
	}
	mb.mu.Unlock()
	var seqs []imap.SeqSet
	for _, s := range c.SeqNum {
		if imap.IsSearchRes(s) {
			c.UID = append(c.UID, sess.searchRes)
			continue
		}
		s = append(imap.SeqSet(nil), s...)
		for i := range s {
			staticRange(&s[i].Start, &s[i].Stop, maxSeq)
		}
		seqs = append(seqs, s)
	}
	c.SeqNum = seqs
	for j, u := range c.UID {
		if imap.IsSearchRes(u) {
			c.UID[j] = sess.searchRes
			continue
		}
		u = append(imap.UIDSet(nil), u...)
		for i := range u {
			staticRange((*uint32)(&u[i].Start), (*uint32)(&u[i].Stop), maxUID)
		}
		c.UID[j] = u
	}
	for i := range c.Not {
		sess.staticCriteria(&c.Not[i])
	}
	for i := range c.Or {
		sess.staticCriteria(&c.Or[i][0])
		sess.staticCriteria(&c.Or[i][1])
	}
}

type candidate struct {
	sess   *session
	kw     *keywords // the folder's keyword letters
	it     *item
	seq    uint32
	body   []byte
	loaded bool
	gone   bool
}

func (c *candidate) entity() *gomessage.Entity {
	if !c.loaded {
		c.loaded = true
		b, err := c.sess.content(c.it)
		c.body, c.gone = b, errors.Is(err, fs.ErrNotExist) || err != nil
	}
	e, _ := gomessage.Read(bytes.NewReader(c.body))
	if e == nil {
		e, _ = gomessage.New(gomessage.Header{}, bytes.NewReader(nil))
	}
	return e
}

func (c *candidate) match(cr *imap.SearchCriteria) (bool, error) {
	it := c.it
	for _, s := range cr.SeqNum {
		if c.seq == 0 || !s.Contains(c.seq) {
			return false, nil
		}
	}
	for _, u := range cr.UID {
		if !u.Contains(it.msg.uid) {
			return false, nil
		}
	}
	if !matchDate(c.sess.sel.date(it.msg), cr.Since, cr.Before) {
		return false, nil
	}
	flags := it.m.Flags()
	for _, f := range cr.Flag {
		l := c.kw.letters([]imap.Flag{f}) // $Forwarded: P or its keyword letter
		if l == "" || !strings.ContainsAny(flags, l) {
			return false, nil
		}
	}
	for _, f := range cr.NotFlag {
		if l := c.kw.letters([]imap.Flag{f}); l != "" && strings.ContainsAny(flags, l) {
			return false, nil
		}
	}
	if cr.Larger != 0 && it.msg.size <= cr.Larger {
		return false, nil
	}
	if cr.Smaller != 0 && it.msg.size >= cr.Smaller {
		return false, nil
	}
	if len(cr.Header) > 0 || !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() || len(cr.Text) > 0 || len(cr.Body) > 0 {
		e := c.entity()
		if c.gone {
			return false, nil
		}
		h := mail.Header{Header: e.Header}
		for _, hc := range cr.Header {
			if !matchFields(h.FieldsByKey(hc.Key), hc.Value) {
				return false, nil
			}
		}
		if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
			t, err := h.Date()
			if err != nil || !matchDate(t, cr.SentSince, cr.SentBefore) {
				return false, nil
			}
		}
		for _, t := range cr.Text {
			if !matchEntity(c.entity(), t, true) {
				return false, nil
			}
		}
		for _, t := range cr.Body {
			if !matchEntity(c.entity(), t, false) {
				return false, nil
			}
		}
	}
	for i := range cr.Not {
		ok, err := c.match(&cr.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range cr.Or {
		a, err := c.match(&cr.Or[i][0])
		if err != nil {
			return false, err
		}
		b, err := c.match(&cr.Or[i][1])
		if err != nil {
			return false, err
		}
		if !a && !b {
			return false, nil
		}
	}
	return true, nil
}

func matchDate(t, since, before time.Time) bool {
	t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && t.Before(since) {
		return false
	}
	return before.IsZero() || t.Before(before)
}

func matchFields(fields gomessage.HeaderFields, pattern string) bool {
	if pattern == "" {
		return fields.Len() > 0
	}
	pattern = strings.ToLower(pattern)
	for fields.Next() {
		v, _ := fields.Text()
		if strings.Contains(strings.ToLower(v), pattern) {
			return true
		}
	}
	return false
}

func matchEntity(e *gomessage.Entity, pattern string, header bool) bool {
	if pattern == "" {
		return true
	}
	if header && matchFields(e.Header.Fields(), pattern) {
		return true
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			part, err := mr.NextPart()
			if err != nil {
				return false
			}
			if matchEntity(part, pattern, header) {
				return true
			}
		}
	}
	t, _, _ := e.Header.ContentType()
	if t != "" && !strings.HasPrefix(t, "text/") && !strings.HasPrefix(t, "message/") {
		return false
	}
	b, err := io.ReadAll(e.Body)
	if err != nil {
		return false
	}
	return bytes.Contains(bytes.ToLower(b), bytes.ToLower([]byte(pattern)))
}
