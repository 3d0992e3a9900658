package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tlsmail/tlsmail/internal/config"
)

// Where syslog and journald listen on a systemd machine.
const (
	SyslogSocket  = "/dev/log"
	JournalSocket = "/run/systemd/journal/socket"
)

// LogTargets are the sockets log_output = "syslog" and "journald" write
// to (tests point them at sockets they listen on); empty: the system's.
type LogTargets struct {
	Syslog  string
	Journal string
}

// NewLogger makes the server's logger from log_level, log_format and
// log_output: text or JSON lines on stderr; syslog (facility mail, tag
// tlsmail, the level as the priority); or journald's native protocol,
// where MESSAGE is the same one line and every attribute is also a field
// of its own (CLIENT=192.0.2.7, TLS=TLSv1.3), so `journalctl
// SYSLOG_IDENTIFIER=tlsmail CLIENT=192.0.2.7` finds a session. The
// returned closer releases the socket.
func NewLogger(cfg *config.Config, stderr io.Writer, to LogTargets) (*slog.Logger, io.Closer, error) {
	level := parseLevel(cfg.LogLevel)
	jsonFormat := cfg.LogFormat == config.LogJSON
	switch cfg.LogOutput {
	case config.LogSyslog:
		addr := to.Syslog
		if addr == "" {
			addr = SyslogSocket
		}
		w, err := syslog.Dial("unixgram", addr, syslog.LOG_MAIL|syslog.LOG_INFO, "tlsmail")
		if err != nil {
			return nil, nil, cfg.ErrorAt(fmt.Sprintf("log_output syslog: %s: %v", addr, err), "log_output")
		}
		return slog.New(&lineHandler{level: level, json: jsonFormat, emit: func(l slog.Level, line string, _ []field) error {
			switch {
			case l >= slog.LevelError:
				return w.Err(line)
			case l >= slog.LevelWarn:
				return w.Warning(line)
			case l >= slog.LevelInfo:
				return w.Info(line)
			}
			return w.Debug(line)
		}}), w, nil
	case config.LogJournald:
		addr := to.Journal
		if addr == "" {
			addr = JournalSocket
		}
		j, err := dialJournal(addr)
		if err != nil {
			return nil, nil, cfg.ErrorAt(fmt.Sprintf("log_output journald: %v", err), "log_output")
		}
		return slog.New(&lineHandler{level: level, json: jsonFormat, fields: true, emit: j.send}), j, nil
	}
	opts := &slog.HandlerOptions{Level: level}
	if jsonFormat {
		return slog.New(slog.NewJSONHandler(stderr, opts)), io.NopCloser(nil), nil
	}
	return slog.New(slog.NewTextHandler(stderr, opts)), io.NopCloser(nil), nil
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// field is one structured journald field.
type field struct{ key, value string }

// lineHandler renders each record as one text or JSON line without time
// and level (syslog and journald stamp both) and hands it, with the
// record's attributes as fields when asked, to emit. WithAttrs and
// WithGroup are kept as a list and replayed on slog's own handler for
// each record, so the line reads exactly as on stderr.
type lineHandler struct {
	level  slog.Level
	json   bool
	fields bool
	ops    []handlerOp
	emit   func(slog.Level, string, []field) error
}

type handlerOp struct {
	group string // WithGroup, or
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *lineHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.ops = append(append([]handlerOp{}, h.ops...), handlerOp{attrs: attrs})
	return &c
}

func (h *lineHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.ops = append(append([]handlerOp{}, h.ops...), handlerOp{group: name})
	return &c
}

func (h *lineHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
			return slog.Attr{}
		}
		return a
	}}
	var inner slog.Handler = slog.NewTextHandler(&buf, opts)
	if h.json {
		inner = slog.NewJSONHandler(&buf, opts)
	}
	var fields []field
	prefix := ""
	for _, op := range h.ops {
		if op.group != "" {
			inner = inner.WithGroup(op.group)
			prefix += op.group + "."
			continue
		}
		inner = inner.WithAttrs(op.attrs)
		if h.fields {
			for _, a := range op.attrs {
				fields = appendFields(fields, prefix, a)
			}
		}
	}
	if err := inner.Handle(ctx, r); err != nil {
		return err
	}
	if h.fields {
		r.Attrs(func(a slog.Attr) bool { fields = appendFields(fields, prefix, a); return true })
	}
	return h.emit(r.Level, strings.TrimRight(buf.String(), "\n"), fields)
}

