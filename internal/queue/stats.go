package queue

import (
	"strconv"
	"time"
)

// IDTime is when the message with this ID arrived (the ID's
// milliseconds; NewID); false for an ID of another form.
func IDTime(id string) (time.Time, bool) {
	if !validID(id) {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(id[:11], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// Stats is how many messages are queued and how long the oldest has
// waited (zero for an empty queue), for metrics.
func (q *Queue) Stats(now time.Time) (n int, oldest time.Duration, err error) {
	ids, err := q.IDs()
	if err != nil {
		return 0, 0, err
	}
	for _, id := range ids {
		if t, ok := IDTime(id); ok && now.Sub(t) > oldest {
			oldest = now.Sub(t)
		}
	}
	return len(ids), oldest, nil
}
