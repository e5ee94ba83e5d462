package uploaders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// ReadTimeoutError is a store that let --read-timeout pass: no answer to
// a request, no progress reading one, or no byte of an answer's body. Every
// provider's transport returns it, so the user reads one message whatever
// the store; it is transient (a net.Error that timed out).
type ReadTimeoutError struct {
	// ReadTimeout is --read-timeout.
	ReadTimeout time.Duration
	// Err is what the transport saw, for errors.Is and errors.As; its
	// message is not shown, as it may hold a request URL.
	Err error
}

func (e *ReadTimeoutError) Error() string {
	return fmt.Sprintf("no answer from the store within --read-timeout (%g s)", e.ReadTimeout.Seconds())
}

// Unwrap gives the transport's own error.
func (e *ReadTimeoutError) Unwrap() error { return e.Err }

// Timeout is true: the error is a net.Error that timed out.
func (e *ReadTimeoutError) Timeout() bool { return true }

// Temporary is true, as for every time-out.
func (e *ReadTimeoutError) Temporary() bool { return true }

// newTransport is the HTTP transport of every cloud client, to be used
// through withReadTimeout. Besides the wait for an answer (timeout,
// Barman's --read-timeout), it bounds each write: a server that stops
// reading a part mid-way would otherwise hold a worker forever, as nothing
// else times out a request body.
func newTransport(timeout time.Duration, jobs int) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Both HTTP/1 and HTTP/2 honour it, per request, from the moment the
	// request is written: exactly the wait --read-timeout bounds.
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = max(jobs, 2) * 2
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &writeDeadlineConn{Conn: c, timeout: timeout}, nil
	}
	return tr
}

// writeDeadlineConn fails a write that makes no progress for timeout.
type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = &ReadTimeoutError{ReadTimeout: c.timeout, Err: err}
	}
	return n, err
}

// withReadTimeout puts --read-timeout on the whole exchange over tr:
// the answer's headers (tr's ResponseHeaderTimeout), each write (tr's
// connections), and each read of the answer's body, which http.Transport
// never bounds: a List or a download whose body stalls would otherwise
// hang for ever. Each of them fails with a *ReadTimeoutError. Only the
// time a Read waits counts: a caller slow to read is not the store's
// fault.
func withReadTimeout(tr *http.Transport, timeout time.Duration) http.RoundTripper {
	return &readTimeoutTransport{tr: tr, timeout: timeout}
}

type readTimeoutTransport struct {
	tr      *http.Transport
	timeout time.Duration
}

// errBodyTimeout is the cause a body read is cancelled with.
var errBodyTimeout = errors.New("body read timed out")

func (t *readTimeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// Cancelling this context is the one way to end a body read in
	// progress, over HTTP/1 and HTTP/2 alike.
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := t.tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel(nil)
		if req.Context().Err() == nil && t.timedOut(err) {
			var rt *ReadTimeoutError
			if errors.As(err, &rt) {
				return nil, rt
			}
			return nil, &ReadTimeoutError{ReadTimeout: t.timeout, Err: err}
		}
		return nil, err
	}
	resp.Body = &timeoutBody{rc: resp.Body, ctx: ctx, cancel: cancel, timeout: t.timeout}
	return resp, nil
}

// timedOut tells our time-outs from the others (dialing, the TLS
// handshake, the caller's own deadline): a write that made no progress,
// or headers that did not come. The latter is told by its message, as
// net/http's error types for it are not exported.
func (t *readTimeoutTransport) timedOut(err error) bool {
	var rt *ReadTimeoutError
	var ne net.Error
	return errors.As(err, &rt) ||
		errors.As(err, &ne) && ne.Timeout() && strings.Contains(err.Error(), "timeout awaiting response headers")
}

// CloseIdleConnections lets clients that look for it (http.Client) close
// the pool's idle connections.
func (t *readTimeoutTransport) CloseIdleConnections() { t.tr.CloseIdleConnections() }

// timeoutBody is an answer's body whose every Read must return within
// timeout.
type timeoutBody struct {
	rc      io.ReadCloser
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timeout time.Duration

	mu    sync.Mutex
	timer *time.Timer
}

func (b *timeoutBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.timer == nil {
		b.timer = time.AfterFunc(b.timeout, func() { b.cancel(errBodyTimeout) })
	} else {
		b.timer.Reset(b.timeout)
	}
	timer := b.timer
	b.mu.Unlock()
	n, err := b.rc.Read(p)
	timer.Stop()
	if err != nil && errors.Is(context.Cause(b.ctx), errBodyTimeout) {
		// Not the read's own error: it is the cancellation, which would
		// read as a run the user interrupted.
		err = &ReadTimeoutError{ReadTimeout: b.timeout, Err: errBodyTimeout}
	}
	return n, err
}

func (b *timeoutBody) Close() error {
	err := b.rc.Close()
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	b.cancel(nil)
	return err
}
