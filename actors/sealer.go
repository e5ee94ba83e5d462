package actors

import (
	"archive/tar"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
)

// volume is one object of an archive: data.tar.gz, data_0001.tar.gz, …
type volume struct {
	archive string
	key     string
	// produced counts the stored (compressed) bytes emitted so far, and
	// assembled the tar bytes they came from; the assembler adds to both,
	// the sealer reads them to decide on splitting.
	produced  atomic.Int64
	assembled atomic.Int64
}

// blockJob is a block of a volume's tar stream on its way through the
// compressor pool; done carries the compressed bytes. The sealer ends
// its ordered stream with a job that has end set and nothing else.
type blockJob struct {
	end    bool
	volume *volume
	block  tarball.Block
	first  bool
	last   bool
	done   chan []byte
}

// sealer is the actor that reads the files: it turns entries into tar
// volumes, starting a new volume whenever the current one has grown past
// maxSize, and cuts each volume's stream into blocks for the compressor
// pool. Every block goes to the pool (blocks) and, in order, to the
// assembler (ordered).
//
// Once the walk is complete and the last listed file is read into its
// archive, it closes copied: that is what lets the controller stop the
// backup. It then adds backup_label, which the stop returns, from labels.
type sealer struct {
	codec     tarball.Codec
	maxSize   int64
	blockSize int
	prefix    string
	bufs      *buffers
	progress  *Progress
	journal   *Journal
	plan      *plan
	// info is read for backup_manifest once backup_label arrives.
	info     *pg.BackupInfo
	manifest *backupManifest
	pages    pageChecks

	blocks  chan<- *blockJob
	ordered chan<- *blockJob
	// cur is the volume being written; volumes counts each archive's.
	cur     *volumeWriter
	volumes map[string]int
}

