package metrics

// Sample is one value of a labelled gauge; Labels are name, value pairs.
type Sample struct {
	Labels []string
	Value  float64
}

// GaugeSet registers a labelled gauge whose samples f returns at every
// scrape (e.g. one per certificate in use).
func (r *Registry) GaugeSet(name, help string, f func() []Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.help[name], r.kind[name], r.sets[name] = help, "gauge", f
}
