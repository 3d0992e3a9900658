package ucspi

// This file reads and writes djb's cdb constant-database format, in which
// tcprules stores access rules. It is written by hand on purpose: the
// format is fixed since 1996 and a page long, and the Go cdb modules are
// unmaintained or unobtainable here (DESIGN.md).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// CDB is a cdb file loaded in memory (rules files are small).
type CDB struct {
	data []byte
}

// ErrCorrupt is a cdb file that does not follow the format.
var ErrCorrupt = errors.New("corrupt cdb file")

// OpenCDB reads a cdb file.
func OpenCDB(path string) (*CDB, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 2048 {
		return nil, fmt.Errorf("%s: %w (shorter than its 2048-byte header)", path, ErrCorrupt)
	}
	return &CDB{data: b}, nil
}

// cdbHash is djb's hash: h = ((h << 5) + h) ^ c, starting at 5381.
func cdbHash(key []byte) uint32 {
	h := uint32(5381)
	for _, c := range key {
		h = ((h << 5) + h) ^ uint32(c)
	}
	return h
}

func (c *CDB) u32(pos uint32) (uint32, error) {
	if uint64(pos)+4 > uint64(len(c.data)) {
		return 0, ErrCorrupt
	}
	return binary.LittleEndian.Uint32(c.data[pos:]), nil
}

// Get returns the data of the first record with key, and whether it exists.
func (c *CDB) Get(key []byte) ([]byte, bool, error) {
	h := cdbHash(key)
	slot := (h & 255) * 8
	tpos, err := c.u32(slot)
	if err != nil {
		return nil, false, err
	}
	tlen, err := c.u32(slot + 4)
	if err != nil {
		return nil, false, err
	}
	if tlen == 0 {
		return nil, false, nil
	}
	start := (h >> 8) % tlen
	for i := uint32(0); i < tlen; i++ {
		s := tpos + ((start+i)%tlen)*8
		hh, err := c.u32(s)
		if err != nil {
			return nil, false, err
		}
		pos, err := c.u32(s + 4)
		if err != nil {
			return nil, false, err
		}
		if pos == 0 {
			return nil, false, nil
		}
		if hh != h {
			continue
		}
		klen, err := c.u32(pos)
		if err != nil {
			return nil, false, err
		}
		dlen, err := c.u32(pos + 4)
		if err != nil {
			return nil, false, err
		}
		kstart := uint64(pos) + 8
		dend := kstart + uint64(klen) + uint64(dlen)
		if dend > uint64(len(c.data)) {
			return nil, false, ErrCorrupt
		}
		if bytes.Equal(c.data[kstart:kstart+uint64(klen)], key) {
			return c.data[kstart+uint64(klen) : dend], true, nil
		}
	}
	return nil, false, nil
}

// WriteCDB writes records (in order) as a cdb file to w. Used by tests
// and by tools that compile rules.
func WriteCDB(w io.Writer, keys, values [][]byte) error {
	type entry struct{ h, pos uint32 }
	var buckets [256][]entry
	var body bytes.Buffer
	pos := uint32(2048)
	for i, k := range keys {
		v := values[i]
		var hdr [8]byte
		binary.LittleEndian.PutUint32(hdr[:4], uint32(len(k)))
		binary.LittleEndian.PutUint32(hdr[4:], uint32(len(v)))
		body.Write(hdr[:])
		body.Write(k)
		body.Write(v)
		h := cdbHash(k)
		buckets[h&255] = append(buckets[h&255], entry{h, pos})
		pos += uint32(8 + len(k) + len(v))
	}
	var header [2048]byte
	var tables bytes.Buffer
	for b := range buckets {
		n := uint32(len(buckets[b]) * 2)
		binary.LittleEndian.PutUint32(header[b*8:], pos+uint32(tables.Len()))
		binary.LittleEndian.PutUint32(header[b*8+4:], n)
		slots := make([]entry, n)
		for _, e := range buckets[b] {
			i := (e.h >> 8) % n
			for slots[i].pos != 0 {
				i = (i + 1) % n
			}
			slots[i] = e
		}
		for _, s := range slots {
			var rec [8]byte
			binary.LittleEndian.PutUint32(rec[:4], s.h)
			binary.LittleEndian.PutUint32(rec[4:], s.pos)
			tables.Write(rec[:])
		}
	}
	for _, part := range [][]byte{header[:], body.Bytes(), tables.Bytes()} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}
