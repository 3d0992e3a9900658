package maildir

import (
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkStage1K is the write half of a local delivery as the server
// runs it: a 1 KB CRLF message (after a Return-Path/Delivered-To head)
// through LFReader into tmp/NAME, unsynced. allocs/op and B/op are the
// per-delivery garbage (issue 13).
func BenchmarkStage1K(b *testing.B) {
	d, err := Create(filepath.Join(b.TempDir(), "md"))
	if err != nil {
		b.Fatal(err)
	}
	msg := strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\r\n", 19)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r := io.MultiReader(strings.NewReader("Return-Path: <a@b.test>\nDelivered-To: c@d.test\n"), LFReader(strings.NewReader(msg)))
		if _, err := d.Stage("bench."+strconv.Itoa(i), r, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUniqueName is the name of every delivered file.
func BenchmarkUniqueName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = UniqueName(1765000000, "4Xb2Rk9wzMZqR0", "mx.example.org")
	}
}
