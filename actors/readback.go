package actors

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// maxManifest bounds the backup_manifest held in memory: about two
// hundred bytes per file, so some millions of files.
const maxManifest = 1 << 30

// heldLimits are the files of the data archive whose content the check
// keeps, with the most it keeps of each, in bytes.
var heldLimits = map[string]int64{pg.ManifestName: maxManifest, "backup_label": 1 << 20, "global/pg_control": 64 << 10}

// storedVolume is one archive volume of a stored backup, as its folder
// lists it.
type storedVolume struct {
	name    string
	key     string
	archive string
	number  int
	size    int64
	codec   tarball.Codec
}

// counter counts what is read through it, and keeps the first error
// other than io.EOF, so a download failure can be told from damage in
// what was downloaded. total, when set, counts for the whole run.
type counter struct {
	r     io.Reader
	n     int64
	err   error
	total *atomic.Int64
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.total != nil {
		c.total.Add(int64(n))
	}
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// storedAt formats as the stored byte a volume's decoder has reached,
// when the message is made: after damage has stopped the decoder.
type storedAt struct {
	raw *counter
	buf *bufio.Reader
}

func (s storedAt) String() string { return strconv.FormatInt(s.raw.n-int64(s.buf.Buffered()), 10) }

// blockPadding is the zeros that follow n bytes of member data to the
// next 512-byte block.
func blockPadding(n int64) int64 { return -n & 511 }

// hasData tells whether members of the type carry data in the stream.
func hasData(h *tar.Header) bool {
	switch h.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return false
	}
	return true
}

// memberSink is what a restore does with the members of a volume as they
// stream by; the verifier has none. Its errors are the restore's own
// (a full disk), never damage in the backup.
type memberSink interface {
	// member is called for every member of the volume in order, order
	// being (volume number, member index). For a regular file it
	// returns where its bytes go (nil: nowhere), closed once the bytes
	// were all written, whether the volume goes on or not.
	member(ctx context.Context, p storedVolume, h *tar.Header, order [2]int) (io.WriteCloser, error)
}

// sinkError is a failure of the sink, told apart from a failure to read
// the volume.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// sinkWriter tags the sink's write errors.
type sinkWriter struct{ w io.Writer }

func (s sinkWriter) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	if err != nil {
		err = &sinkError{err}
	}
	return n, err
}

// copyBufferSize is the copy buffer of one volume's reader: large writes
// keep the restore's system calls few.
const copyBufferSize = 1 << 20

