package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"time"

	"github.com/tlsmail/tlsmail/internal/dstatus"
	"github.com/tlsmail/tlsmail/internal/policy"
	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/smtpclient"
	"github.com/tlsmail/tlsmail/tlsinfo"
)

// Deliveries to the same destination (the connection cache key) share
// connections: a delivery that finds laneConns connections busy with the
// key waits, and the next batch on one of them carries it, pipelined with
// the others (smtpclient.SendBatch: BDAT where offered), so concurrent
// messages to one host cost about one round trip per batch rather than
// some per message.
const (
	laneConns = 4  // connections busy at once per destination
	laneBatch = 32 // messages per batch
)

// lanes groups the deliveries waiting for each destination.
type lanes struct {
	mu sync.Mutex
	m  map[string]*lane
}

type lane struct {
	active  int    // senders running
	pending []*job // deliveries waiting for a sender
}

// job is one message's delivery over a connection to the destination.
type job struct {
	env        *queue.Envelope
	idx        []int
	cenv       smtpclient.Envelope
	data       []byte
	addr       string
	tg         target
	plan       policy.Plan
	clientCert *tls.Certificate
	attrs      []any
	retried    bool // already retried after a stale cached connection

	// What the attempt got, for the record store (records.go).
	connected bool                 // a connection carried the transaction
	st        tlsinfo.State        // its TLS state
	local     string               // our address on it
	tlsErr    *smtpclient.TLSError // the TLS the plan requires could not be had
	pq        string               // classical groups only: pqRetried or pqRemembered (pqretry.go)

	outs []queue.Outcome
	done bool // the outcomes are final for this attempt
	fin  chan struct{}
}

func (j *job) finish(outs []queue.Outcome, done bool) {
	j.outs, j.done = outs, done
	close(j.fin)
}

// submit queues j for key. The caller becomes a sender when fewer than
// laneConns are running; it returns true then and must call serve.
func (ls *lanes) submit(key string, j *job) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]*lane{}
	}
	l := ls.m[key]
	if l == nil {
		l = &lane{}
		ls.m[key] = l
	}
	l.pending = append(l.pending, j)
	if l.active < laneConns {
		l.active++
		return true
	}
	return false
}

// take hands a sender up to n waiting jobs (retries first); with none
// left the sender stops and nil is returned.
func (ls *lanes) take(key string, retry []*job, n int) []*job {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[key]
	k := min(len(l.pending), n-len(retry))
	jobs := append(retry, l.pending[:k]...)
	l.pending = l.pending[k:]
	if len(jobs) == 0 {
		l.active--
		if l.active == 0 {
			delete(ls.m, key)
		}
	}
	return jobs
}

// deliverJob sends j over a connection for key, batched with whatever
// else waits for the same destination, and returns its outcomes.
func (d *Deliverer) deliverJob(ctx context.Context, key string, j *job) ([]queue.Outcome, bool) {
	if d.lanes.submit(key, j) {
		d.serve(ctx, key)
	}
	<-j.fin
	return j.outs, j.done
}

// serve sends batches of the jobs waiting for key until none is left.
func (d *Deliverer) serve(ctx context.Context, key string) {
	var retry []*job
	for {
		jobs := d.lanes.take(key, retry, laneBatch)
		if len(jobs) == 0 {
			return
		}
		retry = d.sendJobs(ctx, key, jobs)
	}
}

