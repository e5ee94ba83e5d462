package uploaders

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ObjectInfo is one object of a listing.
type ObjectInfo struct {
	Key string
	// Size is in bytes.
	Size int64
}

// Listing is what ListDir returns. With a delimiter, keys that hold it
// again after the prefix are folded into Prefixes, each ending with the
// delimiter, as S3's ListObjectsV2 returns CommonPrefixes; Barman's
// catalogue lists backups that way (cloud.py, CloudBackupCatalog).
type Listing struct {
	// Objects are sorted by key.
	Objects []ObjectInfo
	// Prefixes are sorted.
	Prefixes []string
}

// ErrNotFound is an object that is not there.
var ErrNotFound = errors.New("object not found")

// Reader reads back what a Store wrote: the backup's own check of the
// catalogue, and barman-cloud-backup-verify. Every Store of this package
// implements it; ReaderOf finds it.
type Reader interface {
	// ListDir lists the objects whose keys start with prefix, with their
	// sizes; delimiter "/" lists one level as Barman's catalogue does,
	// "" every key below prefix.
	ListDir(ctx context.Context, prefix, delimiter string) (Listing, error)
	// ReadRange streams length bytes of the object from offset (length
	// < 0: to its end). A missing object is ErrNotFound.
	ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
}

// ReaderOf returns the Reader behind s, with s's retries if s retries
// (WithRetry), or an error if s cannot read.
func ReaderOf(s Store) (Reader, error) {
	var r Retry
	retries := false
	if rs, ok := s.(*retrying); ok {
		s, r, retries = rs.Store, rs.r, true
	}
	rd, ok := s.(Reader)
	if !ok {
		return nil, fmt.Errorf("%s cannot be read back", s)
	}
	if retries {
		return &retryingReader{Reader: rd, r: r}, nil
	}
	return rd, nil
}

// retryingReader retries listings, and whole range reads: a range is
// read to its end into memory by ReadChunk, so a retry after a dropped
// connection starts the range again.
type retryingReader struct {
	Reader
	r Retry
}

func (s *retryingReader) ListDir(ctx context.Context, prefix, delimiter string) (Listing, error) {
	var l Listing
	err := s.r.do(ctx, "listing of "+prefix, func() (err error) {
		l, err = s.Reader.ListDir(ctx, prefix, delimiter)
		return err
	})
	return l, err
}

func (s *retryingReader) ReadRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := s.r.do(ctx, "download of "+key, func() (err error) {
		rc, err = s.Reader.ReadRange(ctx, key, offset, length)
		return err
	})
	return rc, err
}

// retries is the Retry a reader applies to a whole chunk; one attempt
// for a reader that does not retry.
func retries(r Reader) Retry {
	if rr, ok := r.(*retryingReader); ok {
		return rr.r
	}
	return Retry{Attempts: 1}
}

// ReadChunk reads length bytes of key from offset into buf (grown as
// needed) and returns them; the whole read is tried again on a transient
// failure, a connection dropped halfway included. An object shorter than
// offset+length gives io.ErrUnexpectedEOF.
func ReadChunk(ctx context.Context, r Reader, key string, offset, length int64, buf []byte) ([]byte, error) {
	return readChunk(ctx, r, key, offset, length, buf, nil)
}

// pacing lets a range say when it is ending (see readChunk).
type pacing struct {
	// ending is called once, when what is left of the range should
	// arrive sooner than a request's round trip.
	ending func()
	// roundTrip is the shortest wait for a first byte seen so far, in
	// nanoseconds, shared by the run's ranges.
	roundTrip *atomic.Int64
}

