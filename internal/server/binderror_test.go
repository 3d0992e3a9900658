package server

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

// A dev port in use: the hint says to change every port of a copy (the
// dev config has fifteen addresses; changing one only moved the clash,
// and the file itself is rewritten by the next dev start).
func TestDevBindErrorSaysChangeEveryPortInACopy(t *testing.T) {
	cfg := config.Dev(t.TempDir())
	err := bindError(cfg, "listener mx", fmt.Errorf("listen tcp 127.0.0.1:2525: %w", syscall.EADDRINUSE), "listener", "0", "address")
	for _, want := range []string{"copy " + cfg.Path("tlsmail.toml"), "every listener and of metrics_address", "tlsmail serve --config COPY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}
