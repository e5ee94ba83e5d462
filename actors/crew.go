package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// How actors talk, and how a run decides it succeeded:
//
//   - An actor owns the channels it sends on and closes them when it
//     returns, whether it succeeded or not (a defer), so that no reader
//     waits on a dead writer.
//   - A closed channel therefore says nothing about success. A stream ends
//     with an explicit message (an end job, the stop's label) that the
//     writer sends only once it has produced everything; a signal channel
//     (walked, copied, plan.ready) is closed on the success path alone,
//     never in a defer.
//   - A reader that finds a stream closed without its end returns
//     errCutShort: the writer failed, and its own error is the cause.
//   - Every blocking point also selects on the context, so the first
//     failure, cancelling it, ends every actor within one step.
//   - Run writes backup.info DONE only after every actor has returned nil,
//     with the context alive, and the stored backup reads back.

// errCutShort is a stream closed before its end message: the actor that
// wrote it failed (or the run was cancelled). It is a consequence, never
// the cause of a failure.
var errCutShort = errors.New("stream cut short")

// cutShort says which stream ended early.
func cutShort(stream string) error {
	return fmt.Errorf("%w: %s closed before its end", errCutShort, stream)
}

// errPartFailed is an object whose completion was refused because one of
// its parts failed: the worker that sent the part reports the cause.
var errPartFailed = errors.New("a part of the object failed")

// crew runs a backup's actors as one errgroup: the first to fail cancels
// the context the others select on. What it reports is the failure that
// started it, not what followed from it: a stream cut short, a part
// refused, or a context the crew itself cancelled.
type crew struct {
	g      *errgroup.Group
	ctx    context.Context
	parent context.Context

	mu    sync.Mutex
	cause error
	first error
}

func newCrew(parent context.Context) (*crew, context.Context) {
	g, ctx := errgroup.WithContext(parent)
	return &crew{g: g, ctx: ctx, parent: parent}, ctx
}

// Go starts one actor.
func (c *crew) Go(actor func() error) {
	c.g.Go(func() error {
		err := actor()
		if err != nil {
			c.note(err)
		}
		return err
	})
}

func (c *crew) note(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == nil {
		c.first = err
	}
	if c.cause == nil && !c.consequence(err) {
		c.cause = err
	}
}

// consequence tells whether err only follows from another failure.
func (c *crew) consequence(err error) bool {
	if errors.Is(err, errCutShort) || errors.Is(err, errPartFailed) {
		return true
	}
	// A context error is the cause only when the run itself was cancelled
	// (an interrupt, a deadline): then nothing else failed first.
	return (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && c.parent.Err() == nil
}

// Wait waits for every actor and returns the cause of the failure, nil
// when every actor returned nil.
func (c *crew) Wait() error {
	err := c.g.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		return nil
	case c.parent.Err() != nil && c.cause == nil:
		return c.parent.Err()
	case c.cause != nil:
		return c.cause
	}
	return c.first
}
