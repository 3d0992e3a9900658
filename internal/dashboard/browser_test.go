package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	_ "image/png" // the screenshots
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestDashboardInChromium logs in with headless Chromium (Debian's
// chromium, driven over the DevTools protocol by chromedp), checks what
// the page says, and checks from screenshots that the page is not blank
// and that each chart is drawn: its SVG has a size, its bars are laid out,
// and its pixels hold the colours of the levels that were recorded.
// TLSMAIL_SCREENSHOTS=dir keeps the screenshots.
func TestDashboardInChromium(t *testing.T) {
	chromium := testpeer.Require(t, "chromium")
	e := newEnv(t, nil)
	seed(t, e.st)
	srv := httptest.NewUnstartedServer(e.h)
	srv.StartTLS()
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.IgnoreCertErrors, // httptest's own certificate
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 2400), chromedp.Flag("disable-gpu", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	if err := chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/?days=7"),
		chromedp.WaitVisible(chromedp.ID("token")),
	); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	loginURL := run(t, bctx, chromedp.Location())
	if err := chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("outbound-chart")),
	); err != nil {
		t.Fatalf("chromium: logging in: %v", err)
	}
	title := run(t, bctx, chromedp.Title())
	if at := run(t, bctx, chromedp.Location()); !strings.HasSuffix(at, "/?days=7") {
		t.Errorf("after the login at %s, want the page asked for (/?days=7)", at)
	}
	pq := run(t, bctx, chromedp.Text(chromedp.ID("pq-share")))
	noTLS := run(t, bctx, chromedp.Text(chromedp.ID("no-tls")))
	if !strings.Contains(loginURL, "/login?next=") {
		t.Errorf("not sent to the login page first: %s", loginURL)
	}
	if !strings.Contains(title, "mx.example.test") {
		t.Errorf("title %q", title)
	}
	if pq != "50.0%" {
		t.Errorf("post-quantum share shown %q, want 50.0%%", pq)
	}
	if !strings.Contains(noTLS, "legacy-plain.test") {
		t.Errorf("destinations without TLS: %q, want legacy-plain.test", noTLS)
	}

	// Each chart has a size and its bars are laid out with one.
	for _, id := range []string{"outbound-chart", "inbound-chart"} {
		js := fmt.Sprintf(`(() => { const s = document.getElementById(%q).getBoundingClientRect();
			const bars = Array.from(document.querySelectorAll('#%s rect.bar')).filter(r => { const b = r.getBoundingClientRect(); return b.width > 0 && b.height > 0; });
			return [s.width, s.height, bars.length]; })()`, id, id)
		sizes := run(t, bctx, chromedp.Evaluate[[]float64](js))
		if len(sizes) != 3 || sizes[0] < 300 || sizes[1] < 100 || sizes[2] < 2 {
			t.Errorf("%s rendered as width, height, visible bars = %v; want a drawn chart", id, sizes)
		}
	}

	page := run(t, bctx, chromedp.FullScreenshot(100))
	outChart := run(t, bctx, chromedp.Screenshot(chromedp.ID("outbound-chart")))
	inChart := run(t, bctx, chromedp.Screenshot(chromedp.ID("inbound-chart")))
	if dir := os.Getenv("TLSMAIL_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), page, 0o644)
		_ = os.WriteFile(filepath.Join(dir, "outbound-chart.png"), outChart, 0o644)
		_ = os.WriteFile(filepath.Join(dir, "inbound-chart.png"), inChart, 0o644)
	}
	// Not blank: a good part of the page differs from its background.
	share := inkShare(t, page)
	t.Logf("%.3f of the page differs from its background", share)
	if share < 0.02 {
		t.Errorf("the page is nearly blank: %.3f of its pixels differ from the background", share)
	}
	// Each chart holds the colours of what was recorded.
	for name, shot := range map[string]struct {
		png    []byte
		colors map[string]string
	}{
		"outbound": {outChart, map[string]string{"dane": outboundFill["dane"], "mta-sts": outboundFill["mta-sts"], "plaintext": outboundFill["plaintext"], "failed": outboundFill["failed"]}},
		"inbound": {inChart, map[string]string{"TLSv1.3 PQ": inboundFill("TLSv1.3 PQ"), "TLSv1.3": inboundFill("TLSv1.3"), "plaintext": inboundFill("plaintext"),
			"the post-quantum share line": "#08519c"}},
	} {
		img := decode(t, shot.png)
		for key, hex := range shot.colors {
			if n := countColor(img, hex); n < 20 {
				t.Errorf("%s chart: %d pixels of %s (%s); the bar is missing", name, n, key, hex)
			}
		}
	}
}

// run runs one browser action and returns its value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return v
}

func decode(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

// inkShare is the share of pixels that differ clearly from the top-left
// pixel (the background).
func inkShare(t *testing.T, b []byte) float64 {
	img := decode(t, b)
	r := img.Bounds()
	bg := img.At(r.Min.X, r.Min.Y+r.Dy()-1)
	ink, all := 0, 0
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			all++
			if dist(img.At(x, y), bg) > 40 {
				ink++
			}
		}
	}
	return float64(ink) / float64(all)
}

// countColor counts the pixels within a small distance of #rrggbb.
func countColor(img image.Image, hex string) int {
	var c color.RGBA
	fmt.Sscanf(hex, "#%02x%02x%02x", &c.R, &c.G, &c.B)
	c.A = 255
	n := 0
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if dist(img.At(x, y), c) < 12 {
				n++
			}
		}
	}
	return n
}

func dist(a, b color.Color) int {
	ar, ag, ab, _ := a.RGBA()
	br, bg, bb, _ := b.RGBA()
	d := func(x, y uint32) int {
		if x > y {
			return int(x-y) >> 8
		}
		return int(y-x) >> 8
	}
	return d(ar, br) + d(ag, bg) + d(ab, bb)
}
