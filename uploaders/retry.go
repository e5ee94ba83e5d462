package uploaders

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// transientError marks a failure that may pass if the request is sent
// again: the provider was busy or broken for a moment, or the connection
// dropped. It keeps the message of the error it wraps.
type transientError struct{ error }

func (e transientError) Unwrap() error { return e.error }

// markTransient wraps err so that Transient reports it; nil stays nil.
func markTransient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// transientStatus is true for the HTTP answers every provider documents as
// "try again": timeouts, throttling and server errors, but for the server
// saying it will never do what was asked (501 Not Implemented, 505).
func transientStatus(code int) bool {
	switch code {
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// Transient reports whether err may succeed when tried again: an answer
// marked so by its provider, or a connection that failed or dropped. A
// cancelled run never is, nor a certificate that does not verify.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	// A certificate that does not verify will not verify next time.
	var unknownCA x509.UnknownAuthorityError
	var badCert x509.CertificateInvalidError
	var badHost x509.HostnameError
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &badCert) || errors.As(err, &badHost) || errors.As(err, &tlsErr) {
		return false
	}
	// A file system error satisfies net.Error too (it has Timeout and
	// Temporary methods): only its time-outs, on a network mount, pass.
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Timeout() || errors.Is(err, syscall.ETIMEDOUT)
	}
	var te transientError
	var ne net.Error
	return errors.As(err, &te) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// Retry is how transient failures are tried again: up to Attempts tries in
// all, waiting between them an exponential delay from Base, capped at Cap,
// of which a random half is jitter so that workers that failed together do
// not come back together. A call the store leaves without an answer for
// --read-timeout is tried at most three times (timeoutAttempts).
type Retry struct {
	Attempts  int
	Base, Cap time.Duration
	// Quiet logs the retries at debug level, for a check whose failure is
	// reported in one line of its own.
	Quiet bool
}

// DefaultRetry rides out about half a minute of trouble (a restarting
// server, a burst of throttling) before a run gives up.
var DefaultRetry = Retry{Attempts: 8, Base: 500 * time.Millisecond, Cap: 8 * time.Second}

// delay is the wait before attempt n+1, n counting from 1.
func (r Retry) delay(n int) time.Duration {
	d := r.Cap
	if n < 31 && r.Base<<(n-1) < r.Cap {
		d = r.Base << (n - 1)
	}
	return d/2 + rand.N(d/2+1)
}

// timeoutAttempts caps the attempts of a call the store leaves without an
// answer for --read-timeout, as botocore's standard retry mode does
// (3): a store silent that long three times in a row is down, not busy,
// and with the default timeout eight attempts would hold the run for
// ten minutes before it fails.
const timeoutAttempts = 3

