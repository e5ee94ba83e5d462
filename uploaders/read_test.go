package uploaders

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func fileStoreWith(t *testing.T, objects map[string][]byte) *FileStore {
	t.Helper()
	s, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range objects {
		if err := s.Put(context.Background(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestFileListDirIsOneLevelLikeABucket(t *testing.T) {
	s := fileStoreWith(t, map[string][]byte{
		"p/main/base/20261124T120000/backup.info":                  []byte("status=DONE\n"),
		"p/main/base/20261124T120000/data.tar":                     make([]byte, 1234),
		"p/main/base/20261124T130000/data.tar":                     nil,
		"p/main/base/20261124T130000.lock":                         []byte("x"),
		"p/main/wals/0000000100000000/000000010000000000000001.gz": []byte("w"),
		"p/mainly/base/x":                                          []byte("y"),
		"p/.bcb-parts/0001":                                        []byte("tmp"),
	})
	ctx := context.Background()
	l, err := s.ListDir(ctx, "p/main/base/", "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(l.Prefixes, " "); got != "p/main/base/20261124T120000/ p/main/base/20261124T130000/" {
		t.Errorf("prefixes %s", got)
	}
	if len(l.Objects) != 1 || l.Objects[0] != (ObjectInfo{"p/main/base/20261124T130000.lock", 1}) {
		t.Errorf("objects %v", l.Objects)
	}
	l, _ = s.ListDir(ctx, "p/main/base/20261124T120000/", "/")
	if len(l.Prefixes) != 0 || len(l.Objects) != 2 || l.Objects[1] != (ObjectInfo{"p/main/base/20261124T120000/data.tar", 1234}) {
		t.Errorf("backup folder %+v", l)
	}
	l, _ = s.ListDir(ctx, "p/main", "/")
	if strings.Join(l.Prefixes, " ") != "p/main/ p/mainly/" || len(l.Objects) != 0 {
		t.Errorf("partial name %+v", l)
	}
	l, _ = s.ListDir(ctx, "p/main/", "")
	if len(l.Objects) != 5 || len(l.Prefixes) != 0 {
		t.Errorf("recursive %+v", l)
	}
	l, err = s.ListDir(ctx, "nothing/here/", "/")
	if err != nil || len(l.Objects)+len(l.Prefixes) != 0 {
		t.Errorf("missing folder: %+v, %v", l, err)
	}
	if _, err := s.ReadRange(ctx, "p/none", 0, -1); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing object: %v", err)
	}
}

func TestObjectReaderReadsInOrder(t *testing.T) {
	data := make([]byte, 10<<20+123)
	rand.New(rand.NewSource(1)).Read(data)
	s := fileStoreWith(t, map[string][]byte{"o": data})
	for _, c := range []struct {
		chunk int64
		ahead int
	}{{1 << 20, 1}, {1 << 20, 3}, {3<<20 + 7, 2}, {64 << 20, 2}} {
		t.Run(fmt.Sprintf("chunk=%d,ahead=%d", c.chunk, c.ahead), func(t *testing.T) {
			r := NewObjectReader(context.Background(), s, NewDownloads(2), "o", int64(len(data)), c.chunk, c.ahead)
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, %v", len(got), err)
			}
		})
	}
	// A listing that promised more than the object holds: a truncation.
	r := NewObjectReader(context.Background(), s, NewDownloads(2), "o", int64(len(data))+10, 1<<20, 2)
	if _, err := io.ReadAll(r); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short object: %v", err)
	}
	r.Close()
	// A cancelled run is not a short object: the reader says so, whether
	// the chunk it waits for was asked for or not.
	ctx, cancel := context.WithCancel(context.Background())
	r = NewObjectReader(ctx, s, NewDownloads(1), "o", int64(len(data)), 1<<20, 2)
	io.ReadFull(r, make([]byte, 100))
	cancel()
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Errorf("read after the run was cancelled: %v, want context.Canceled", err)
	}
	r.Close()
	// Closing early stops the downloads.
	r = NewObjectReader(context.Background(), s, NewDownloads(1), "o", int64(len(data)), 1<<20, 4)
	io.ReadFull(r, make([]byte, 100))
	r.Close()
}

// dropping fails the first read of every range halfway, as a connection
// reset does.
type dropping struct {
	Reader
	seen  sync.Map
	drops atomic.Int32
}

func (d *dropping) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := d.Reader.ReadRange(ctx, key, offset, length)
	if _, again := d.seen.LoadOrStore(offset, true); err != nil || again {
		return rc, err
	}
	d.drops.Add(1)
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, length/2), errReader{syscall.ECONNRESET}), rc}, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestChunksAreRetriedWhole(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	s := fileStoreWith(t, map[string][]byte{"o": data})
	d := &dropping{Reader: s}
	r := &retryingReader{Reader: d, r: Retry{Attempts: 3, Base: time.Millisecond, Cap: time.Millisecond}}
	o := NewObjectReader(context.Background(), r, NewDownloads(2), "o", int64(len(data)), 100<<10, 2)
	got, err := io.ReadAll(o)
	o.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(data), err)
	}
	if d.drops.Load() < 2 {
		t.Errorf("no connection was dropped: the test proves nothing")
	}
	// Without retries the drop is an error, not silently short data.
	o = NewObjectReader(context.Background(), &dropping{Reader: s}, NewDownloads(2), "o", int64(len(data)), 100<<10, 2)
	if _, err := io.ReadAll(o); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("dropped connection without retries: %v", err)
	}
	o.Close()
}

