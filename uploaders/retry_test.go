package uploaders

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestTransient(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("AccessDenied"), false},
		{markTransient(errors.New("SlowDown")), true},
		{fmt.Errorf("upload x: %w", markTransient(errors.New("HTTP 503"))), true},
		{fmt.Errorf("%w: %w", ErrUnreachable, &url.Error{Op: "Head", URL: "http://h/", Err: syscall.ECONNREFUSED}), true},
		{fmt.Errorf("%w: %w", ErrUnreachable, errors.New("HTTP 403 AuthorizationFailure")), false},
		{&url.Error{Op: "Put", URL: "http://h/", Err: syscall.ECONNRESET}, true},
		{fmt.Errorf("write: %w", syscall.EPIPE), true},
		{context.Canceled, false},
		{&url.Error{Op: "Put", URL: "http://h/", Err: context.Canceled}, false},
		{&url.Error{Op: "Put", URL: "https://h/", Err: x509.UnknownAuthorityError{}}, false},
		// *fs.PathError satisfies net.Error: a missing or forbidden file
		// is no connection failure, an NFS time-out is.
		{fmt.Errorf("read x: %w", &fs.PathError{Op: "open", Path: "/b/x", Err: syscall.ENOENT}), false},
		{&fs.PathError{Op: "open", Path: "/b/x", Err: syscall.EACCES}, false},
		{&fs.PathError{Op: "write", Path: "/nfs/x", Err: syscall.ETIMEDOUT}, true},
	} {
		if got := Transient(c.err); got != c.want {
			t.Errorf("Transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestRetryDelayIsCappedWithJitter(t *testing.T) {
	r := Retry{Attempts: 10, Base: 100 * time.Millisecond, Cap: time.Second}
	for n, full := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		full *= time.Millisecond
		if full > time.Second {
			full = time.Second
		}
		seen := map[time.Duration]bool{}
		for range 50 {
			d := r.delay(n + 1)
			if d < full/2 || d > full {
				t.Fatalf("delay(%d) = %s, want within [%s, %s]", n+1, d, full/2, full)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("delay(%d) is always %v: no jitter", n+1, seen)
		}
	}
	if d := r.delay(200); d > time.Second {
		t.Errorf("delay after many attempts = %s, above the cap", d)
	}
}

// flaky is a real file store whose calls fail transiently (or for good)
// the first times they are made.
type flaky struct {
	Store
	transient int32 // calls that fail with a transient error
	permanent bool  // after those, fail for good
	calls     atomic.Int32
}

func (f *flaky) fail() error {
	n := f.calls.Add(1)
	if n <= f.transient {
		return markTransient(fmt.Errorf("HTTP 503 SlowDown (call %d)", n))
	}
	if f.permanent {
		return errors.New("HTTP 403 AccessDenied")
	}
	return nil
}

func (f *flaky) Put(ctx context.Context, key string, data []byte) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, data)
}

func (f *flaky) NewMultipart(ctx context.Context, key string) (Multipart, error) {
	mp, err := f.Store.NewMultipart(ctx, key)
	return &flakyPart{Multipart: mp, f: f}, err
}

type flakyPart struct {
	Multipart
	f *flaky
}

func (p *flakyPart) Upload(ctx context.Context, number int, offset int64, data []byte) error {
	if err := p.f.fail(); err != nil {
		return err
	}
	return p.Multipart.Upload(ctx, number, offset, data)
}

var quick = Retry{Attempts: 4, Base: time.Millisecond, Cap: 4 * time.Millisecond}

func newFlaky(t *testing.T, transient int32, permanent bool) (*flaky, string) {
	dir := t.TempDir()
	fs, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &flaky{Store: fs, transient: transient, permanent: permanent}, dir
}

