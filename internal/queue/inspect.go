package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Inspect reads the spool in dir without changing anything (for `tlsmail
// queue list|show`, which may run beside a live server).
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
		if err != nil {
			continue // finished or half-written meanwhile
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Envelope.ID < out[j].Envelope.ID })
	return out, nil
}

// InspectOne reads one queued message.
func InspectOne(dir, id string) (Item, error) {
	return (&Queue{dir: dir}).Get(id)
}