// do runs op until it succeeds, fails for good, or the attempts run out.
// The data op sends is in memory, so a retry sends the same bytes.
func (r Retry) do(ctx context.Context, what string, op func() error) error {
	timeouts := 0
	for n := 1; ; n++ {
		err := op()
		var rt *ReadTimeoutError
		timedOut := errors.As(err, &rt) && ctx.Err() == nil
		if timedOut {
			timeouts++
		}
		if err == nil || !Transient(err) || n >= r.Attempts || timeouts >= timeoutAttempts || ctx.Err() != nil {
			if timedOut {
				return &timeoutFailure{what: what, attempts: n, rt: rt, err: err}
			}
			if err != nil && n > 1 && Transient(err) {
				return fmt.Errorf("%w (gave up after %d attempts)", err, n)
			}
			return err
		}
		d := r.delay(n)
		level := zerolog.WarnLevel
		if r.Quiet {
			level = zerolog.DebugLevel
		}
		zerolog.Ctx(ctx).WithLevel(level).Msgf("%s failed, retrying in %s (attempt %d of %d): %v",
			what, d.Round(time.Millisecond), n+1, r.Attempts, err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
	}
}

// timeoutFailure is a call that ended on --read-timeout: one line, the
// same for every provider, naming the call and the timeout, and no URL
// (an Azure SAS signature rides in one). The provider's error stays
// reachable, for errors.Is and errors.As: a check that timed out is
// still ErrUnreachable.
type timeoutFailure struct {
	what     string
	attempts int
	rt       *ReadTimeoutError
	err      error
}

func (e *timeoutFailure) Error() string {
	if e.attempts > 1 {
		return fmt.Sprintf("%s: %v (gave up after %d attempts)", e.what, e.rt, e.attempts)
	}
	return fmt.Sprintf("%s: %v", e.what, e.rt)
}

func (e *timeoutFailure) Unwrap() error { return e.err }

// WithRetry returns s with every operation retried by r, but for Test,
// which gives up after three tries as boto3's check does for Barman: an
// unreachable cloud must be reported in seconds.
//
// A transient failure may hide a success: the store acted, and its answer
// was lost. Most calls may simply be sent again: Put, Get, Delete, List,
// a part's Upload (the same part number replaces the part) and Abort. The
// others are handled here, the same way for every provider:
//   - Create is conditional: a retry finds the object there (ErrExists).
//     If an earlier attempt may have created it, the object is read back,
//     and holding our bytes, it is ours.
//   - Complete may find the upload gone once it has succeeded (S3's
//     NoSuchUpload): after a retry, Multipart.Completed says whether the
//     object is stored whole.
//   - NewMultipart may have started an upload whose ID was lost: a
//     provider whose start is a request cleans that up itself when the
//     next attempt succeeds (S3.NewMultipart).
func WithRetry(s Store, r Retry) Store {
	if r.Attempts < 1 {
		r.Attempts = 1
	}
	return &retrying{Store: s, r: r}
}

type retrying struct {
	Store
	r Retry
}

func (s *retrying) Test(ctx context.Context) error {
	r := Retry{Attempts: min(s.r.Attempts, 3), Base: s.r.Base / 2, Cap: time.Second, Quiet: true}
	return r.do(ctx, "connectivity check", func() error { return s.Store.Test(ctx) })
}

func (s *retrying) Put(ctx context.Context, key string, data []byte) error {
	return s.r.do(ctx, "upload of "+key, func() error { return s.Store.Put(ctx, key, data) })
}

func (s *retrying) Create(ctx context.Context, key string, data []byte) error {
	attempts := 0
	err := s.r.do(ctx, "creation of "+key, func() error {
		attempts++
		return s.Store.Create(ctx, key, data)
	})
	if errors.Is(err, ErrExists) && attempts > 1 {
		got, gerr := s.Get(ctx, key)
		if gerr == nil && bytes.Equal(got, data) {
			return nil // our own earlier attempt created it
		}
		zerolog.Ctx(ctx).Debug().Msgf("%s exists and is not ours (%d bytes, read error: %v)", key, len(got), gerr)
	}
	return err
}

func (s *retrying) Get(ctx context.Context, key string) ([]byte, error) {
	var b []byte
	err := s.r.do(ctx, "reading of "+key, func() (err error) {
		b, err = s.Store.Get(ctx, key)
		return err
	})
	return b, err
}

func (s *retrying) Delete(ctx context.Context, key string) error {
	return s.r.do(ctx, "deletion of "+key, func() error { return s.Store.Delete(ctx, key) })
}

func (s *retrying) List(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	err := s.r.do(ctx, "listing of "+prefix, func() (err error) {
		keys, err = s.Store.List(ctx, prefix)
		return err
	})
	return keys, err
}

func (s *retrying) NewMultipart(ctx context.Context, key string) (Multipart, error) {
	var mp Multipart
	err := s.r.do(ctx, "start of "+key, func() (err error) {
		mp, err = s.Store.NewMultipart(ctx, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &retryingMultipart{Multipart: mp, key: key, r: s.r}, nil
}

type retryingMultipart struct {
	Multipart
	key string
	r   Retry
}

func (m *retryingMultipart) Upload(ctx context.Context, p Part) error {
	return m.r.do(ctx, fmt.Sprintf("upload of %s part %d", m.key, p.Number), func() error {
		return m.Multipart.Upload(ctx, p)
	})
}

func (m *retryingMultipart) Complete(ctx context.Context) error {
	attempts := 0
	err := m.r.do(ctx, "completion of "+m.key, func() error {
		attempts++
		return m.Multipart.Complete(ctx)
	})
	if err != nil && attempts > 1 && ctx.Err() == nil {
		if done, cerr := m.Multipart.Completed(ctx); cerr == nil && done {
			return nil // an earlier attempt completed it
		}
	}
	return err
}

func (m *retryingMultipart) Abort(ctx context.Context) error {
	return m.r.do(ctx, "abort of "+m.key, func() error { return m.Multipart.Abort(ctx) })
}
