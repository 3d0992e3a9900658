package smtpd

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// The per-message log lines. Their keys and order are the log format
// (docs and tests rely on them); only how they are built differs.

// logAccepted writes the "message accepted" line of a committed message:
// id, client, from, to (the recipients, comma-separated), protocol,
// requiretls when asked, and the TLS attributes. It runs for every
// message, so it builds slog.Attr values (no value boxed in an interface,
// no envelope built just for the log) and nothing at all when Info is
// off.
func (ss *session) logAccepted(id string) {
	ctx := context.Background()
	if !ss.srv.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	_, smtputf8 := ss.mail.Get("SMTPUTF8")
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("id", id), slog.String("client", ss.ip), slog.String("from", ss.mail.Addr),
		slog.String("to", ss.rcptList()), slog.String("protocol", ss.protocol(smtputf8)))
	if _, ok := ss.mail.Get("REQUIRETLS"); ok {
		attrs = append(attrs, slog.Bool("requiretls", true))
	}
	attrs = append(attrs, ss.tls.LogAttrs()...)
	attrs = ss.milterAttrs(attrs) // milter.go
	ss.srv.log.LogAttrs(ctx, slog.LevelInfo, "message accepted", attrs...)
}

// logSession writes the "session" line at the end of a connection (with
// one message a connection, also once a message), as logAccepted does.
func (ss *session) logSession(result string) {
	ctx := context.Background()
	if !ss.srv.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs, slog.String("listener", ss.lc.Name), slog.String("client", ss.ip), slog.String("rdns", ss.rdns), slog.String("helo", ss.helo),
		slog.Int("messages", ss.msgs), slog.String("duration", time.Since(ss.start).Round(time.Millisecond).String()), slog.String("end", result))
	if ss.user != "" {
		attrs = append(attrs, slog.String("user", ss.user))
	}
	if ss.hello != "" {
		attrs = append(attrs, slog.String("client_offered", ss.hello))
	}
	attrs = append(attrs, ss.tls.LogAttrs()...)
	ss.srv.log.LogAttrs(ctx, slog.LevelInfo, "session", attrs...)
}

// rcptList is the transaction's recipients, comma-separated.
func (ss *session) rcptList() string {
	if len(ss.rcpts) == 1 {
		return ss.rcpts[0].Addr
	}
	var b strings.Builder
	for i, r := range ss.rcpts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.Addr)
	}
	return b.String()
}
