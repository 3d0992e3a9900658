package server

import (
	"log/slog"
	"syscall"

	"github.com/tlsmail/tlsmail/internal/config"
)

// descriptorReserve is what the server needs besides client connections:
// queue files, Maildir writes, outbound connections, logs, listeners.
const descriptorReserve = 64

// warnDescriptorLimit logs once at start when the listeners' connection
// limits together exceed the open-file limit: then a full listener (idle
// POP3 clients, say) can take the descriptors the others need before any
// limit or stress mode applies.
func warnDescriptorLimit(cfg *config.Config, log *slog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if need, ok := descriptorsFit(cfg, rl.Cur); !ok {
		log.Warn("connection limits exceed the open-file limit: raise `ulimit -n` or lower [limits] connections",
			"connections", need-descriptorReserve, "listeners", listenerCount(cfg), "nofile", rl.Cur)
	}
}

// listenerCount is the number of connection listeners: SMTP, POP3, IMAP.
func listenerCount(cfg *config.Config) int {
	return len(cfg.Listeners) + len(cfg.POP3) + len(cfg.IMAP)
}

// descriptorsFit reports whether every listener full at once fits in
// nofile descriptors, and how many that takes.
func descriptorsFit(cfg *config.Config, nofile uint64) (need uint64, ok bool) {
	n := uint64(listenerCount(cfg)) * uint64(max(cfg.Limits.Connections, 0))
	need = n + descriptorReserve
	return need, need <= nofile
}
