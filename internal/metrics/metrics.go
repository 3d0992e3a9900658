// Package metrics keeps tlsmail's counters and serves them in the
// Prometheus text exposition format. It is written by hand on purpose:
// a handful of labelled counters does not justify client_golang's
// dependency tree (protobuf and friends), and the format is a page of
// text (prometheus.io/docs/instrumenting/exposition_formats).
package metrics

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Registry holds counters (name + labels -> value) and gauge callbacks.
type Registry struct {
	mu     sync.Mutex
	help   map[string]string
	kind   map[string]string
	values map[string]map[string]float64 // name -> rendered labels -> value
	gauges map[string]func() float64
	sets   map[string]func() []Sample // labelled gauges (gaugeset.go)
	vecs   map[string]*CounterVec     // labelled atomic counters (vec.go)
}

// New makes an empty registry.
func New() *Registry {
	return &Registry{help: map[string]string{}, kind: map[string]string{}, values: map[string]map[string]float64{}, gauges: map[string]func() float64{}, sets: map[string]func() []Sample{}, vecs: map[string]*CounterVec{}}
}

// Describe sets a metric's help text and type ("counter" or "gauge").
func (r *Registry) Describe(name, kind, help string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.help[name], r.kind[name] = help, kind
}

// Inc adds one to a counter; labels are name, value pairs. It renders
// the labels and takes the registry's lock: for rare events only; a
// per-session or per-message counter is a CounterVec (vec.go).
func (r *Registry) Inc(name string, labels ...string) {
	if r == nil {
		return
	}
	key := renderLabels(labels)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.values[name] == nil {
		r.values[name] = map[string]float64{}
	}
	r.values[name][key]++
}

// Gauge registers a function read at every scrape.
func (r *Registry) Gauge(name, help string, f func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.help[name], r.kind[name], r.gauges[name] = help, "gauge", f
}

// labelEscaper escapes a label value (backslash, quote, newline).
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func renderLabels(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		v := labelEscaper.Replace(kv[i+1])
		parts = append(parts, fmt.Sprintf(`%s="%s"`, kv[i], v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Write renders every metric, sorted, in the text format.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	names := map[string]bool{}
	for n := range r.values {
		names[n] = true
	}
	for n := range r.gauges {
		names[n] = true
	}
	for n := range r.sets {
		names[n] = true
	}
	for n := range r.vecs {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	type line struct {
		name, labels string
		v            float64
	}
	var out []line
	for _, n := range sorted {
		if f, ok := r.gauges[n]; ok {
			out = append(out, line{n, "", f()})
			continue
		}
		if v, ok := r.vecs[n]; ok {
			for _, s := range v.samples() {
				out = append(out, line{n, renderLabels(s.Labels), s.Value})
			}
			continue
		}
		if f, ok := r.sets[n]; ok {
			for _, s := range f() {
				out = append(out, line{n, renderLabels(s.Labels), s.Value})
			}
			continue
		}
		keys := make([]string, 0, len(r.values[n]))
		for k := range r.values[n] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, line{n, k, r.values[n][k]})
		}
	}
	help, kind := make(map[string]string, len(r.help)), make(map[string]string, len(r.kind))
	for k, v := range r.help {
		help[k] = v
	}
	for k, v := range r.kind {
		kind[k] = v
	}
	r.mu.Unlock()
	last := ""
	for _, l := range out {
		if l.name != last {
			if h := help[l.name]; h != "" {
				fmt.Fprintf(w, "# HELP %s %s\n", l.name, h)
			}
			if k := kind[l.name]; k != "" {
				fmt.Fprintf(w, "# TYPE %s %s\n", l.name, k)
			}
			last = l.name
		}
		fmt.Fprintf(w, "%s%s %s\n", l.name, l.labels, strconv.FormatFloat(l.v, 'g', -1, 64))
	}
}

// Handler serves /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		r.Write(w)
	})
}
