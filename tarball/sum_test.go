package tarball

import (
	"archive/tar"
	"bytes"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The manifest's checksum must be of the bytes the archive holds: a file
// that shrank is summed with the zeros that pad it, one that grew only up
// to its declared size.
func TestWriteSumIsOfTheStoredBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	content := bytes.Repeat([]byte("0123456789"), 100)
	os.WriteFile(path, content, 0o600)
	fi, _ := os.Lstat(path)
	base, err := Header(path, "./f", fi)
	if err != nil {
		t.Fatal(err)
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	want := map[string]uint32{}
	for _, c := range []struct {
		name string
		size int64
	}{{"./same", 1000}, {"./shrunk", 1500}, {"./grown", 400}, {"./empty", 0}} {
		h := *base
		h.Name, h.Size = c.name, c.size
		sum := crc32.New(table)
		if skipped, err := WriteSum(tw, Entry{Header: &h, Path: path}, sum, nil); err != nil || skipped {
			t.Fatalf("WriteSum(%s) = %v, %v", c.name, skipped, err)
		}
		want[c.name] = sum.Sum32()
	}
	tw.Close()
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if got := crc32.Checksum(body, table); got != want[h.Name] {
			t.Errorf("%s: stored bytes sum to %08x, WriteSum said %08x", h.Name, got, want[h.Name])
		}
	}
	padded := append(append([]byte{}, content...), make([]byte, 500)...)
	if want["./shrunk"] != crc32.Checksum(padded, table) || want["./grown"] != crc32.Checksum(content[:400], table) {
		t.Error("padding or cut not summed as stored")
	}
}
