package metrics

import (
	"sort"
	"sync"
	"sync/atomic"
)

// maxLabels bounds a CounterVec's labels, so that a set of label values
// is an array: a map key that needs no allocation to look up.
const maxLabels = 8

type labelKey [maxLabels]string

// Counter is one counter: an atomic add, nothing else. A nil Counter
// counts nothing.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() {
	if c != nil {
		c.v.Add(1)
	}
}

// Value is the count so far.
func (c *Counter) Value() uint64 {
	if c == nil {
		return 0
	}
	return c.v.Load()
}

// CounterVec is a counter with labels for the hot paths: With finds the
// Counter of a set of label values under a read lock without allocating
// (a new set allocates once), and a caller may keep the Counter. A nil
// CounterVec counts nothing.
type CounterVec struct {
	labels []string
	mu     sync.RWMutex
	m      map[labelKey]*Counter
}

// CounterVec registers a labelled counter (at most 8 labels) and returns
// it; a nil Registry returns nil.
func (r *Registry) CounterVec(name, help string, labels ...string) *CounterVec {
	if r == nil {
		return nil
	}
	if len(labels) > maxLabels {
		panic("metrics: too many labels for " + name)
	}
	v := &CounterVec{labels: labels, m: map[labelKey]*Counter{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.help[name], r.kind[name], r.vecs[name] = help, "counter", v
	return v
}

// With returns the Counter of these label values (in the order of the
// labels given to CounterVec).
func (v *CounterVec) With(values ...string) *Counter {
	if v == nil {
		return nil
	}
	var k labelKey
	copy(k[:], values)
	v.mu.RLock()
	c := v.m[k]
	v.mu.RUnlock()
	if c != nil {
		return c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c = v.m[k]; c == nil {
		c = &Counter{}
		v.m[k] = c
	}
	return c
}

// Inc adds one to the counter of these label values.
func (v *CounterVec) Inc(values ...string) { v.With(values...).Inc() }

// samples renders the counters, sorted by their labels.
func (v *CounterVec) samples() []Sample {
	v.mu.RLock()
	out := make([]Sample, 0, len(v.m))
	for k, c := range v.m {
		kv := make([]string, 0, 2*len(v.labels))
		for i, l := range v.labels {
			kv = append(kv, l, k[i])
		}
		out = append(out, Sample{Labels: kv, Value: float64(c.Value())})
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return renderLabels(out[i].Labels) < renderLabels(out[j].Labels) })
	return out
}

// CounterFunc registers a counter read at every scrape (e.g. the
// process's CPU seconds).
func (r *Registry) CounterFunc(name, help string, f func() float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.help[name], r.kind[name], r.gauges[name] = help, "counter", f
}