// readVolume streams one volume from the store, decompresses it and reads
// its tar stream to the end: each regular file's size and CRC-32C, the
// end-of-archive blocks, and nothing but zeros after them, then nothing
// after the compressed stream; sink, if any, receives the members. Damage
// is recorded; an error is returned only when the volume could not be
// downloaded or the sink failed.
func (v *verifier) readVolume(ctx context.Context, p storedVolume, dl *uploaders.Downloads, ahead int, sink memberSink) (ObjectReport, error) {
	codec := p.codec.Name()
	if codec == "" {
		codec = "none"
	}
	rep := ObjectReport{Name: p.name, Size: p.size, Codec: codec}
	obj := uploaders.NewObjectReader(ctx, v.opts.Reader, dl, p.key, p.size, v.opts.ChunkSize, ahead)
	defer obj.Close()
	raw := &counter{r: obj, total: v.downloaded()}
	// A buffered reader is a ByteReader, so gzip reads no further than its
	// member's end and what follows stays here to be counted.
	buf := bufio.NewReaderSize(raw, 256<<10)
	var dec io.ReadCloser
	defer func() {
		if dec != nil {
			dec.Close()
		}
	}()
	// damage records what broke the volume, unless the download did. It
	// stops the decoder first, so that one reading its input from
	// goroutines of its own would be done with raw and buf, which the
	// record reads (ours read in the caller's goroutine today).
	damage := func(format string, args ...any) error {
		if dec != nil {
			dec.Close()
			dec = nil
		}
		if raw.err != nil {
			switch {
			case errors.Is(raw.err, io.ErrUnexpectedEOF):
				v.fail(p, "shorter than the %d bytes its listing gives: it changed while it was read", p.size)
				return nil
			case errors.Is(raw.err, uploaders.ErrNotFound):
				v.fail(p, "disappeared while it was read")
				return nil
			}
			return fmt.Errorf("reading %s: %w", p.name, raw.err)
		}
		v.fail(p, format, args...)
		return nil
	}
	dec, err := p.codec.NewDecoder(buf)
	if err != nil {
		return rep, damage("not a %s stream: %v", codec, err)
	}
	near := storedAt{raw, buf}
	stream := &counter{r: dec, total: v.extracted()}
	tr := tar.NewReader(stream)
	files := map[string]seenFile{}
	sum := pg.NewCRC()
	copyBuf := make([]byte, copyBufferSize)
	held := map[string]heldBody{}
	// Files read whole before any damage are checked all the same.
	defer func() { v.add(files, held) }()
	var pad int64
	last := "(none)"
	for index := 1; ; index++ {
		before := stream.n
		h, err := tr.Next()
		if err == io.EOF {
			// Go's reader also stops at a clean end of stream, with or
			// without the two zero blocks: count them.
			if got := stream.n - before; got != pad+1024 {
				return rep, damage("truncated: the tar stream ends after member %q without the two zero blocks that close an archive", last)
			}
			break
		}
		if err != nil {
			return rep, damage("%s after member %q (tar byte %d, near stored byte %s of %d)", describeReadError(err), last, stream.n, near, p.size)
		}
		last = h.Name
		rep.Members++
		pad = 0
		if hasData(h) {
			pad = blockPadding(h.Size)
		}
		var out io.WriteCloser
		if sink != nil {
			if out, err = sink.member(ctx, p, h, [2]int{p.number, index}); err != nil {
				var unsafe *unsafeMemberError
				if errors.As(err, &unsafe) {
					return rep, damage("%v", err)
				}
				return rep, err
			}
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		path := pg.ManifestPath(p.archive, h.Name)
		sum.Reset()
		var body *bytes.Buffer
		var w io.Writer = sum
		if limit, ok := heldLimits[path]; ok && p.archive == "data" && h.Size <= limit {
			// The header's size may be damaged: grow as the bytes come.
			body = bytes.NewBuffer(make([]byte, 0, min(h.Size, 16<<20)))
			w = io.MultiWriter(sum, body)
		}
		var pages *pg.PageCheck
		if segment, ok := pg.RelationSegment(path); ok && v.pages {
			pages = &pg.PageCheck{Start: v.pageStart, Segment: segment}
			w = io.MultiWriter(w, pages)
		}
		if out != nil {
			w = io.MultiWriter(w, sinkWriter{out})
		}
		n, err := io.CopyBuffer(w, tr, copyBuf)
		if out != nil {
			if cerr := out.Close(); cerr != nil && err == nil {
				err = &sinkError{cerr}
			}
		}
		var se *sinkError
		if errors.As(err, &se) {
			return rep, se.err
		}
		if err != nil {
			return rep, damage("%s in member %q (tar byte %d, near stored byte %s of %d)", describeReadError(err), h.Name, stream.n, near, p.size)
		}
		f := seenFile{size: n, crc: sum.Sum32(), object: p.name, order: [2]int{p.number, index}}
		if pages != nil {
			pages.End()
			f.pagesChecked = pages.Checked
			if pages.Failed > 0 {
				f.pages = pages
			}
		}
		files[path] = f
		if body != nil {
			held[path] = heldBody{body: body.Bytes(), order: [2]int{p.number, index}}
		}
	}
	rep.TarBytes = stream.n
	// Python's tarfile pads an archive with zeros to a 10 KiB record; any
	// other byte after the end is not volume of the archive.
	zeros, err := readZeros(stream)
	rep.TarBytes = stream.n
	if err != nil {
		return rep, damage("%s after the end of the tar archive", describeReadError(err))
	}
	if !zeros {
		return rep, damage("data after the end of the tar archive, which a restore ignores")
	}
	extra, err := io.Copy(io.Discard, buf)
	if err != nil {
		return rep, damage("%s", describeReadError(err))
	}
	if extra > 0 {
		return rep, damage("%d bytes after the end of the compressed stream, which a restore ignores", extra)
	}
	rep.OK = true
	return rep, nil
}

// readZeros reads r to its end and tells whether it held only zeros.
func readZeros(r io.Reader) (bool, error) {
	b := make([]byte, 32<<10)
	zeros := true
	for {
		n, err := r.Read(b)
		for _, c := range b[:n] {
			if c != 0 {
				zeros = false
			}
		}
		if err == io.EOF {
			return zeros, nil
		}
		if err != nil {
			return zeros, err
		}
	}
}

// describeReadError words a read failure for a report line.
func describeReadError(err error) string {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated: the stream ends before the archive does"
	case errors.Is(err, tar.ErrHeader):
		return "corrupt tar header"
	}
	return "corrupt: " + err.Error()
}
