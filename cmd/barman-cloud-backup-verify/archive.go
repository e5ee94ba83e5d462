package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// maxManifest bounds the backup_manifest held in memory: about two
// hundred bytes per file, so some millions of files.
const maxManifest = 1 << 30

// counter counts what is read through it, and keeps the first error
// other than io.EOF, so a download failure can be told from damage in
// what was downloaded.
type counter struct {
	r   io.Reader
	n   int64
	err error
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

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

// readVolume streams one volume from the store, decompresses it and reads
// its tar stream to the end: each regular file's size and CRC-32C, the
// end-of-archive blocks, and nothing but zeros after them, then nothing
// after the compressed stream. Damage is recorded; an error is returned
// only when the volume could not be downloaded.
func (v *verifier) readVolume(ctx context.Context, p volume, dl uploaders.Downloads, ahead int) (ObjectReport, error) {
	codec := p.codec.Name()
	if codec == "" {
		codec = "none"
	}
	rep := ObjectReport{Name: p.name, Size: p.size, Codec: codec}
	obj := uploaders.NewObjectReader(ctx, v.opts.Reader, dl, p.key, p.size, v.opts.ChunkSize, ahead)
	defer obj.Close()
	raw := &counter{r: obj}
	// A buffered reader is a ByteReader, so gzip reads no further than its
	// member's end and what follows stays here to be counted.
	buf := bufio.NewReaderSize(raw, 256<<10)
	// damage records what broke the volume, unless the download did.
	damage := func(format string, args ...any) error {
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
	defer dec.Close()
	stream := &counter{r: dec}
	tr := tar.NewReader(stream)
	files := map[string]seenFile{}
	sum := pg.NewCRC()
	var manifestBody, labelBody []byte
	var manifestAt, labelAt int
	// Files read whole before any damage are checked all the same.
	defer func() { v.add(p, files, manifestBody, labelBody, manifestAt, labelAt) }()
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
			return rep, damage("%s after member %q (tar byte %d, near stored byte %d of %d)", describeReadError(err), last, stream.n, raw.n-int64(buf.Buffered()), p.size)
		}
		last = h.Name
		rep.Members++
		pad = 0
		if hasData(h) {
			pad = blockPadding(h.Size)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		path := pg.ManifestPath(p.archive, h.Name)
		sum.Reset()
		var body *bytes.Buffer
		var w io.Writer = sum
		isManifest := p.archive == "data" && path == pg.ManifestName
		isLabel := p.archive == "data" && path == "backup_label"
		if (isManifest && h.Size <= maxManifest) || (isLabel && h.Size <= 1<<20) {
			// The header's size may be damaged: grow as the bytes come.
			body = bytes.NewBuffer(make([]byte, 0, min(h.Size, 16<<20)))
			w = io.MultiWriter(sum, body)
		}
		n, err := io.Copy(w, tr)
		if err != nil {
			return rep, damage("%s in member %q (tar byte %d, near stored byte %d of %d)", describeReadError(err), h.Name, stream.n, raw.n-int64(buf.Buffered()), p.size)
		}
		files[path] = seenFile{size: n, crc: sum.Sum32(), object: p.name, order: [2]int{p.number, index}}
		switch {
		case isManifest && body != nil:
			manifestBody, manifestAt = body.Bytes(), index
		case isLabel && body != nil:
			labelBody, labelAt = body.Bytes(), index
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
