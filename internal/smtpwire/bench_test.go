package smtpwire

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// The wire benchmarks cover the per-message work of a server session:
//
//	go test -run '^$' -bench . -benchmem ./internal/smtpwire

// benchCommands is one 1-message transaction's commands, as a client
// sends them.
const benchCommands = "EHLO client.example.org\r\nMAIL FROM:<load@bench.test> SIZE=1024\r\nRCPT TO:<demo@localhost>\r\nDATA\r\nQUIT\r\n"

// BenchmarkReadLine reads the five command lines of a transaction (one op).
func BenchmarkReadLine(b *testing.B) {
	r := strings.NewReader(benchCommands)
	br := bufio.NewReaderSize(r, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCommands)))
	for b.Loop() {
		r.Reset(benchCommands)
		br.Reset(r)
		for range 5 {
			if _, err := ReadLine(br, 512); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchData is a 1 KB message with its terminator, as sent after 354.
var benchData = func() string {
	var sb strings.Builder
	sb.WriteString("From: load@bench.test\r\nTo: demo@localhost\r\nSubject: bench\r\n\r\n")
	for sb.Len() < 1024 {
		sb.WriteString("the quick brown fox jumps over the lazy dog 0123456789\r\n")
	}
	sb.WriteString(".\r\n")
	return sb.String()
}()

// BenchmarkReadData reads one 1 KB DATA section.
func BenchmarkReadData(b *testing.B) {
	r := strings.NewReader(benchData)
	br := bufio.NewReaderSize(r, 4096)
	w := bufio.NewWriterSize(io.Discard, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchData)))
	for b.Loop() {
		r.Reset(benchData)
		br.Reset(r)
		if _, err := ReadData(w, br, 10<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplies renders the replies of a 1-message transaction.
func BenchmarkReplies(b *testing.B) {
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		out = out[:0]
		out = append(out, R(250, "2.1.0", "Ok").Bytes()...)
		out = append(out, R(250, "2.1.5", "Ok").Bytes()...)
		out = append(out, R(354, "", "End data with <CR><LF>.<CR><LF>").Bytes()...)
		out = append(out, R(250, "2.0.0", "Ok: queued as %s", "4Xb2Rk9wzMZq").Bytes()...)
		out = append(out, R(221, "2.0.0", "%s Bye", "mx.example.org").Bytes()...)
	}
}

// BenchmarkParsePath parses a MAIL FROM argument with a parameter.
func BenchmarkParsePath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePathArg("FROM:<load@bench.test> SIZE=1024 BODY=8BITMIME", "FROM"); err != nil {
			b.Fatal(err)
		}
	}
}
