package tarball

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteKeepsDeclaredSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, bytes.Repeat([]byte("x"), 1000), 0o600)
	fi, _ := os.Lstat(path)
	hdr, err := Header(path, "./f", fi)
	if err != nil {
		t.Fatal(err)
	}
	grown := *hdr
	shrunk := *hdr
	shrunk.Name, shrunk.Size = "./shrunk", 1500 // the file is shorter than its header now
	grown.Name, grown.Size = "./grown", 400     // the file is longer than its header now

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{hdr, &shrunk, &grown} {
		if skipped, err := WriteSum(tw, Entry{Header: h, Path: path}, nil, nil); err != nil || skipped {
			t.Fatalf("Write(%s) = %v, %v", h.Name, skipped, err)
		}
	}
	vanished := *hdr
	vanished.Name = "./gone"
	if skipped, err := WriteSum(tw, Entry{Header: &vanished, Path: filepath.Join(dir, "gone")}, nil, nil); err != nil || !skipped {
		t.Fatalf("vanished file: skipped=%v err=%v", skipped, err)
	}
	tw.Close()

	tr := tar.NewReader(&buf)
	want := map[string]int{"./f": 1000, "./shrunk": 1500, "./grown": 400}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if len(body) != want[h.Name] {
			t.Errorf("%s: %d bytes, want %d", h.Name, len(body), want[h.Name])
		}
		delete(want, h.Name)
	}
	if len(want) != 0 {
		t.Errorf("members missing: %v", want)
	}
}

func TestHeaderOfDirAndSymlink(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("/nowhere", filepath.Join(dir, "link"))
	fi, _ := os.Lstat(dir)
	h, err := Header(dir, ".", fi)
	if err != nil || h.Name != "./" || h.Typeflag != tar.TypeDir {
		t.Fatalf("dir header %+v, %v", h, err)
	}
	fi, _ = os.Lstat(filepath.Join(dir, "link"))
	h, err = Header(filepath.Join(dir, "link"), "./link", fi)
	if err != nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/nowhere" {
		t.Fatalf("symlink header %+v, %v", h, err)
	}
}
