package listen

import "testing"

func TestSessionsRefuseAddsOnceClosing(t *testing.T) {
	var s Sessions[int]
	if !s.Add(1) || !s.Add(2) || s.Len() != 2 {
		t.Fatal("Add before Close")
	}
	var stopped []int
	s.Close(func(x int) { stopped = append(stopped, x) })
	if len(stopped) != 2 {
		t.Errorf("Close stopped %v, want both sessions", stopped)
	}
	if s.Add(3) {
		t.Error("Add after Close succeeded: a session would start during shutdown")
	}
	s.Remove(1)
	s.Remove(2)
	if s.Len() != 0 {
		t.Errorf("Len after Remove = %d", s.Len())
	}
}