// readChunk is ReadChunk that calls pace.ending once what is left of the
// range should arrive sooner than the shortest first-byte wait seen: the
// next range's request then goes out while this one ends, so a request's
// round trip is not a pause in a connection's transfer (at 40 MB/s and
// 40 ms of round trip, a 4 MiB range would otherwise leave a connection
// idle a quarter of the time). The shortest wait, not this range's own:
// a range that waited for a new connection's handshakes would otherwise
// end at once and start the next on yet another new connection.
func readChunk(ctx context.Context, r Reader, key string, offset, length int64, buf []byte, pace *pacing) ([]byte, error) {
	var ending func()
	if pace != nil {
		ending = pace.ending
	}
	if cap(buf) < int(length) {
		buf = make([]byte, length)
	}
	buf = buf[:length]
	if length == 0 {
		return buf, nil
	}
	base := r
	if rr, ok := r.(*retryingReader); ok {
		base = rr.Reader
	}
	err := retries(r).do(ctx, fmt.Sprintf("download of %s at %d", key, offset), func() error {
		asked := time.Now()
		rc, err := base.ReadRange(ctx, key, offset, length)
		if err != nil {
			return err
		}
		defer rc.Close()
		var first time.Time
		var wait time.Duration
		for got := 0; got < len(buf); {
			n, err := rc.Read(buf[got:min(len(buf), got+readPiece)])
			if n > 0 && first.IsZero() {
				first = time.Now()
				wait = first.Sub(asked)
				if pace != nil {
					wait = pace.shortest(wait)
				}
			}
			got += n
			// The pace is judged over one round trip at least: the first
			// reads come from what the socket had buffered, and would
			// make any range look nearly done.
			if since := time.Since(first); ending != nil && n > 0 && got < len(buf) && since >= wait {
				left := time.Duration(float64(len(buf)-got) / float64(got) * float64(since))
				if left <= wait {
					ending()
					ending = nil
				}
			}
			if err == io.EOF && got < len(buf) {
				err = io.ErrUnexpectedEOF
			}
			if err != nil && (err != io.EOF || got < len(buf)) {
				return fmt.Errorf("download of %s at %d: %w", key, offset, err)
			}
		}
		return nil
	})
	return buf, err
}

// shortest records wait and returns the shortest wait seen.
func (p *pacing) shortest(wait time.Duration) time.Duration {
	for {
		old := p.roundTrip.Load()
		if old != 0 && time.Duration(old) <= wait {
			return time.Duration(old)
		}
		if p.roundTrip.CompareAndSwap(old, int64(wait)) {
			return wait
		}
	}
}

// readPiece is how much of a range is read at a time, to watch its pace.
const readPiece = 256 << 10

// ReadSmall reads a whole object of at most limit bytes (backup.info, a
// manifest): ErrNotFound when it is missing.
func ReadSmall(ctx context.Context, r Reader, key string, limit int64) ([]byte, error) {
	var out []byte
	base := r
	if rr, ok := r.(*retryingReader); ok {
		base = rr.Reader
	}
	err := retries(r).do(ctx, "download of "+key, func() error {
		rc, err := base.ReadRange(ctx, key, 0, -1)
		if err != nil {
			return err
		}
		defer rc.Close()
		out, err = io.ReadAll(io.LimitReader(rc, limit+1))
		if err != nil {
			return fmt.Errorf("download of %s: %w", key, err)
		}
		if int64(len(out)) > limit {
			return fmt.Errorf("%s is larger than %d bytes", key, limit)
		}
		return nil
	})
	return out, err
}

// Downloads is the budget shared by every ObjectReader of a run: n range
// reads in flight (-J), and 2n+2 chunks held in memory, in flight or
// downloaded and not yet read. A chunk that arrived before its turn then
// does not keep the next download from starting, and memory stays
// bounded by the held chunks, however many objects are read at once.
type Downloads struct {
	inflight chan struct{}
	held     chan struct{}
	// free keeps the buffers of chunks read, for the next ones: the
	// chunks' memory is allocated once, not collected and allocated again.
	free chan []byte
	// roundTrip is the shortest wait for a range's first byte seen, in
	// nanoseconds (0 until one is seen): what the next request on a
	// connection kept open will wait.
	roundTrip atomic.Int64
}

// NewDownloads allows n range reads at once.
func NewDownloads(n int) *Downloads {
	n = max(1, n)
	return &Downloads{inflight: make(chan struct{}, n), held: make(chan struct{}, 2*n+2), free: make(chan []byte, 2*n+2)}
}

// Held is how many chunks the budget lets be in memory at once.
func (d *Downloads) Held() int { return cap(d.held) }

// ObjectReader streams an object of known size in order while the chunks
// after the one being read download in parallel: ahead chunks of
// chunkSize bytes at most are fetched or held, within the Downloads'
// budget, so memory is bounded whatever the object's size. Each chunk is retried on its own.
type ObjectReader struct {
	cancel  context.CancelFunc
	dl      *Downloads
	results chan chan chunkResult
	done    chan error
	// fetched is true once done's error was taken.
	fetched bool
	cur     []byte
	// holding is true while cur's chunk holds a token of dl.held.
	holding bool
	pos     int
	err     error
	once    sync.Once
}

type chunkResult struct {
	data []byte
	err  error
}

