package dashboard

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/records"
)

// Chart is a daily stacked bar chart, laid out here and drawn by the
// template as inline SVG.
type Chart struct {
	ID, Title string
	W, H      int
	Bars      []Rect
	Grid      []Line
	XLabels   []Label
	Legend    []LegendItem
	Total     int
	// Share is a line over the bars: the daily share (0–100 %, the
	// plot's full height) of the keys it counts; ShareName says what.
	Share       []Point
	SharePoints string // the polyline's points
	ShareName   string

	// the layout, for withShare
	perDay   map[int]map[string]int
	dayTotal map[int]int
	since    time.Time
	slot     float64
	ndays    int
}

// Point is a point of the share line; Title is its tooltip.
type Point struct {
	X, Y  float64
	Title string
}

// Rect is one bar segment; Title is its tooltip.
type Rect struct {
	X, Y, W, H float64
	Fill       string
	Title      string
	Key        string
}

// Line is a horizontal grid line with its value.
type Line struct {
	Y, X1, X2 float64
	Text      string
}

// Label is text at a place.
type Label struct {
	X, Y float64
	Text string
}

// LegendItem names a colour and totals its count.
type LegendItem struct {
	Key, Fill string
	Count     int
}

// Colours: greens for what is protected and verified, orange for TLS
// without verification, red for plaintext, purple for failures.
var outboundFill = map[string]string{
	records.LevelDANE: "#1b7837", records.LevelMTASTS: "#5aae61", records.LevelVerified: "#a6dba0",
	records.LevelEncrypted: "#fdb863", records.LevelPlaintext: "#d7301f", records.LevelFailed: "#762a83",
}

// inboundRank orders the inbound mix: post-quantum first, plaintext last.
func inboundRank(key string) (int, string) {
	switch {
	case strings.HasSuffix(key, " PQ"):
		return 0, key
	case key == "TLSv1.3":
		return 1, key
	case key == "TLSv1.2":
		return 2, key
	case key == "plaintext":
		return 9, key
	}
	return 5, key
}

func inboundFill(key string) string {
	switch r, _ := inboundRank(key); r {
	case 0:
		return "#1b7837"
	case 1:
		return "#5aae61"
	case 2:
		return "#fdb863"
	case 9:
		return "#d7301f"
	}
	return "#999999"
}

const (
	chartW, chartH         = 720, 240
	padL, padR, padT, padB = 44.0, 8.0, 20.0, 28.0
	plotW                  = chartW - padL - padR
	plotH                  = chartH - padT - padB
	maxXLabels             = 8
	dayLayout              = "2006-01-02"
	minBarGap              = 1.0
)

// stacked lays out counts per day of [since, until) stacked in keys'
// order; days without records get no bar.
func stacked(id, title string, since, until time.Time, counts []records.DayCount, keys []string, fill func(string) string) Chart {
	c := Chart{ID: id, Title: title, W: chartW, H: chartH}
	ndays := max(int(until.Sub(since).Hours()/24+0.5), 1)
	perDay := map[int]map[string]int{}
	totals := map[string]int{}
	dayTotal := map[int]int{}
	maxDay := 0
	for _, d := range counts {
		i := int(d.Day.Sub(since).Hours() / 24)
		if i < 0 || i >= ndays {
			continue
		}
		if perDay[i] == nil {
			perDay[i] = map[string]int{}
		}
		perDay[i][d.Key] += d.Count
		totals[d.Key] += d.Count
		dayTotal[i] += d.Count
		c.Total += d.Count
		maxDay = max(maxDay, dayTotal[i])
	}
	top := niceCeil(maxDay)
	slot := plotW / float64(ndays)
	barW := max(slot-max(minBarGap, slot*0.15), 1)
	for i := range ndays {
		y := padT + plotH
		day := since.AddDate(0, 0, i).Format(dayLayout)
		for _, k := range keys {
			n := perDay[i][k]
			if n == 0 {
				continue
			}
			h := plotH * float64(n) / float64(top)
			y -= h
			c.Bars = append(c.Bars, Rect{X: padL + float64(i)*slot + (slot-barW)/2, Y: y, W: barW, H: h, Fill: fill(k), Key: k,
				Title: fmt.Sprintf("%s: %d %s", day, n, k)})
		}
	}
	for _, v := range []int{0, top / 2, top} {
		y := padT + plotH - plotH*float64(v)/float64(top)
		c.Grid = append(c.Grid, Line{Y: y, X1: padL, X2: padL + plotW, Text: fmt.Sprint(v)})
	}
	step := (ndays + maxXLabels - 1) / maxXLabels
	for i := 0; i < ndays; i += step {
		c.XLabels = append(c.XLabels, Label{X: padL + float64(i)*slot + slot/2, Y: chartH - 8, Text: since.AddDate(0, 0, i).Format("Jan 2")})
	}
	for _, k := range keys {
		c.Legend = append(c.Legend, LegendItem{Key: k, Fill: fill(k), Count: totals[k]})
	}
	c.perDay, c.dayTotal, c.since, c.slot, c.ndays = perDay, dayTotal, since, slot, ndays
	return c
}

// withShare adds the daily share of the keys counted by in as a line.
func (c Chart) withShare(name string, in func(key string) bool) Chart {
	c.ShareName = name
	var pts []string
	for i := range c.ndays {
		total := c.dayTotal[i]
		if total == 0 {
			continue
		}
		n := 0
		for k, v := range c.perDay[i] {
			if in(k) {
				n += v
			}
		}
		share := float64(n) / float64(total)
		p := Point{X: padL + float64(i)*c.slot + c.slot/2, Y: padT + plotH*(1-share),
			Title: fmt.Sprintf("%s: %.0f%% %s (%d of %d)", c.since.AddDate(0, 0, i).Format(dayLayout), 100*share, name, n, total)}
		c.Share = append(c.Share, p)
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.X, p.Y))
	}
	c.SharePoints = strings.Join(pts, " ")
	return c
}

// niceCeil rounds n up to 2, 4, 6 or 10 times a power of ten, so the
// half-way grid line is a whole number.
func niceCeil(n int) int {
	if n <= 2 {
		return 2
	}
	for p := 1; ; p *= 10 {
		for _, m := range []int{2, 4, 6, 10} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// inboundKeys are the keys of counts in chart order.
func inboundKeys(counts []records.DayCount) []string {
	seen := map[string]bool{}
	var keys []string
	for _, d := range counts {
		if !seen[d.Key] {
			seen[d.Key] = true
			keys = append(keys, d.Key)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, ki := inboundRank(keys[i])
		rj, kj := inboundRank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return ki > kj // TLSv1.3 before TLSv1.2 within a rank
	})
	return keys
}
