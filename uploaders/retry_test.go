package uploaders

import (
	"bytes"
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

	"github.com/rs/zerolog"
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

func (p *flakyPart) Upload(ctx context.Context, part Part) error {
	if err := p.f.fail(); err != nil {
		return err
	}
	return p.Multipart.Upload(ctx, part)
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
	if err := mp.Upload(ctx, Part{Number: 1, Data: []byte("part one")}); err != nil {
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
// store did its work, whatever the store answered. Each create's data is a
// kind of its own, so that every run's first create loses its reply.
type lostReplies struct {
	*FileStore
	lost    map[string]bool
	creates map[string]int // calls to Create, by data
}

func (l *lostReplies) once(kind string) error {
	if l.lost[kind] {
		return nil
	}
	l.lost[kind] = true
	return markTransient(fmt.Errorf("%s: %w", kind, syscall.ECONNRESET))
}

func (l *lostReplies) Create(ctx context.Context, key string, data []byte) error {
	l.creates[string(data)]++
	err := l.FileStore.Create(ctx, key, data)
	if lost := l.once("create " + string(data)); lost != nil {
		return lost
	}
	return err
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
// failure, while someone else's object stays a clash, even when our own
// create's reply was lost too and the retry has to tell the two apart.
func TestRetryReconcilesLostReplies(t *testing.T) {
	ctx := context.Background()
	fs, _ := NewFileStore(t.TempDir())
	l := &lostReplies{FileStore: fs, lost: map[string]bool{}, creates: map[string]int{}}
	s := WithRetry(l, Retry{Attempts: 3, Base: time.Millisecond, Cap: time.Millisecond})
	ours, theirs := "pid=1 nonce=ab", "pid=2 nonce=cd"
	if err := s.Create(ctx, "srv/base/ID.lock", []byte(ours)); err != nil {
		t.Fatalf("create whose reply was lost: %v", err)
	}
	if err := s.Create(ctx, "srv/base/ID.lock", []byte(theirs)); !errors.Is(err, ErrExists) {
		t.Fatalf("another run's create whose reply was lost: %v, want ErrExists", err)
	}
	// Only a create tried again reads the object back: both were.
	if l.creates[ours] != 2 || l.creates[theirs] != 2 {
		t.Errorf("creates tried %v, want each twice", l.creates)
	}
	if b, _ := os.ReadFile(filepath.Join(fs.root, "srv/base/ID.lock")); string(b) != ours {
		t.Errorf("lock holds %q, want the first run's", b)
	}
	mp, err := s.NewMultipart(ctx, "srv/base/ID/data.tar")
	if err != nil {
		t.Fatal(err)
	}
	if err := mp.Upload(ctx, Part{Number: 1, Data: []byte("whole")}); err != nil {
		t.Fatal(err)
	}
	if err := mp.Complete(ctx); err != nil {
		t.Fatalf("complete whose reply was lost: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(fs.root, "srv/base/ID/data.tar")); string(b) != "whole" {
		t.Errorf("object holds %q", b)
	}
}

// A create that failed and was tried again finds the object there: it is
// ours only if it holds our bytes. If it cannot be read back, it is not
// known to be ours, and stays a clash.
func TestRetryCreateReadsTheObjectBack(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		stored  string // what the object holds when the retry finds it
		readErr error
		want    error
	}{
		{"ours", "mine", nil, nil},
		{"theirs", "someone else's", nil, ErrExists},
		{"unreadable", "mine", errors.New("HTTP 403 AccessDenied"), ErrExists},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &racedCreate{stored: []byte(c.stored), readErr: c.readErr}
			err := WithRetry(f, quick).Create(ctx, "srv/base/ID.lock", []byte("mine"))
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("create: %v, want %v", err, c.want)
			}
			if f.creates != 2 || f.gets == 0 {
				t.Errorf("%d creates and %d reads, want 2 creates and the object read back", f.creates, f.gets)
			}
		})
	}
}

// racedCreate is a store whose first create fails transiently, after
// which the object is found there holding stored.
type racedCreate struct {
	Store
	stored        []byte
	readErr       error
	creates, gets int
}

func (r *racedCreate) Create(ctx context.Context, key string, data []byte) error {
	r.creates++
	if r.creates == 1 {
		return markTransient(fmt.Errorf("create %s: %w", key, syscall.ECONNRESET))
	}
	return fmt.Errorf("create %s: %w", key, ErrExists)
}

func (r *racedCreate) Get(ctx context.Context, key string) ([]byte, error) {
	r.gets++
	if r.readErr != nil {
		return nil, r.readErr
	}
	return r.stored, nil
}

// failingTest is a store whose connectivity check always fails
// transiently, as an unreachable endpoint does.
type failingTest struct {
	Store
	calls atomic.Int32
}

func (f *failingTest) Test(ctx context.Context) error {
	f.calls.Add(1)
	return fmt.Errorf("%w: %w", ErrUnreachable, &url.Error{Op: "Head", URL: "http://h/", Err: syscall.ECONNREFUSED})
}

// The connectivity check gives up after three tries, waiting at most a
// second between them, whatever the run's retries are: an unreachable
// cloud is reported in seconds. Its retries are not warnings: the failure
// is reported once, by the caller.
func TestConnectivityCheckTriesThreeTimesQuickly(t *testing.T) {
	var warnings bytes.Buffer
	ctx := zerolog.New(&warnings).Level(zerolog.WarnLevel).WithContext(context.Background())
	// Many quick attempts: the count tells the check's own schedule from
	// the run's.
	f := &failingTest{}
	err := WithRetry(f, Retry{Attempts: 8, Base: time.Millisecond, Cap: time.Millisecond}).Test(ctx)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("err = %v", err)
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("%d tries, want 3", n)
	}
	// Hour-long waits between the run's attempts: the check's own are
	// capped at a second, so it ends long before the deadline, which only
	// a check waiting as the run does would reach.
	f = &failingTest{}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = WithRetry(f, Retry{Attempts: 8, Base: time.Hour, Cap: time.Hour}).Test(ctx)
	if ctx.Err() != nil || !errors.Is(err, ErrUnreachable) {
		t.Errorf("err = %v (deadline: %v): the check waited as long as the run would", err, ctx.Err())
	}
	if n := f.calls.Load(); n != 3 {
		t.Errorf("%d tries, want 3", n)
	}
	if warnings.Len() > 0 {
		t.Errorf("the check's retries were logged as warnings:\n%s", warnings.String())
	}
}

