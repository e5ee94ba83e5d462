package pg

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
)

// MaxListedBlocks is how many failing blocks of one file are kept and
// named, as pg_basebackup reports the first 5 of a file
// (src/backend/backup/basebackup.c).
const MaxListedBlocks = 5

// RelationSegment tells whether path, a file's path as backup_manifest
// records it (relative to PGDATA, tablespaces under pg_tblspc/OID/),
// is a segment of a permanent relation, whose pages carry checksums when
// the cluster has them, and which segment it is. Such a file is in
// global/, base/DBOID/ or pg_tblspc/OID/PG_*/DBOID/ and named as
// PostgreSQL names them: the relfilenode, then _fsm, _vm or _init for a
// fork other than main, then .N for segment N > 0
// (parse_filename_for_nontemp_relation in src/backend/storage/file/reinit.c,
// which basebackup.c uses from PostgreSQL 17 to choose the files it
// checks). Temporary relations (t3_16384) and every other file
// (pg_control, pg_filenode.map, pg_internal.init, PG_VERSION) are not.
func RelationSegment(path string) (segment uint32, ok bool) {
	dir, name, found := cutLast(path, '/')
	if !found {
		return 0, false
	}
	switch parts := strings.Split(dir, "/"); {
	case dir == "global":
	case len(parts) == 2 && parts[0] == "base" && digits(parts[1]):
	case len(parts) == 4 && parts[0] == "pg_tblspc" && digits(parts[1]) &&
		strings.HasPrefix(parts[2], "PG_") && digits(parts[3]):
	default:
		return 0, false
	}
	rel, seg, hasSeg := strings.Cut(name, ".")
	if hasSeg {
		n, err := strconv.ParseUint(seg, 10, 32)
		if err != nil || !digits(seg) || n == 0 {
			return 0, false
		}
		segment = uint32(n)
	}
	node, fork, hasFork := strings.Cut(rel, "_")
	if hasFork && fork != "fsm" && fork != "vm" && fork != "init" {
		return 0, false
	}
	if !digits(node) {
		return 0, false
	}
	return segment, true
}

// InitFork is the path of the init fork of the relation whose segment
// is at path (a RelationSegment): base/5/16384_init for base/5/16384.2
// or base/5/16384_vm. A relation with an init fork is unlogged: its
// other forks are not WAL-logged, so their pages may be written during a
// copy with no LSN to tell it, and a restore throws them away, rebuilding
// the relation from the init fork (pg_basebackup copies none of them:
// basebackup.c, sendDir). ok is false for an init fork itself, which is
// WAL-logged and restored, and for any other file.
func InitFork(path string) (string, bool) {
	if _, ok := RelationSegment(path); !ok {
		return "", false
	}
	dir, name, _ := cutLast(path, '/')
	rel, _, _ := strings.Cut(name, ".")
	node, fork, _ := strings.Cut(rel, "_")
	if fork == "init" {
		return "", false
	}
	return dir + "/" + node + "_init", true
}