func appendFields(out []field, prefix string, a slog.Attr) []field {
	a.Value = a.Value.Resolve()
	if a.Key == "" && a.Value.Kind() != slog.KindGroup {
		return out
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			out = appendFields(out, p, g)
		}
		return out
	}
	return append(out, field{journalKey(prefix + a.Key), a.Value.String()})
}

// journalKey maps a log key to a journald field name: upper case,
// [A-Z0-9_] only, not starting with a digit or "_" (reserved for
// trusted fields), at most 64 characters.
func journalKey(k string) string {
	b := make([]byte, 0, len(k)+1)
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	if len(b) == 0 || b[0] == '_' || (b[0] >= '0' && b[0] <= '9') {
		b = append([]byte("F_"), b...)
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// journal writes records to journald with its native protocol
// (systemd.io/JOURNAL_NATIVE_PROTOCOL): one datagram of KEY=value lines,
// a value with a newline as KEY, newline, 64-bit little-endian length,
// the bytes, newline; an entry too big for a datagram goes in a sealed
// memfd passed with SCM_RIGHTS. Hand-written because the maintained Go
// clients (go-systemd's journal, systemd/slog-journal) fix the socket
// path, so no test could listen in their place, and slog-journal drops
// records silently when the journal is absent.
type journal struct {
	conn *net.UnixConn
	addr *net.UnixAddr
}

func dialJournal(path string) (*journal, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: %w (is systemd-journald running?)", path, errors.Unwrap(err))
	}
	// An unbound, unconnected datagram socket: each entry is sent to the
	// path, so a restarted journald is reached again.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "journal")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return &journal{conn: c.(*net.UnixConn), addr: &net.UnixAddr{Name: path, Net: "unixgram"}}, nil
}

func (j *journal) Close() error { return j.conn.Close() }

func (j *journal) send(l slog.Level, line string, fields []field) error {
	var b bytes.Buffer
	put := func(k, v string) {
		b.WriteString(k)
		if !strings.Contains(v, "\n") {
			b.WriteByte('=')
			b.WriteString(v)
			b.WriteByte('\n')
			return
		}
		b.WriteByte('\n')
		_ = binary.Write(&b, binary.LittleEndian, uint64(len(v)))
		b.WriteString(v)
		b.WriteByte('\n')
	}
	put("MESSAGE", line)
	put("PRIORITY", strconv.Itoa(int(journalPriority(l))))
	put("SYSLOG_IDENTIFIER", "tlsmail")
	put("SYSLOG_FACILITY", strconv.Itoa(int(syslog.LOG_MAIL>>3)))
	for _, f := range fields {
		if f.key == "MESSAGE" || f.key == "PRIORITY" || f.key == "SYSLOG_IDENTIFIER" || f.key == "SYSLOG_FACILITY" {
			f.key = "F_" + f.key // an attribute never replaces the entry's own fields
		}
		put(f.key, f.value)
	}
	_, err := j.conn.WriteToUnix(b.Bytes(), j.addr)
	if err == nil || !(errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS)) {
		return err
	}
	return j.sendMemfd(b.Bytes())
}

// sendMemfd passes a large entry as a sealed memory file.
func (j *journal) sendMemfd(p []byte) error {
	fd, err := unix.MemfdCreate("tlsmail-journal", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "memfd")
	defer f.Close()
	if _, err := f.Write(p); err != nil {
		return err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return err
	}
	_, _, err = j.conn.WriteMsgUnix(nil, unix.UnixRights(int(f.Fd())), j.addr)
	return err
}

func journalPriority(l slog.Level) syslog.Priority {
	switch {
	case l >= slog.LevelError:
		return syslog.LOG_ERR
	case l >= slog.LevelWarn:
		return syslog.LOG_WARNING
	case l >= slog.LevelInfo:
		return syslog.LOG_INFO
	}
	return syslog.LOG_DEBUG
}