// NewObjectReader starts reading key, size bytes long. Close it.
func NewObjectReader(ctx context.Context, r Reader, dl *Downloads, key string, size, chunkSize int64, ahead int) *ObjectReader {
	ctx, cancel := context.WithCancel(ctx)
	ahead = max(1, ahead)
	o := &ObjectReader{cancel: cancel, dl: dl, results: make(chan chan chunkResult, ahead-1),
		done: make(chan error, 1)}
	go func() { o.done <- o.fetch(ctx, r, key, size, chunkSize) }()
	return o
}

// fetch hands out one result channel per chunk, in order, and fills each
// from a goroutine of its own. Each chunk first takes a held token, in
// order, so the chunk the reader waits for always has one; the channel
// of channels bounds how far one reader runs ahead. It closes results
// when every chunk is asked for.
func (o *ObjectReader) fetch(ctx context.Context, r Reader, key string, size, chunkSize int64) error {
	defer close(o.results)
	var wg sync.WaitGroup
	defer wg.Wait()
	for off := int64(0); off < size; off += chunkSize {
		select {
		case o.dl.held <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		res := make(chan chunkResult, 1)
		select {
		case o.results <- res:
		case <-ctx.Done():
			<-o.dl.held
			return ctx.Err()
		}
		n := min(chunkSize, size-off)
		var buf []byte
		select {
		case buf = <-o.dl.free:
		default:
		}
		wg.Add(1)
		go func(off int64, buf []byte) {
			defer wg.Done()
			select {
			case o.dl.inflight <- struct{}{}:
			case <-ctx.Done():
				res <- chunkResult{err: ctx.Err()}
				return
			}
			var once sync.Once
			release := func() { once.Do(func() { <-o.dl.inflight }) }
			// Released as the range ends rather than when it has ended
			// (readChunk): a retry after that runs beside the budget.
			data, err := readChunk(ctx, r, key, off, n, buf, &pacing{ending: release, roundTrip: &o.dl.roundTrip})
			release()
			res <- chunkResult{data: data, err: err}
		}(off, buf)
	}
	return nil
}

// drop gives back the current chunk's buffer and its held token.
func (o *ObjectReader) drop() {
	if o.cur != nil {
		select {
		case o.dl.free <- o.cur[:0]:
		default:
		}
		o.cur, o.pos = nil, 0
	}
	if o.holding {
		<-o.dl.held
		o.holding = false
	}
}

// Read reads the object's bytes in order.
func (o *ObjectReader) Read(p []byte) (int, error) {
	for o.pos == len(o.cur) {
		if o.err != nil {
			return 0, o.err
		}
		o.drop()
		res, ok := <-o.results
		if !ok {
			// fetch stops handing out chunks at the object's end, or
			// when the run is cancelled: then the object is not short,
			// the run was stopped.
			o.err, o.fetched = <-o.done, true
			if o.err == nil {
				o.err = io.EOF
			}
			continue
		}
		c := <-res
		o.holding = true
		if c.err != nil {
			o.err = c.err
			continue
		}
		o.cur, o.pos = c.data, 0
	}
	n := copy(p, o.cur[o.pos:])
	o.pos += n
	return n, nil
}

// Close stops the downloads still running, waits for them and gives
// back every token the object's chunks hold.
func (o *ObjectReader) Close() error {
	o.once.Do(func() {
		o.cancel()
		o.drop()
		for res := range o.results {
			<-res
			<-o.dl.held
		}
		if !o.fetched {
			<-o.done
		}
	})
	return nil
}

// listLevel folds keys (sorted or not) into a Listing for prefix and
// delimiter, as an object store's listing does; stores that walk a tree
// use it.
func listLevel(objects []ObjectInfo, prefix, delimiter string) Listing {
	var l Listing
	seen := map[string]bool{}
	for _, o := range objects {
		rest, ok := strings.CutPrefix(o.Key, prefix)
		if !ok {
			continue
		}
		if delimiter != "" {
			if i := strings.Index(rest, delimiter); i >= 0 {
				p := prefix + rest[:i+len(delimiter)]
				if !seen[p] {
					seen[p] = true
					l.Prefixes = append(l.Prefixes, p)
				}
				continue
			}
		}
		l.Objects = append(l.Objects, o)
	}
	sort.Slice(l.Objects, func(i, j int) bool { return l.Objects[i].Key < l.Objects[j].Key })
	sort.Strings(l.Prefixes)
	return l
}

func sortedPrefixes(p []string) []string {
	sort.Strings(p)
	return p
}
