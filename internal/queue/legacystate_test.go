package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStateFileOfAnOlderVersionIsDeliveredAndBounced: a message deferred
// by a version that wrote the status as a string ("last_reply", "tls").
// Inspect shows each recipient's last status as a value read from that
// string (code, enhanced, temporary, remote); after the upgrade the
// pending recipient is delivered and the failed one bounced with its
// status: Status 5.1.1 and Diagnostic-Code: smtp; 550 5.1.1 ….
func TestStateFileOfAnOlderVersionIsDeliveredAndBounced(t *testing.T) {
	dir := t.TempDir()
	// First run: every recipient is deferred, so the message gets its
	// state file and moves to msg/ID.
	defer1 := newRecorder(func(string, int) Outcome { return Outcome{} })
	q, err := Open(dir, defer1, Options{FirstRetry: time.Hour, MaxRetry: time.Hour}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	id := enqueue(t, q, "Subject: old state\r\n\r\nhello\r\n", "x@example.org", "y@example.org")
	wait(t, defer1.done, 2)
	statePath := filepath.Join(dir, "state", id)
	for i := 0; ; i++ { // the state file is written after the outcomes are handed over
		if _, err := os.Stat(filepath.Join(dir, "msg", id)); err == nil {
			break
		}
		if i == 1000 {
			t.Fatal("the deferred message never got to msg/")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	// What the older version wrote: one recipient failed for good (not
	// yet reported), one deferred after a network error.
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	old := `{"rcpts":[` +
		`{"status":"failed","attempts":1,"last_reply":"550 5.1.1 <x@example.org>: no such user","last_try":"` + past + `","remote_mta":"mx.example.org","tls":"TLSv1.3 TLS_AES_128_GCM_SHA256 X25519 verified"},` +
		`{"status":"pending","attempts":1,"last_reply":"4.4.1 no MX host could be reached","last_try":"` + past + `","next_try":"` + past + `"}]}`
	if err := os.WriteFile(statePath, seal([]byte(old)), 0o600); err != nil {
		t.Fatal(err)
	}

	items, err := Inspect(dir)
	if err != nil || len(items) != 1 || len(items[0].State.Rcpts) != 2 {
		t.Fatalf("inspect: %+v %v", items, err)
	}
	x, y := items[0].State.Rcpts[0].Last, items[0].State.Rcpts[1].Last
	if x == nil || x.Code != 550 || x.Enhanced != "5.1.1" || x.Temporary || !x.Remote || x.Text != "<x@example.org>: no such user" || x.Detail != "connection TLSv1.3 TLS_AES_128_GCM_SHA256 X25519 verified" {
		t.Errorf("failed recipient's last status: %+v", x)
	}
	if y == nil || y.Code != 451 || y.Enhanced != "4.4.1" || !y.Temporary || y.Remote || y.Text != "no MX host could be reached" {
		t.Errorf("deferred recipient's last status: %+v", y)
	}

	// After the upgrade: y is delivered, x bounced to the sender.
	rec := newRecorder(func(string, int) Outcome { return Outcome{Delivered: true} })
	q, err = Open(dir, rec, Options{Hostname: "mx.local"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wait(t, rec.done, 2) // y, then the bounce to a@example.org
	waitQueueEmpty(t, dir)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if _, ok := rec.got[id+"/y@example.org"]; !ok || rec.tries["x@example.org"] != 0 {
		t.Errorf("deliveries: %v", rec.tries)
	}
	var dsn string
	for k, v := range rec.got {
		if strings.HasSuffix(k, "/a@example.org") {
			dsn = v
		}
	}
	for _, want := range []string{"Final-Recipient: rfc822; x@example.org", "Status: 5.1.1", "Remote-MTA: dns; mx.example.org",
		"Diagnostic-Code: smtp; 550 5.1.1 <x@example.org>: no such user"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("bounce lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "y@example.org") {
		t.Errorf("bounce names the delivered recipient:\n%s", dsn)
	}
}
