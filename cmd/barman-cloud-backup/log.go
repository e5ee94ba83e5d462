package main

import (
	"io"
	"sync"
)

// logSink is where log lines go: stderr, or the progress display while
// one runs, which prints them above its lines so the two never mix.
type logSink struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// redirect sends the lines to w from now on.
func (s *logSink) redirect(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}
