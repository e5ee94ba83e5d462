package pg

import (
	"bytes"
	"io"
	"os"
	"slices"
	"testing"
	"testing/iotest"
)

func TestControlChecksums(t *testing.T) {
	for file, want := range map[string]bool{
		"testdata/pg_control.pg13-checksums-on":  true,
		"testdata/pg_control.pg15-checksums-off": false,
		"testdata/pg_control.pg18-checksums-on":  true,
		"testdata/pg_control.pg18-checksums-off": false,
	} {
		control, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ControlChecksums(control)
		if err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", file, got, err, want)
		}
	}
	// A damaged pg_control says nothing: here data_checksum_version set to
	// 0 in one whose cluster has checksums, which its CRC-32C betrays.
	off, _ := os.ReadFile("testdata/pg_control.pg18-checksums-on")
	off[252] = 0
	for name, b := range map[string][]byte{"empty": nil, "zeros": make([]byte, 8192), "a page": realPages(t, "testdata/heap-pg15.pages"),
		"version changed": off} {
		if _, err := ControlChecksums(b); err == nil {
			t.Errorf("%s: read as a pg_control", name)
		}
	}
}

func TestRelationSegment(t *testing.T) {
	for path, want := range map[string]int{
		"global/1262": 0, "global/1262_fsm": 0, "base/5/16384": 0, "base/5/16384.1": 1, "base/5/16384_vm.12": 12,
		"base/5/16384_init": 0, "pg_tblspc/16385/PG_15_202209061/16386/16387.3": 3,
		// Not relation segments: -1.
		"global/pg_control": -1, "global/pg_filenode.map": -1, "base/5/pg_internal.init": -1, "base/5/PG_VERSION": -1,
		"base/5/t3_16384": -1, "base/5/16384_main": -1, "base/5/16384.": -1, "base/5/16384.0": -1, "base/5/16384.x": -1,
		"base/5/16384.99999999999": -1, "base/pgsql_tmp/pgsql_tmp1.0": -1, "base/x/16384": -1, "16384": -1,
		"pg_wal/000000010000000000000001": -1, "pg_tblspc/16385/PG_15_202209061/16386": -1,
		"pg_tblspc/16385/other/16386/16387": -1, "pg_xact/0000": -1, "base/5/16384/1": -1,
	} {
		seg, ok := RelationSegment(path)
		if want < 0 && ok || want >= 0 && (!ok || int(seg) != want) {
			t.Errorf("RelationSegment(%q) = %d, %v; want %d", path, seg, ok, want)
		}
	}
}