// silentStore is a store that never answers within --read-timeout.
type silentStore struct {
	Store
	calls atomic.Int32
}

func (s *silentStore) timeout() error {
	s.calls.Add(1)
	return &url.Error{Op: "Put", URL: "https://acct.blob.core.windows.net/c/o?sig=SECRET",
		Err: &ReadTimeoutError{ReadTimeout: 2 * time.Second, Err: errors.New("net/http: timeout awaiting response headers")}}
}

func (s *silentStore) Put(context.Context, string, []byte) error { return s.timeout() }

func (s *silentStore) Test(context.Context) error {
	return fmt.Errorf("%w: %w", ErrUnreachable, s.timeout())
}

// A store silent for --read-timeout is tried three times, not as often as
// a busy one, and the failure names the timeout in one line, with no
// request URL (where a SAS signature may ride); a check that timed out
// is still an unreachable store (exit 2).
func TestRetryGivesUpOnReadTimeoutAfterThree(t *testing.T) {
	ctx := context.Background()
	fs, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := &silentStore{Store: fs}
	err = WithRetry(s, Retry{Attempts: 8, Base: time.Millisecond, Cap: time.Millisecond}).Put(ctx, "o", []byte("x"))
	want := "upload of o: no answer from the store within --read-timeout (2 s) (gave up after 3 attempts)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	var rt *ReadTimeoutError
	if !errors.As(err, &rt) || !Transient(err) {
		t.Errorf("the provider's error is lost: %#v", err)
	}
	if n := s.calls.Load(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	s.calls.Store(0)
	err = WithRetry(s, quick).Test(ctx)
	if !errors.Is(err, ErrUnreachable) || !strings.HasPrefix(err.Error(), "connectivity check: no answer from the store within --read-timeout (2 s)") ||
		strings.Contains(err.Error(), "SECRET") {
		t.Errorf("check: err = %v", err)
	}
	// One attempt, one line all the same.
	s.calls.Store(0)
	err = WithRetry(s, Retry{Attempts: 1}).Put(ctx, "o", []byte("x"))
	if want := "upload of o: no answer from the store within --read-timeout (2 s)"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}
