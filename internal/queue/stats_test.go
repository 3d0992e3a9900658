package queue

import (
	"testing"
	"time"
)

func TestIDTime(t *testing.T) {
	now := time.UnixMilli(time.Now().UnixMilli())
	got, ok := IDTime(NewID(now))
	if !ok || !got.Equal(now) {
		t.Errorf("IDTime(NewID(%v)) = %v, %v", now, got, ok)
	}
	if _, ok := IDTime("not-an-id"); ok {
		t.Error("IDTime accepted a bad ID")
	}
}
