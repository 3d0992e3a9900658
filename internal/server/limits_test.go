package server

import (
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

func TestDescriptorLimitCoversEveryListenerFull(t *testing.T) {
	cfg := config.Dev(t.TempDir()) // 10 listeners (5 on 127.0.0.1, 5 on ::1)
	cfg.Limits.Connections = 30
	if need, ok := descriptorsFit(cfg, 400); !ok || need != 10*30+descriptorReserve {
		t.Errorf("30 per listener in 400 descriptors: need %d, fits %v", need, ok)
	}
	// The default 1000 per listener under `ulimit -n 400`: warned.
	cfg.Limits.Connections = 1000
	if _, ok := descriptorsFit(cfg, 400); ok {
		t.Error("1000 connections on each of 10 listeners fit in 400 descriptors?")
	}
}