// run seals every entry. copied is closed only after a complete walk has
// been read; a failed run leaves it open and the controller sees the
// cancelled context instead. The ordered stream ends with an end job
// once the last volume, with backup_label and backup_manifest, is sealed.
func (s *sealer) run(ctx context.Context, entries <-chan tarball.Entry, walked <-chan struct{},
	copied chan<- struct{}, labels <-chan stopped, blocks, ordered chan<- *blockJob) error {
	defer close(blocks)
	defer close(ordered)
	s.blocks, s.ordered, s.volumes = blocks, ordered, map[string]int{}
	if err := s.plan.wait(ctx); err != nil {
		return err
	}
	if err := s.pages.begin(ctx, s.plan.layout, s.info); err != nil {
		return err
	}
	for done := false; !done; {
		select {
		case e, ok := <-entries:
			if !ok {
				// The walker's end is walked, below: a listing cut short
				// closes entries too.
				done = true
				break
			}
			if err := s.add(ctx, e); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-walked: // the walker listed everything; all of it is read now
	case <-ctx.Done():
		return ctx.Err()
	}
	s.progress.reach(markLastRead)
	if err := s.pages.verdict(ctx); err != nil {
		return err
	}
	close(copied)
	select {
	case msg, ok := <-labels:
		if !ok {
			// The stop failed: without its label the last volume must
			// not be sealed, or a restore would run crash recovery.
			return cutShort("the controller's stop")
		}
		if msg.label != nil {
			if err := s.add(ctx, *msg.label); err != nil {
				return err
			}
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	if hdr, render, ok := s.manifest.entry(ctx, s.info); ok {
		if err := s.stream(ctx, "data", hdr, render); err != nil {
			return err
		}
	}
	if err := s.cur.close(); err != nil {
		return err
	}
	// Every volume is sealed: only now may the assembler call its stream
	// complete.
	select {
	case ordered <- &blockJob{end: true}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// add writes one entry, reading a regular file to its end before it
// returns, into the volume of its archive that is open, or a new one.
func (s *sealer) add(ctx context.Context, e tarball.Entry) error {
	if !s.manifest.admit(e, s.info) {
		return nil
	}
	regular := e.Header.Typeflag == tar.TypeReg
	if regular {
		zerolog.Ctx(ctx).Debug().Msgf("Uploading %s", e.Header.Name)
		s.progress.reach(markFirstRead)
	}
	skipped, err := s.write(ctx, e)
	if err != nil {
		return err
	}
	if !skipped && regular {
		s.manifest.stored(e)
		s.progress.Read.Add(e.Header.Size)
		s.journal.record(Event{Kind: EventFileRead, Archive: e.Archive, Name: e.Header.Name, Size: e.Header.Size})
	}
	return nil
}

// write stores e in the volume of its archive that is open, or a new one,
// feeding a regular file's content to the manifest's checksum and a
// relation file's pages to the page checksum check.
func (s *sealer) write(ctx context.Context, e tarball.Entry) (skipped bool, err error) {
	if err := s.room(ctx, e.Archive, e.Header); err != nil {
		return false, err
	}
	check := s.pages.check(e)
	skipped, err = tarball.WriteSum(s.cur.tw, e, s.manifest.sum(), through(check))
	if err != nil {
		return false, fmt.Errorf("archive %s: %w", s.cur.volume.key, err)
	}
	if !skipped {
		s.pages.done(ctx, e.Path, check)
	}
	return skipped, nil
}

// room makes the open volume one of archive's that can take a member
// with header hdr: the one open, or a new one.
func (s *sealer) room(ctx context.Context, archive string, hdr *tar.Header) error {
	switch {
	case s.cur == nil || s.cur.volume.archive != archive:
		// The walker finishes an archive before the next begins.
		if err := s.cur.close(); err != nil {
			return err
		}
		s.cur = s.open(ctx, archive)
	case s.cur.stored() > s.maxSize, !s.cur.fits(hdr.Size, s.plan.capacity):
		if err := s.cur.close(); err != nil {
			return err
		}
		s.cur = s.open(ctx, archive)
	}
	if !s.cur.fits(hdr.Size, s.plan.capacity) {
		return objectTooLarge(hdr.Name, hdr.Size, s.plan.capacity, s.plan.partSize)
	}
	return nil
}

// stream stores a member whose content render writes, exactly
// hdr.Size bytes of it, as write stores a file.
func (s *sealer) stream(ctx context.Context, archive string, hdr *tar.Header, render func(io.Writer) error) error {
	if err := s.room(ctx, archive, hdr); err != nil {
		return err
	}
	if err := s.cur.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: write tar header %s: %w", s.cur.volume.key, hdr.Name, err)
	}
	if err := render(s.cur.tw); err != nil {
		return fmt.Errorf("archive %s: %w", s.cur.volume.key, err)
	}
	return nil
}

func (s *sealer) open(ctx context.Context, archive string) *volumeWriter {
	n := s.volumes[archive]
	s.volumes[archive]++
	p := &volume{archive: archive, key: s.prefix + "/" + tarball.VolumeName(archive, n, s.codec.Ext())}
	pw := &volumeWriter{volume: p, codec: s.codec}
	pw.blocks = &blockWriter{ctx: ctx, s: s, volume: p, size: s.blockSize,
		history: s.codec.NeedsHistory()}
	pw.tw = tar.NewWriter(&countWriter{w: pw.blocks, n: &pw.tarBytes})
	return pw
}

// volumeWriter is the open volume: tar writer → blocks.
type volumeWriter struct {
	volume   *volume
	codec    tarball.Codec
	tw       *tar.Writer
	blocks   *blockWriter
	tarBytes int64
}

// pythonStreamBuffer is the buffer of Python's tarfile stream mode: Barman
// sees the tar bytes only in 64 KiB steps, and splits on what it sees.
const pythonStreamBuffer = 64 << 10

// stored is the size the split rule compares with --max-archive-size:
// bytes as sent to the store. Uncompressed, it is what Barman would have
// seen at this point, so volumes split where Barman's split.
func (pw *volumeWriter) stored() int64 {
	if !pw.codec.Compresses() {
		if pw.tarBytes == 0 {
			return 0
		}
		return (pw.tarBytes - 1) / pythonStreamBuffer * pythonStreamBuffer
	}
	return pw.volume.produced.Load()
}

// fits reports whether an entry of size bytes can go into the volume
// without the object outgrowing capacity, the most its upload parts can
// hold. What is stored so far is known; what is written but not yet
// compressed, and the entry, are counted as if compression grew them by
// 1% (no codec here grows incompressible data by more), with 2 KiB for
// the entry's headers and 64 KiB of slack for the codec's framing.
func (pw *volumeWriter) fits(size, capacity int64) bool {
	pending := pw.tarBytes - pw.volume.assembled.Load() + size + 2048
	return pw.volume.produced.Load()+pending+pending/100+64<<10 <= capacity
}

func (pw *volumeWriter) close() error {
	if pw == nil {
		return nil
	}
	if err := pw.tw.Close(); err != nil {
		return fmt.Errorf("close %s: %w", pw.volume.key, err)
	}
	return pw.blocks.close()
}

type countWriter struct {
	w io.Writer
	n *int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	*c.n += int64(n)
	return n, err
}

// blockWriter cuts a volume's stream into blocks and sends them on.
type blockWriter struct {
	ctx    context.Context
	s      *sealer
	volume *volume
	size   int
	// history gives each block the stream's preceding bytes and the last
	// one the stream's CRC-32 and size, for codecs that need them.
	history bool
	buf     []byte
	prev    []byte
	sum     uint32
	total   int64
	sent    bool
}

func (b *blockWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if b.buf == nil {
			buf, err := b.s.bufs.get(b.ctx)
			if err != nil {
				return n - len(p), err
			}
			b.buf = buf
		}
		k := min(len(p), b.size-len(b.buf))
		b.buf = append(b.buf, p[:k]...)
		p = p[k:]
		if len(b.buf) == b.size {
			if err := b.flush(false); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (b *blockWriter) flush(last bool) error {
	data := b.buf
	b.buf = nil
	if b.history {
		b.sum = crc32.Update(b.sum, crc32.IEEETable, data)
	}
	b.total += int64(len(data))
	j := &blockJob{volume: b.volume, first: !b.sent, last: last, done: make(chan []byte, 1)}
	j.block = tarball.Block{Data: data, First: j.first, Last: last}
	if b.history && b.prev != nil {
		j.block.Dict = b.prev
	}
	if last {
		j.block.CRC, j.block.Size = b.sum, uint64(b.total)
	}
	if b.history {
		// Copy the tail: the block itself is handed over and not ours to keep.
		tail := data[max(0, len(data)-tarball.DictSize):]
		b.prev = append(b.prev[:0:0], tail...)
	}
	b.sent = true
	for _, ch := range []chan<- *blockJob{b.s.blocks, b.s.ordered} {
		select {
		case ch <- j:
		case <-b.ctx.Done():
			return b.ctx.Err()
		}
	}
	return nil
}

func (b *blockWriter) close() error {
	if b.buf == nil {
		buf, err := b.s.bufs.get(b.ctx)
		if err != nil {
			return err
		}
		b.buf = buf
	}
	return b.flush(true)
}
