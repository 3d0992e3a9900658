package server

import (
	"time"

	"github.com/tlsmail/tlsmail/internal/metrics"
	"github.com/tlsmail/tlsmail/internal/queue"
)

// queueMetrics exports the queue's size and the age of its oldest
// message, read at each scrape.
func queueMetrics(reg *metrics.Registry, q *queue.Queue) {
	reg.Gauge("tlsmail_queue_messages", "messages in the queue", func() float64 {
		n, _, _ := q.Stats(time.Now())
		return float64(n)
	})
	reg.Gauge("tlsmail_queue_oldest_message_age_seconds", "how long the oldest queued message has waited (0: the queue is empty)",
		func() float64 {
			_, o, _ := q.Stats(time.Now())
			return o.Seconds()
		})
}