func TestInitFork(t *testing.T) {
	for path, want := range map[string]string{
		"base/5/16384": "base/5/16384_init", "base/5/16384.3": "base/5/16384_init", "base/5/16384_vm": "base/5/16384_init",
		"base/5/16384_fsm.1": "base/5/16384_init", "pg_tblspc/7/PG_15_1/5/9": "pg_tblspc/7/PG_15_1/5/9_init",
		"base/5/16384_init": "", "base/5/PG_VERSION": "", "global/pg_control": "",
	} {
		got, ok := InitFork(path)
		if got != want || ok != (want != "") {
			t.Errorf("InitFork(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
}

func realPages(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Pages PostgreSQL 18's initdb wrote, of pg_class, check too.
func TestPageChecksumOfPG18Pages(t *testing.T) {
	pages := realPages(t, "testdata/pg_class-pg18.pages")
	for blk := range uint32(len(pages) / BlockSize) {
		page := pages[blk*BlockSize : (blk+1)*BlockSize]
		if got, want := PageChecksum(page, blk), StoredChecksum(page); want == 0 || got != want {
			t.Errorf("block %d: computed %d, PostgreSQL stored %d", blk, got, want)
		}
	}
}

// segmentFile is a relation file of real pages: the three heap pages,
// a corrupt copy of the first, an all-zero new page, a new page that
// is not all zeros, and a page written after the backup started.
func segmentFile(t *testing.T) (file []byte, start uint64) {
	heap := realPages(t, "testdata/heap-pg15.pages")
	var lsn uint64
	for i := 0; i < len(heap); i += BlockSize {
		lsn = max(lsn, PageLSN(heap[i:]))
	}
	start = lsn + 1
	file = append(file, heap...) // blocks 0-2 check
	// Block 3: block 0's bytes, one flipped: its checksum is for block 0.
	bad := slices.Clone(heap[:BlockSize])
	bad[5000] ^= 1
	file = append(file, bad...)
	file = append(file, make([]byte, BlockSize)...) // 4: new, all zeros
	dirty := make([]byte, BlockSize)
	dirty[100] = 1
	file = append(file, dirty...) // 5: new but not all zeros
	late := slices.Clone(bad)
	late[0] = 0xff // 6: LSN far past the start: not judged
	return append(file, late...), start
}

func TestPageCheckWrite(t *testing.T) {
	file, start := segmentFile(t)
	for _, step := range []int{1, 100, BlockSize - 1, BlockSize, 3 * BlockSize, len(file)} {
		c := &PageCheck{Start: start}
		for r := bytes.NewReader(file); ; {
			b := make([]byte, step)
			n, err := r.Read(b)
			c.Write(b[:n])
			if err == io.EOF {
				break
			}
		}
		if c.Checked != 5 || c.Failed != 2 || !slices.Equal(c.Blocks, []uint32{3, 5}) {
			t.Errorf("in steps of %d: checked %d, failed %d in blocks %v; want 5, 2, [3 5]", step, c.Checked, c.Failed, c.Blocks)
		}
		if c.Expected != StoredChecksum(file[3*BlockSize:]) || c.Calculated != PageChecksum(file[3*BlockSize:4*BlockSize], 3) {
			t.Errorf("in steps of %d: first failure calculated %X, expected %X", step, c.Calculated, c.Expected)
		}
	}
	// The segment's place in the relation counts: block 0 of segment 1
	// is the relation's block 131072.
	c := &PageCheck{Start: start, Segment: 1}
	c.Write(file[:3*BlockSize])
	if c.Failed != 3 {
		t.Errorf("pages of segment 0 checked as segment 1: %d of 3 failed", c.Failed)
	}
	// Before the pages' LSN nothing is judged.
	c = &PageCheck{Start: 1}
	c.Write(file)
	if c.Checked != 1 || c.Failed != 1 {
		t.Errorf("start LSN 1: checked %d, failed %d; want only the new page that is not zeros", c.Checked, c.Failed)
	}
	// Out of step: a torn last page is not judged.
	c = &PageCheck{Start: start}
	c.Write(file[:3*BlockSize+100])
	if c.Checked != 3 || c.Failed != 0 {
		t.Errorf("a file ending in part of a page: checked %d, failed %d", c.Checked, c.Failed)
	}
	many := bytes.Repeat(file[3*BlockSize:4*BlockSize], 9)
	c = &PageCheck{Start: start}
	c.Write(many)
	if c.Failed != 9 || len(c.Blocks) != MaxListedBlocks {
		t.Errorf("nine failures: %d counted, blocks %v", c.Failed, c.Blocks)
	}
}

// rewritten is a file whose pages change between a read and a reread,
// as when PostgreSQL writes a page while it is copied.
type rewritten struct {
	io.Reader
	now     []byte
	rereads int
}

func (r *rewritten) ReadAt(p []byte, off int64) (int, error) {
	r.rereads++
	return bytes.NewReader(r.now).ReadAt(p, off)
}

func TestPageCheckReaderRereads(t *testing.T) {
	file, start := segmentFile(t)
	good := realPages(t, "testdata/heap-pg15.pages")
	// On disk by the reread: block 3 is a good page for block 3 (block
	// 0's, whose checksum is for block 0: still bad), block 5 a torn
	// write now finished, whose LSN is past the start.
	now := slices.Clone(file)
	copy(now[3*BlockSize:], good[:BlockSize])
	copy(now[5*BlockSize:], file[6*BlockSize:7*BlockSize])
	for _, read := range []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r }, iotest.HalfReader, iotest.OneByteReader,
	} {
		f := &rewritten{Reader: read(bytes.NewReader(file)), now: now}
		c := &PageCheck{Start: start}
		var copied bytes.Buffer
		if _, err := io.CopyBuffer(struct{ io.Writer }{&copied}, c.Reader(f), make([]byte, 32<<10)); err != nil {
			t.Fatal(err)
		}
		if c.Checked != 4 || c.Failed != 1 || !slices.Equal(c.Blocks, []uint32{3}) || f.rereads != 2 {
			t.Errorf("checked %d, failed %d in %v after %d rereads; want 4, 1 in [3] after 2", c.Checked, c.Failed, c.Blocks, f.rereads)
		}
		// The copy holds what was reread.
		if !bytes.Equal(copied.Bytes()[3*BlockSize:6*BlockSize], now[3*BlockSize:6*BlockSize]) ||
			!bytes.Equal(copied.Bytes()[:3*BlockSize], file[:3*BlockSize]) {
			t.Error("the copy does not hold the reread pages")
		}
	}
	// Reads smaller than a page put it out of step: nothing is judged,
	// and the copy is the file.
	c := &PageCheck{Start: start}
	var copied bytes.Buffer
	if _, err := io.CopyBuffer(struct{ io.Writer }{&copied}, c.Reader(&rewritten{Reader: bytes.NewReader(file), now: now}), make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if block, ok := c.OutOfStep(); c.Checked != 0 || !bytes.Equal(copied.Bytes(), file) || !ok || block != 0 {
		t.Errorf("reads of 1000 bytes: checked %d, out of step %v from block %d", c.Checked, ok, block)
	}
}

// BenchmarkPageCheck is the cost of the check on a copy's read path,
// one 32 KiB read at a time, as io.Copy reads a file into the archive.
func BenchmarkPageCheck(b *testing.B) {
	heap, err := os.ReadFile("testdata/heap-pg15.pages")
	if err != nil {
		b.Fatal(err)
	}
	buf := bytes.Repeat(heap[:BlockSize], 4)
	c := &PageCheck{Start: ^uint64(0)}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		c.Write(buf)
	}
}
