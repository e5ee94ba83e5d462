package actors

import (
	"sync"
	"time"
)

// EventKind is a step of a run whose order the backup's consistency
// depends on.
type EventKind int

const (
	// EventFileRead is a file read to its end into an archive (Archive,
	// Name and Size say which).
	EventFileRead EventKind = iota
	// EventStopRequested is the controller asking the source to stop the
	// backup (pg_backup_stop on a live server).
	EventStopRequested
	// EventStopped is the source's answer to that request.
	EventStopped
)

// Event is one step, in the order the engine took it.
type Event struct {
	Kind    EventKind
	Archive string
	// Name is the tar member; Size the bytes read into it.
	Name string
	Size int64
	Time time.Time
}

// Journal records a run's steps for tests and for anyone who must show
// that no file was read after the stop was requested (PostgreSQL's rule
// for a low-level base backup: "Continuous Archiving", "Making a Base
// Backup Using the Low Level API"). It holds one event per file, so it is
// meant for tests and audits, not for every production run; -vv logs the
// same steps.
type Journal struct {
	mu     sync.Mutex
	events []Event
}

func (j *Journal) record(e Event) {
	if j == nil {
		return
	}
	e.Time = time.Now()
	j.mu.Lock()
	j.events = append(j.events, e)
	j.mu.Unlock()
}

// Events returns a copy of the events so far, in order.
func (j *Journal) Events() []Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Event(nil), j.events...)
}
