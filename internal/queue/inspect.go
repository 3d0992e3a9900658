package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
)

// Inspect reads the spool in dir without changing anything (for `tlsmail
// queue list|show`, which may run beside a live server). Messages set
// aside (corrupt/, hold/) are listed too, after the queued ones, with
// their Aside reason; so is a corrupt file still in msg/ (the server
// moves it at its next look).
func Inspect(dir string) ([]Item, error) {
	q, err := inspectQueue(dir)
	if err != nil {
		return nil, err
	}
	defer q.spool.close()
	ids, err := q.IDs()
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	var out []Item
	for _, id := range ids {
		it, err := q.Get(id)
		if reason, ok := corruptReason(err); ok {
			it.Envelope.ID = id
			it.Aside = &Aside{Where: "msg", Reason: reason}
		} else if err != nil {
			continue // finished meanwhile
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Envelope.ID < out[j].Envelope.ID })
	aside := inspectAside(dir)
	sort.Slice(aside, func(i, j int) bool { return aside[i].Envelope.ID < aside[j].Envelope.ID })
	return append(out, aside...), nil
}

// InspectOne reads one message: queued, or set aside.
func InspectOne(dir, id string) (Item, error) {
	q, err := inspectQueue(dir)
	if err != nil {
		return Item{}, err
	}
	defer q.spool.close()
	it, err := q.Get(id)
	if reason, ok := corruptReason(err); ok {
		it.Envelope.ID = id
		it.Aside = &Aside{Where: "msg", Reason: reason}
		return it, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		for _, where := range []string{CorruptDir, HoldDir} {
			if _, serr := os.Stat(filepath.Join(dir, where, id)); serr == nil {
				return asideItem(dir, where, id), nil
			}
		}
		// Not the path of the file it would have been in: the ID is what
		// the admin gave (delivered and gone, or mistyped).
		return it, fmt.Errorf("queue: no message %s (%w)", id, os.ErrNotExist)
	}
	return it, err
}

// inspectQueue is a read-only view of the spool in dir: the log is read
// (records and done marks) but nothing is changed, and nothing is cached
// about state files.
func inspectQueue(dir string) (*Queue, error) {
	if _, err := os.Stat(filepath.Join(dir, "msg")); err != nil {
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	l := &spoolLog{dir: filepath.Join(dir, "log"), log: slog.New(slog.DiscardHandler), segs: map[string]*segment{}, index: map[string]*logEntry{}}
	if _, err := os.Stat(l.dir); err == nil {
		if _, err := l.load(true); err != nil {
			return nil, err
		}
	}
	return &Queue{dir: dir, spool: l}, nil
}
