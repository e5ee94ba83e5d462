//go:build integration

package integration

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// barmanReaders reads one volume as Barman's restores read them, into a
// directory: python's tarfile in stream mode ("r|") over a decompressor
// that sees the object in 64 KiB chunks. lz4 as Barman 3.18's restore
// reads --lz4 volumes, with one LZ4FrameDecompressor; zstd the ways
// Barman's zstd readers may (Barman 3.20's restore is not published):
// python-zstandard's stream_reader and decompressobj at their defaults,
// which read one frame (stream_reader with short reads at a frame's end,
// decompressobj failing on a second frame in 0.20), and decompressobj
// across frames. After tar's end the rest of the object is read too: the
// decompressor must take all of it, and end its frame there.
const barmanReaders = `
import sys, tarfile

CHUNK = 64 << 10


class Chunks:
    def __init__(self, gen):
        self.gen, self.buf = gen, b""

    def read(self, n=-1):
        while n < 0 or len(self.buf) < n:
            try:
                self.buf += next(self.gen)
            except StopIteration:
                break
        if n < 0:
            n = len(self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def chunks(f):
    while True:
        c = f.read(CHUNK)
        if not c:
            return
        yield c


def fed(f, d):
    for c in chunks(f):
        yield d.decompress(c)
    if not d.eof:
        raise SystemExit("the object ends inside a frame")


def across(f):
    import zstandard
    try:
        d = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    except TypeError:
        d = None
    if d is not None:
        yield from fed(f, d)
        return
    # Debian 12's python-zstandard (0.20) has no read_across_frames here:
    # do what it does, a decompressobj per frame fed what the last left.
    d = zstandard.ZstdDecompressor().decompressobj()
    for c in chunks(f):
        while c:
            yield d.decompress(c)
            c = b""
            if d.eof:
                c = d.unused_data
                d = zstandard.ZstdDecompressor().decompressobj()


def stream(mode, f):
    if mode == "lz4":
        import lz4.frame
        return Chunks(fed(f, lz4.frame.LZ4FrameDecompressor()))
    import zstandard
    if mode == "zstd-stream-reader":
        return zstandard.ZstdDecompressor().stream_reader(f)
    if mode == "zstd-decompressobj":
        return Chunks(fed(f, zstandard.ZstdDecompressor().decompressobj()))
    if mode == "zstd-decompressobj-across":
        return Chunks(across(f))
    raise SystemExit("unknown mode " + mode)


mode, path, dest = sys.argv[1:]
with open(path, "rb") as f:
    s = stream(mode, f)
    with tarfile.open(fileobj=s, mode="r|") as tar:
        tar.extractall(dest)
    while s.read(CHUNK):
        pass
    if f.read(1):
        raise SystemExit("the reader left part of the object unread")
`

// TestBarmanCodecReaders backs up with --lz4 and --zstd, split into
// volumes, and reads every volume as Barman's restores read them
// (barmanReaders): each reader must unpack the same files, with the same
// bytes, as GNU tar over lz4(1) or zstd(1).
func TestBarmanCodecReaders(t *testing.T) {
	w, _ := newS3World(t)
	script := filepath.Join(t.TempDir(), "readers.py")
	if err := os.WriteFile(script, []byte(barmanReaders), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flag, ext, gnu string
		readers        []string
	}{
		{"--lz4", ".lz4", `lz4 -dc "$1" | tar -x -C "$2" -f -`, []string{"lz4"}},
		{"--zstd", ".zst", `tar -x --zstd -f "$1" -C "$2"`,
			[]string{"zstd-stream-reader", "zstd-decompressobj", "zstd-decompressobj-across"}},
	} {
		t.Run(strings.TrimPrefix(c.flag, "--"), func(t *testing.T) {
			id := w.backup(t, c.flag, "-S", "4MB")
			names := w.names(t, id)
			if !contains(names, "data.tar"+c.ext) || !contains(names, "data_0001.tar"+c.ext) || !contains(names, "16384.tar"+c.ext) {
				t.Fatalf("want split data volumes and the tablespace's: objects %v", names)
			}
			dir := t.TempDir()
			for _, n := range names {
				if n == "backup.info" {
					continue
				}
				path := filepath.Join(dir, n)
				if err := os.WriteFile(path, w.store.Get(t, w.basePrefix(id)+n), 0o600); err != nil {
					t.Fatal(err)
				}
				ref := filepath.Join(dir, n+".gnu")
				os.Mkdir(ref, 0o700)
				if out, err := exec.Command("bash", "-o", "pipefail", "-c", c.gnu, "gnu", path, ref).CombinedOutput(); err != nil {
					t.Fatalf("GNU tar on %s: %v\n%s", n, err, out)
				}
				want := volumeTree(t, ref)
				if len(want) == 0 {
					t.Fatalf("%s: GNU tar unpacked nothing", n)
				}
				for _, r := range c.readers {
					out := filepath.Join(dir, n+"."+r)
					os.Mkdir(out, 0o700)
					if msg, err := exec.Command("/usr/bin/python3", script, r, path, out).CombinedOutput(); err != nil {
						lines := strings.Split(strings.TrimSpace(string(msg)), "\n")
						t.Errorf("%s read by %s: %v\n%s", n, r, err, strings.Join(lines[max(0, len(lines)-3):], "\n"))
						continue
					}
					if diffs := treeDiff(want, volumeTree(t, out)); len(diffs) > 0 {
						t.Errorf("%s read by %s: %d of %d entries differ from GNU tar's:\n%s",
							n, r, len(diffs), len(want), strings.Join(diffs[:min(len(diffs), 10)], "\n"))
					}
				}
			}
		})
	}
}

// volumeTree describes what one volume unpacked in dir: every entry's
// type, every file's size and SHA-256, every link's target.
func volumeTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tree[rel] = "link -> " + target
		case d.IsDir():
			tree[rel] = "dir"
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tree[rel] = fmt.Sprintf("file %d bytes sha256 %x", len(b), sha256.Sum256(b))
		default:
			tree[rel] = "other " + d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return tree
}
