package queue

import (
	"context"
	"sync"
	"time"
)

// Finishing a message whose deliveries are not yet durable (see
// Outcome.Durable) is the completer's job, so that one fsync of a
// Maildir's new/ serves a batch of messages instead of one or two each.
// A finished message stays in msg/ (and in inFlight, so no worker takes
// it again) until its deliveries are durable; only then is it removed.
// A crash before that leaves it queued: the retry after the restart
// finds each copy that did reach the disk by its name and stores
// nothing twice, and stores again what did not.

// completion is a finished message waiting for its deliveries to be
// durable.
type completion struct {
	id      string
	durable []func() error
}

const (
	// completeLinger is how long the completer gathers finished messages
	// before it syncs. Nobody waits for it — the message was acknowledged
	// and its copies are in place — so it costs no latency; it only keeps
	// a finished message's queue file a little longer.
	completeLinger = 50 * time.Millisecond
	completeBatch  = 256
)

// completeLater hands a finished message to the completer. It reports
// false when the queue is stopping and the completer may be gone: the
// message then stays queued, to be finished after the restart.
func (q *Queue) completeLater(ctx context.Context, id string, durable []func() error) bool {
	select {
	case q.completing <- completion{id: id, durable: durable}:
		return true
	case <-ctx.Done():
		return false
	}
}

// completer finishes messages in batches until stop is closed, then
// finishes what was handed to it and returns.
func (q *Queue) completer(stop <-chan struct{}) {
	for {
		var batch []completion
		select {
		case c := <-q.completing:
			batch = append(batch, c)
		case <-stop:
			for {
				select {
				case c := <-q.completing:
					batch = append(batch, c)
				default:
					q.finish(batch)
					return
				}
			}
		}
		linger := time.NewTimer(completeLinger)
	gather:
		for len(batch) < completeBatch {
			select {
			case c := <-q.completing:
				batch = append(batch, c)
			case <-linger.C:
				break gather
			case <-stop:
				break gather
			}
		}
		linger.Stop()
		q.finish(batch)
	}
}

// finish waits for each message's deliveries to be durable — the first
// wait on a directory starts the fsync that serves the rest of the batch
// — and removes the message; a message whose deliveries could not be
// made durable is tried again.
func (q *Queue) finish(batch []completion) {
	// In parallel: a delivery's Durable may go through stages (Maildir
	// files made durable by one syncfs, then published into new/, then
	// new/ fsynced), and each stage is shared by the whole batch only if
	// every message reaches it at about the same time.
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for i, c := range batch {
		wg.Go(func() { errs[i] = waitDurable(c.durable) })
	}
	wg.Wait()
	for i, c := range batch {
		err := errs[i]
		if err == nil {
			q.mu.Lock()
			delete(q.recovered, c.id)
			q.mu.Unlock()
			if err := q.remove(c.id); err != nil {
				q.log.Error("queue: remove finished message", "id", c.id, "err", err)
			} else {
				q.log.Info("queue: message done", "id", c.id)
			}
		}
		q.release(c.id)
		if err != nil {
			q.retryUndurable(c.id, err)
		}
	}
}

// waitDurable waits for every delivery to be durable and returns the
// first error.
func waitDurable(durable []func() error) error {
	var first error
	for _, d := range durable {
		if err := d(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// retryUndurable schedules a message again whose delivery could not be
// made durable (an fsync failed): it may be lost, so it is tried again
// as after a crash (a copy that is there is found by name).
func (q *Queue) retryUndurable(id string, err error) {
	q.log.Error("queue: delivery could not be made durable; trying again", "id", id, "err", err)
	q.mu.Lock()
	q.recovered[id] = true
	q.mu.Unlock()
	q.schedule(id, time.Now().Add(q.opts.FirstRetry))
}
