package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// New messages are appended to a segment log instead of getting a file
// each (issue 13): envelope and content in one record, made durable by one
// fdatasync of the segment that every session waiting for its 250 shares
// (group commit, see log.go).
//
//	log/SEQ.seg   records, append-only; SEQ is 16 hex digits, increasing
//	log/SEQ.done  IDs of the segment's messages that are finished, one a
//	              line (appended without fsync, as msg/ID's removal was)
//
// A record:
//
//	"TLQ1" | ID (20 bytes) | envelope length (uint32) | content length (uint64)
//	| CRC-32C of content and envelope (uint32) | CRC-32C of the 40 bytes before (uint32)
//	| content (headers and body, CRLF) | envelope (sealed JSON, checksum.go)
//
// The envelope comes last because the content's length is known only at
// its end (the content is checksummed as it streams in).
//
// Recovery reads every record and checks both CRCs. A record whose header
// is not whole and valid, or that runs past the end of the file, ends the
// segment: it is a torn tail — written but never made durable, so never
// acknowledged — and it and anything after it are ignored (a segment is
// never appended to after a restart). A record with a valid header whose
// content fails its CRC is corrupt: it is set aside in corrupt/ and the
// next record is read.

const (
	recMagic  = "TLQ1"
	recHeader = 4 + 20 + 4 + 8 + 4 + 4
	segSuffix = ".seg"
	doneSufx  = ".done"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeHeader builds a record header.
func encodeHeader(id string, env []byte, contentLen int64, crc uint32) []byte {
	h := make([]byte, recHeader)
	copy(h, recMagic)
	copy(h[4:24], id)
	binary.BigEndian.PutUint32(h[24:], uint32(len(env)))
	binary.BigEndian.PutUint64(h[28:], uint64(contentLen))
	binary.BigEndian.PutUint32(h[36:], crc)
	binary.BigEndian.PutUint32(h[40:], crc32.Checksum(h[:40], castagnoli))
	return h
}

// recInfo is a record header read back.
type recInfo struct {
	id      string
	envLen  int64
	dataLen int64
	crc     uint32
}

// decodeHeader checks and reads a record header.
func decodeHeader(h []byte) (recInfo, bool) {
	if len(h) < recHeader || string(h[:4]) != recMagic ||
		binary.BigEndian.Uint32(h[40:]) != crc32.Checksum(h[:40], castagnoli) {
		return recInfo{}, false
	}
	r := recInfo{id: string(h[4:24]), envLen: int64(binary.BigEndian.Uint32(h[24:])),
		dataLen: int64(binary.BigEndian.Uint64(h[28:])), crc: binary.BigEndian.Uint32(h[36:])}
	if !validID(r.id) || r.envLen <= 0 || r.dataLen < 0 || r.dataLen > 1<<40 {
		return recInfo{}, false
	}
	return r, true
}

// segName is the file name of segment seq.
func segName(seq uint64) string { return fmt.Sprintf("%016X", seq) }

// parseSegName reads a segment's sequence number from its file name.
func parseSegName(name, suffix string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, suffix)
	if !ok || len(base) != 16 {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 16, 64)
	return n, err == nil
}

// scannedRec is one record found by scanSegment.
type scannedRec struct {
	off     int64 // where the record starts
	envLen  int64
	dataLen int64
	id      string
	corrupt string // why the record fails its checks ("" if it passes)
}

// scanSegment reads every record of a segment. It stops at zeros where a
// header should be followed by nothing but zeros (the end of the records
// of a pre-zeroed segment, prezero.go), or at a torn tail (a short or
// garbled header, a record longer than the file, or a last record whose
// content fails its checksum) and returns how many bytes it ignored
// there. A record followed by others that fails its checksum is returned
// as corrupt.
func scanSegment(f *os.File) (recs []scannedRec, tornBytes int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := st.Size()
	r := &offsetReader{f: f}
	buf := make([]byte, 64*1024)
	h := make([]byte, recHeader)
	var off int64
	// tail returns what follows the whole records from off on: nothing
	// (zeros, prezero.go) or a torn tail of that many bytes.
	tail := func(off int64) ([]scannedRec, int64, error) {
		zero, err := zeroTail(f, off, size)
		if err != nil || zero {
			return recs, 0, err
		}
		return recs, size - off, nil
	}
	for off < size {
		if size-off < recHeader {
			return tail(off)
		}
		r.off = off
		if _, err := io.ReadFull(r, h); err != nil {
			return recs, 0, fmt.Errorf("%s: %w", f.Name(), err)
		}
		ri, ok := decodeHeader(h)
		end := off + recHeader + ri.envLen + ri.dataLen
		if !ok || end > size || end < off {
			return tail(off)
		}
		crc, err := recordCRC(r, off, ri, buf)
		if err != nil {
			return recs, 0, err
		}
		if crc != ri.crc {
			// The last record (at the end of the file, or followed by
			// nothing but the zeros of a pre-zeroed segment), its header
			// whole but not its content: written and not yet synced when
			// the machine stopped (with delayed allocation the file can
			// keep the record's length and read back zeros). Never
			// acknowledged: a torn tail.
			last, err := zeroTail(f, end, size)
			if err != nil {
				return recs, 0, err
			}
			if last {
				return recs, end - off, nil
			}
			// A record followed by another: corrupt, unless it was
			// being written while `tlsmail queue` read the live log
			// (the file is zeroed ahead, so a half-written record can
			// sit before a whole one by the time we look): read again.
			if crc, err = recordCRC(r, off, ri, buf); err != nil {
				return recs, 0, err
			}
		}
		rec := scannedRec{off: off, envLen: ri.envLen, dataLen: ri.dataLen, id: ri.id}
		if crc != ri.crc {
			rec.corrupt = fmt.Sprintf("record checksum mismatch in %s at offset %d", filepath.Base(f.Name()), off)
		}
		recs = append(recs, rec)
		off = end
	}
	return recs, 0, nil
}

// recordCRC reads the content and envelope of the record at off (its
// header ri) and returns their CRC-32C.
func recordCRC(r *offsetReader, off int64, ri recInfo, buf []byte) (uint32, error) {
	r.off = off + recHeader
	crc := uint32(0)
	for left := ri.envLen + ri.dataLen; left > 0; {
		n := int(min(left, int64(len(buf))))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return 0, fmt.Errorf("%s: %w", r.f.Name(), err)
		}
		crc = crc32.Update(crc, castagnoli, buf[:n])
		left -= int64(n)
	}
	return crc, nil
}

// offsetReader reads a file from off on with ReadAt (no shared offset).
type offsetReader struct {
	f   *os.File
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.f.ReadAt(p, o.off)
	o.off += int64(n)
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// readDone reads a segment's done file: the IDs of its finished messages.
// A torn last line (a crash while appending) is ignored.
func readDone(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if validID(line) {
			done[line] = true
		}
	}
	return done, nil
}