func TestRetrySendsThePartAgain(t *testing.T) {
	ctx := context.Background()
	f, dir := newFlaky(t, 3, false)
	s := WithRetry(f, quick)
	mp, err := s.NewMultipart(ctx, "o")
	if err != nil {
		t.Fatal(err)
	}
	if err := mp.Upload(ctx, 1, 0, []byte("part one")); err != nil {
		t.Fatalf("3 transient failures within 4 attempts: %v", err)
	}
	if err := mp.Complete(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.calls.Load(); got != 4 {
		t.Errorf("%d calls, want 4", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "o")); string(b) != "part one" {
		t.Errorf("stored %q", b)
	}
}

func TestRetryGivesUp(t *testing.T) {
	ctx := context.Background()
	f, _ := newFlaky(t, 10, false)
	err := WithRetry(f, quick).Put(ctx, "o", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("err = %v", err)
	}
	if got := f.calls.Load(); got != 4 {
		t.Errorf("%d calls, want 4", got)
	}
}

func TestRetryStopsAtAPermanentError(t *testing.T) {
	ctx := context.Background()
	f, _ := newFlaky(t, 1, true)
	err := WithRetry(f, quick).Put(ctx, "o", []byte("x"))
	if err == nil || err.Error() != "HTTP 403 AccessDenied" {
		t.Fatalf("err = %v", err)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("%d calls, want 2 (one transient, one permanent)", got)
	}
}

func TestRetryEndsWithTheRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f, _ := newFlaky(t, 10, false)
	slow := Retry{Attempts: 5, Base: time.Hour, Cap: time.Hour}
	done := make(chan error)
	go func() { done <- WithRetry(f, slow).Put(ctx, "o", []byte("x")) }()
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a cancelled run succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the backoff outlived the run")
	}
}

// lostReplies acts on the file store, then reports the first call of
// each kind lost on the way back, as a dropped connection would after the
// store did its work.
type lostReplies struct {
	*FileStore
	lost map[string]bool
}

func (l *lostReplies) once(kind string) error {
	if l.lost[kind] {
		return nil
	}
	l.lost[kind] = true
	return markTransient(fmt.Errorf("%s: %w", kind, syscall.ECONNRESET))
}

func (l *lostReplies) Create(ctx context.Context, key string, data []byte) error {
	if err := l.FileStore.Create(ctx, key, data); err != nil {
		return err
	}
	return l.once("create")
}

func (l *lostReplies) NewMultipart(ctx context.Context, key string) (Multipart, error) {
	mp, err := l.FileStore.NewMultipart(ctx, key)
	return &lostComplete{Multipart: mp, l: l}, err
}

type lostComplete struct {
	Multipart
	l *lostReplies
}

func (m *lostComplete) Complete(ctx context.Context) error {
	if m.l.lost["complete"] {
		// The upload is gone once completed, as on S3 (NoSuchUpload).
		return errors.New("NoSuchUpload: the upload ID does not exist")
	}
	if err := m.Multipart.Complete(ctx); err != nil {
		return err
	}
	return m.l.once("complete")
}

// A call whose reply is lost after the store acted: the retry of a
// conditional create finds the object, and it is ours; the retry of a
// complete finds the upload gone, and the object whole. Neither is a
// failure, while someone else's object stays a clash.
func TestRetryReconcilesLostReplies(t *testing.T) {
	ctx := context.Background()
	fs, _ := NewFileStore(t.TempDir())
	s := WithRetry(&lostReplies{FileStore: fs, lost: map[string]bool{}}, Retry{Attempts: 3, Base: time.Millisecond, Cap: time.Millisecond})
	if err := s.Create(ctx, "srv/base/ID.lock", []byte("pid=1 nonce=ab")); err != nil {
		t.Fatalf("create whose reply was lost: %v", err)
	}
	if err := s.Create(ctx, "srv/base/ID.lock", []byte("pid=2 nonce=cd")); !errors.Is(err, ErrExists) {
		t.Fatalf("another run's create: %v, want ErrExists", err)
	}
	mp, err := s.NewMultipart(ctx, "srv/base/ID/data.tar")
	if err != nil {
		t.Fatal(err)
	}
	if err := mp.Upload(ctx, 1, 0, []byte("whole")); err != nil {
		t.Fatal(err)
	}
	if err := mp.Complete(ctx); err != nil {
		t.Fatalf("complete whose reply was lost: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(fs.root, "srv/base/ID/data.tar")); string(b) != "whole" {
		t.Errorf("object holds %q", b)
	}
}