func cutLast(s string, sep byte) (string, string, bool) {
	i := strings.LastIndexByte(s, sep)
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

// digits tells whether s is a non-empty run of ASCII digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// PageLSN is the page's pd_lsn: two uint32, the high half first
// (PageXLogRecPtr, src/include/storage/bufpage.h).
func PageLSN(page []byte) uint64 {
	return uint64(binary.LittleEndian.Uint32(page))<<32 | uint64(binary.LittleEndian.Uint32(page[4:]))
}

// pdUpperOffset is pd_upper's place in the page header: zero there is
// PageIsNew, a page never initialised.
const pdUpperOffset = 14

// PageCheck checks the pages of one relation segment file as its bytes
// go by, with basebackup.c's rules for a file PostgreSQL may be writing
// meanwhile: a page whose LSN is at or past the backup's start is not
// judged (it was written during the backup, maybe halfway, and WAL
// replay rewrites it whole); an all-zero new page has no checksum; and
// a page that fails is read once more, when the reader can, before it
// counts, in case the first read caught a write halfway. A page that is
// new (pd_upper zero) but not all zeros is judged, and fails, as
// PostgreSQL's own PageIsVerifiedExtended and pgBackRest fail it. Pages
// are judged from the start of the file in BlockSize steps; a file whose
// bytes come out of step (a size not a multiple of BlockSize) is judged
// up to there. It is not safe for concurrent use.
type PageCheck struct {
	// Start is the backup's start LSN.
	Start uint64
	// Segment is the file's segment number (RelationSegment).
	Segment uint32
	// Checked counts the pages whose checksum was compared, Failed those
	// that differed.
	Checked, Failed int64
	// Blocks are the first MaxListedBlocks failing blocks, numbered in
	// the file as pg_basebackup numbers them; Calculated and Expected are
	// the first failure's checksums: ours, and the page's pd_checksum.
	Blocks               []uint32
	Calculated, Expected uint16

	block   uint32 // the next page's block in the file
	partial []byte // a page's first bytes, between writes
	stepped bool   // out of step: nothing more is judged
}

// Write judges every whole page in p, holding a page's first bytes
// until the rest comes. It never fails: a checker in a MultiWriter only
// looks.
func (c *PageCheck) Write(p []byte) (int, error) {
	n := len(p)
	if c.stepped {
		return n, nil
	}
	if len(c.partial) > 0 {
		k := min(len(p), BlockSize-len(c.partial))
		c.partial = append(c.partial, p[:k]...)
		p = p[k:]
		if len(c.partial) < BlockSize {
			return n, nil
		}
		c.judge(c.partial, nil)
		c.partial = c.partial[:0]
	}
	for ; len(p) >= BlockSize; p = p[BlockSize:] {
		c.judge(p[:BlockSize], nil)
	}
	if len(p) > 0 {
		if c.partial == nil {
			c.partial = make([]byte, 0, BlockSize)
		}
		c.partial = append(c.partial, p...)
	}
	return n, nil
}

// Reader returns a reader of f from its start that judges each page as
// it is read, rereading a failing page once at its offset; what it
// returns is the page as last read, so a copy holds the reread page, as
// pg_basebackup's does.
func (c *PageCheck) Reader(f interface {
	io.Reader
	io.ReaderAt
}) io.Reader {
	return &pageReader{f: f, c: c}
}

type pageReader struct {
	f interface {
		io.Reader
		io.ReaderAt
	}
	c   *PageCheck
	off int64
}

// Read fills whole pages of p where it can, so pages are judged where
// they are read, with no copy.
func (r *pageReader) Read(p []byte) (int, error) {
	if r.c.stepped || len(p) < BlockSize {
		n, err := r.f.Read(p)
		r.advance(n)
		return n, err
	}
	n, err := io.ReadFull(r.f, p[:len(p)/BlockSize*BlockSize])
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil // the file ends here; the next read says so
	}
	for at := 0; at+BlockSize <= n; at += BlockSize {
		page, off := p[at:at+BlockSize], r.off+int64(at)
		r.c.judge(page, func() bool {
			k, err := r.f.ReadAt(page, off)
			return k == BlockSize && (err == nil || errors.Is(err, io.EOF))
		})
	}
	r.advance(n)
	return n, err
}

func (r *pageReader) advance(n int) {
	r.off += int64(n)
	if r.off%BlockSize != 0 {
		r.c.stepped = true
	}
}

// judge checks page, the file's next block; reread, when not nil,
// reads the page again into the same bytes and tells whether it could.
func (c *PageCheck) judge(page []byte, reread func() bool) {
	block := c.block
	c.block++
	for retried := false; ; retried = true {
		if !c.judged(page) {
			return
		}
		calculated := PageChecksum(page, c.Segment*SegmentBlocks+block)
		if calculated == StoredChecksum(page) {
			c.Checked++
			return
		}
		if !retried && reread != nil && reread() {
			continue
		}
		c.Checked++
		c.Failed++
		if c.Failed == 1 {
			c.Calculated, c.Expected = calculated, StoredChecksum(page)
		}
		if len(c.Blocks) < MaxListedBlocks {
			c.Blocks = append(c.Blocks, block)
		}
		return
	}
}

// judged tells whether page is one whose checksum counts: not an
// all-zero new page, and not written since the backup started.
func (c *PageCheck) judged(page []byte) bool {
	if binary.LittleEndian.Uint16(page[pdUpperOffset:]) == 0 && allZero(page) {
		return false
	}
	return PageLSN(page) < c.Start
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// OutOfStep tells whether the file's bytes came out of step with its
// pages (a size that is not a whole number of pages, or a read cut short),
// and from which block in the file on nothing was judged.
func (c *PageCheck) OutOfStep() (block uint32, ok bool) {
	if c.stepped {
		return c.block, true
	}
	return 0, false
}

// End says the file is over: a page's first bytes still held are not
// judged, and are let go. It may be called on a nil check.
func (c *PageCheck) End() {
	if c != nil {
		c.partial = nil
	}
}
