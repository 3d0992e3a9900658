package queue

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A message is moved aside before its state: if the second step does
// not happen (here: the state's rename cannot even be reached because
// the message's fails), msg/ID never stays behind without its state,
// which would make delivered recipients pending again.
func TestSetAsideNeverLeavesTheMessageWithoutItsState(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	id := enqueueFile(t, q, "body\r\n", "done@example.net", "later@example.net")
	if err := q.writeState(id, State{Rcpts: []RcptState{{Status: Delivered}, {Status: Pending}}}); err != nil {
		t.Fatal(err)
	}
	// hold/ID as a non-empty directory: renaming the message onto it fails.
	if err := os.MkdirAll(filepath.Join(dir, HoldDir, id, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := q.setAside(id, HoldDir, "test"); err == nil {
		t.Fatal("setAside succeeded onto a directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "msg", id)); err != nil {
		t.Fatalf("msg/%s: %v", id, err)
	}
	st, err := q.readState(id, 2)
	if err != nil || st.Rcpts[0].Status != Delivered {
		t.Fatalf("state of msg/%s after a failed setAside = %+v, %v; want the first recipient still delivered", id, st, err)
	}
}

// A crash between the two renames of setAside leaves the state file in
// state/ while its message is already in hold/ (or corrupt/): Open moves
// the state after the message instead of deleting it as an orphan.
func TestOpenKeepsTheStateOfAMessageSetAsideBeforeACrash(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(dir, newRecorder(nil), Options{}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	id := enqueueFile(t, q, "body\r\n", "done@example.net")
	if err := q.writeState(id, State{Rcpts: []RcptState{{Status: Delivered}}}); err != nil {
		t.Fatal(err)
	}
	orphan := enqueueFile(t, q, "body\r\n", "x@example.net")
	if err := q.writeState(orphan, State{Rcpts: []RcptState{{Status: Pending}}}); err != nil {
		t.Fatal(err)
	}
	// The crash: msg/ID is in hold/, its state is not; orphan's message
	// was removed (a finished message) and its state was not.
	if err := os.MkdirAll(filepath.Join(dir, HoldDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "msg", id), filepath.Join(dir, HoldDir, id)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "msg", orphan)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, newRecorder(nil), Options{}, quiet()); err != nil {
		t.Fatal(err)
	}
	st, err := readStateFile(filepath.Join(dir, HoldDir, id+".state"), 1)
	if err != nil || st.Rcpts[0].Status != Delivered {
		t.Fatalf("hold/%s.state = %+v, %v; want the state kept beside the message", id, st, err)
	}
	for _, p := range []string{filepath.Join(dir, "state", id), filepath.Join(dir, "state", orphan)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there (err %v)", p, err)
		}
	}
}

// TestInspectOneUnknownID: `tlsmail queue show` of an ID the queue does
// not hold says so with the ID (it printed the path of the file it tried
// before), and the error is still ErrNotExist.
func TestInspectOneUnknownID(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, newRecorder(nil), Options{}, quiet()); err != nil {
		t.Fatal(err)
	}
	const id = "1A25268718A52183CEC5"
	_, err := InspectOne(dir, id)
	if err == nil || err.Error() != "queue: no message "+id+" (file does not exist)" || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("InspectOne of an unknown ID: %v", err)
	}
}