func TestReaderOfUnwrapsRetries(t *testing.T) {
	s := fileStoreWith(t, map[string][]byte{"a/b": []byte("hello")})
	r, err := ReaderOf(WithRetry(s, DefaultRetry))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*retryingReader); !ok {
		t.Errorf("ReaderOf(WithRetry(s)) = %T", r)
	}
	b, err := ReadSmall(context.Background(), r, "a/b", 100)
	if err != nil || string(b) != "hello" {
		t.Errorf("ReadSmall = %q, %v", b, err)
	}
	if _, err := ReadSmall(context.Background(), r, "a/b", 3); err == nil {
		t.Error("an object over the limit was read")
	}
	if _, err := ReadSmall(context.Background(), r, "a/c", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
}

// paced answers each range after a pause before its first byte, as a
// distant store does, then hands the bytes out a piece at a time at a
// steady pace.
type paced struct {
	Reader
	pause, perPiece time.Duration
	piece           int
}

func (s paced) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	time.Sleep(s.pause)
	rc, err := s.Reader.ReadRange(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	started := false
	return struct {
		io.Reader
		io.Closer
	}{readerFunc(func(b []byte) (int, error) {
		if started {
			time.Sleep(s.perPiece)
		}
		started = true
		return rc.Read(b[:min(len(b), s.piece)])
	}), rc}, nil
}

// The next range may be asked for once what is left of this one should
// arrive sooner than a request's round trip, judged over one round trip
// at least: never at its first bytes, which come from what the socket
// had buffered.
func TestRangeEndingFreesItsDownloadEarly(t *testing.T) {
	data := bytes.Repeat([]byte("pg"), 4096)
	s := fileStoreWith(t, map[string][]byte{"o": data})
	var endedAt, ended, got int
	// 16 pieces of 512 bytes, 20 ms apart, after 50 ms.
	counting := countingReader{Reader: paced{Reader: s, pause: 50 * time.Millisecond, perPiece: 20 * time.Millisecond, piece: 512}, n: &got}
	var roundTrip atomic.Int64
	buf, err := readChunk(context.Background(), counting, "o", 0, int64(len(data)), nil, &pacing{roundTrip: &roundTrip, ending: func() {
		ended++
		endedAt = got
	}})
	if err != nil || !bytes.Equal(buf, data) {
		t.Fatalf("read %d bytes: %v", len(buf), err)
	}
	if ended != 1 || endedAt <= len(data)/2 || endedAt >= len(data) {
		t.Errorf("ending called %d times, at byte %d of %d: want once, in the second half and before the last byte", ended, endedAt, len(data))
	}
	if rt := time.Duration(roundTrip.Load()); rt < 50*time.Millisecond {
		t.Errorf("shortest first-byte wait recorded: %v, want at least the 50 ms the range waited", rt)
	}
	// A range that waited longer than the shortest wait seen ends by the
	// shortest: here, only at its last bytes.
	roundTrip.Store(int64(time.Nanosecond))
	ended, endedAt, got = 0, 0, 0
	if _, err := readChunk(context.Background(), counting, "o", 0, int64(len(data)), nil, &pacing{roundTrip: &roundTrip, ending: func() {
		ended++
		endedAt = got
	}}); err != nil {
		t.Fatal(err)
	}
	if ended != 0 {
		t.Errorf("a range that waited for a new connection ended early (at byte %d): the next would start on another new one", endedAt)
	}
}

// countingReader counts the bytes its ranges have given.
type countingReader struct {
	Reader
	n *int
}

func (c countingReader) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := c.Reader.ReadRange(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{readerFunc(func(b []byte) (int, error) {
		n, err := rc.Read(b)
		*c.n += n
		return n, err
	}), rc}, nil
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// Every reader gives back what it took of the shared budget, whether it
// read to the end, stopped early or failed; readers sharing the smallest
// budget all finish.
func TestObjectReadersShareTheirBudget(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<15)
	s := fileStoreWith(t, map[string][]byte{"o": data})
	dl := NewDownloads(1)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := NewObjectReader(context.Background(), s, dl, "o", int64(len(data)), 16<<10, dl.Held())
			got, err := io.ReadAll(o)
			o.Close()
			if err == nil && !bytes.Equal(got, data) {
				err = fmt.Errorf("read %d of %d bytes", len(got), len(data))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	early := NewObjectReader(context.Background(), s, dl, "o", int64(len(data)), 16<<10, dl.Held())
	io.ReadFull(early, make([]byte, 100))
	early.Close()
	short := NewObjectReader(context.Background(), s, dl, "o", int64(len(data))+10, 16<<10, dl.Held())
	if _, err := io.ReadAll(short); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("object shorter than its size: %v", err)
	}
	short.Close()
	if len(dl.held) != 0 || len(dl.inflight) != 0 {
		t.Errorf("%d held and %d in-flight tokens not given back", len(dl.held), len(dl.inflight))
	}
}
