package server

import (
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

func TestDescriptorLimitCoversEveryListenerFull(t *testing.T) {
	cfg := config.Dev(t.TempDir()) // 14 listeners: SMTP, POP3 and IMAP, on 127.0.0.1 and ::1
	if n := listenerCount(cfg); n != 14 {
		t.Fatalf("dev listeners: %d", n)
	}
	cfg.Limits.Connections = 20
	if need, ok := descriptorsFit(cfg, 400); !ok || need != 14*20+descriptorReserve {
		t.Errorf("20 per listener in 400 descriptors: need %d, fits %v", need, ok)
	}
	// The default 1000 per listener under `ulimit -n 400`: warned.
	cfg.Limits.Connections = 1000
	if _, ok := descriptorsFit(cfg, 400); ok {
		t.Error("1000 connections on each of 14 listeners fit in 400 descriptors?")
	}
}
