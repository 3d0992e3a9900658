package queue

import (
	"errors"
	"fmt"
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
	entries, err := os.ReadDir(filepath.Join(dir, "msg"))
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", dir, err)
	}
	q := &Queue{dir: dir}
	var out []Item
	for _, e := range entries {
		if !validID(e.Name()) {
			continue
		}
		it, err := q.Get(e.Name())
		if reason, ok := corruptReason(err); ok {
			it.Envelope.ID = e.Name()
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
	it, err := (&Queue{dir: dir}).Get(id)
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
	}
	return it, err
}