// sendJobs sends one batch and finishes its jobs, except those to be
// retried on a fresh connection, which it returns.
func (d *Deliverer) sendJobs(ctx context.Context, key string, jobs []*job) []*job {
	j0 := jobs[0]
	c := d.cache.get(key)
	reused := c != nil
	pq := ""
	if reused && d.classical.has(j0.addr, time.Now()) {
		pq = pqRemembered
	}
	if c == nil {
		var err error
		c, pq, err = d.dial(ctx, j0.addr, j0.tg, j0.plan, j0.clientCert)
		if err != nil {
			var te *smtpclient.TLSError
			errors.As(err, &te)
			for _, j := range jobs {
				attrs := j.attrs
				if te != nil {
					j.tlsErr, j.local = te, te.Local
					if te.ClassicalRetry {
						attrs = append(append([]any{}, attrs...), "pq_fallback", "retry_failed")
					}
				}
				j.finish(d.dialFailure(j.env, j.idx, j.tg, j.plan, err, attrs), false)
			}
			return nil
		}
	}
	for _, j := range jobs {
		j.pq = pq
	}
	batch := make([]smtpclient.Outgoing, len(jobs))
	for k, j := range jobs {
		batch[k] = smtpclient.Outgoing{Envelope: j.cenv, Data: j.data}
	}
	results, err := c.SendBatch(ctx, batch)
	reusable := err == nil
	// A cached connection that fails before any reply went stale while
	// idle: the batch goes again on a fresh one. Once replies came, the
	// failure is real and the messages without an outcome are deferred.
	stale := err != nil && reused
	for _, r := range results {
		stale = stale && r.Err == err
	}
	var retry []*job
	for k, j := range jobs {
		r := results[k]
		if stale && !j.retried {
			j.retried = true
			retry = append(retry, j) // no outcome yet: once more, fresh
			continue
		}
		var re *smtpclient.ReplyError
		if errors.As(r.Err, &re) && re.Code() == 421 {
			reusable = false // the server is closing the connection
		}
		outs, done := d.outcomes(c, j, reused, r)
		j.finish(outs, done)
	}
	if reusable {
		d.cache.put(key, c, d.ConnIdle)
	} else if err != nil {
		c.Close()
	} else {
		_ = c.Quit()
	}
	return retry
}

// outcomes turns one message's result into per-recipient outcomes; done
// says whether they are final for this attempt (otherwise the next host
// is tried).
func (d *Deliverer) outcomes(c *smtpclient.Client, j *job, reused bool, res *smtpclient.Result) ([]queue.Outcome, bool) {
	st := c.TLS()
	j.connected, j.st, j.local = true, st, c.LocalIP()
	attrs := append(append([]any{}, j.attrs...), st.LogArgs()...)
	if reused {
		attrs = append(attrs, "connection", "reused")
	}
	if j.pq != "" {
		attrs = append(attrs, "pq_fallback", j.pq)
	}
	if j.plan.Effective == policy.May && !st.TLS {
		attrs = append(attrs, "note", "sent in plaintext: the server did not offer STARTTLS (level may)")
	}
	outs, done := resultOutcomes(j.env, j.idx, res, attrs)
	for i := range outs {
		outs[i].RemoteMTA = j.tg.host
		outs[i].Status.TLS = &st
	}
	return outs, done
}

// resultOutcomes maps a transaction's result to per-recipient outcomes:
// each recipient's status is the server's reply value that decided it.
func resultOutcomes(env *queue.Envelope, idx []int, res *smtpclient.Result, attrs []any) ([]queue.Outcome, bool) {
	if err := res.Err; err != nil {
		var re *smtpclient.ReplyError
		var te *smtpclient.TLSError
		switch {
		case errors.As(err, &te) && env.RequireTLS:
			return all(idx, queue.Outcome{Status: dstatus.Perm("5.7.30", "REQUIRETLS support required: "+te.Reason), Attrs: attrs}), true
		case errors.As(err, &re) && re.Stage != "RCPT":
			return all(idx, queue.Outcome{Status: dstatus.FromReply(re.Reply), Attrs: attrs}), true
		case errors.As(err, &re):
			// Every recipient refused: the per-recipient replies below say how.
		default:
			return all(idx, queue.Outcome{Status: dstatus.Temp("4.4.2", "connection lost during the transaction").WithDetail(err.Error()), Attrs: attrs}), false
		}
	}
	out := make([]queue.Outcome, len(idx))
	for k, i := range idx {
		r := res.Recipients[k]
		o := queue.Outcome{Rcpt: i, Attrs: attrs}
		switch {
		case r.Accepted && res.Accepted > 0 && res.Reply != nil:
			o.Delivered, o.Status = true, dstatus.FromReply(res.Reply)
		case r.Reply != nil:
			o.Status = dstatus.FromReply(r.Reply)
		default:
			o.Status = dstatus.Temp("4.4.2", "no reply to RCPT")
		}
		out[k] = o
	}
	return out, true
}
