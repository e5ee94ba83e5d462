package tarball

import (
	"fmt"
	"io"
	"strings"

	"github.com/dsnet/compress/bzip2"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// SplitPartName reads an archive part's object name as Barman's restore
// does (cloud.py, CloudBackupCatalog.get_backup_files): the archive base
// ("data" or an OID), the part number (0 for BASE.tar..., n for
// BASE_%04d.tar...), and the extension after ".tar" ("" for none). ok is
// false for a name that is no part.
func SplitPartName(name string) (base string, part int, ext string, ok bool) {
	stem, rest, found := strings.Cut(name, ".tar")
	if !found || (rest != "" && !strings.HasPrefix(rest, ".")) {
		return "", 0, "", false
	}
	base = stem
	if b, n, has := strings.Cut(stem, "_"); has {
		if len(n) != 4 || strings.Trim(n, "0123456789") != "" {
			return "", 0, "", false
		}
		fmt.Sscanf(n, "%d", &part)
		if part == 0 {
			return "", 0, "", false
		}
		base = b
	}
	if base == "" {
		return "", 0, "", false
	}
	return base, part, rest, true
}

// CodecByExt returns the codec a part's extension names: Barman's (none,
// .gz, .bz2, .snappy; .lz4 from Barman 3.18) and ours (.zst).
func CodecByExt(ext string) (Codec, bool) {
	for name, c := range codecs {
		if c.ext == ext {
			codec, err := CodecByName(name, 0)
			return codec, err == nil
		}
	}
	return Codec{}, false
}

// BarmanRestores tells whether Barman 3.4's barman-cloud-restore reads a
// part with this codec; it skips the others with only a warning.
func (c Codec) BarmanRestores() bool {
	return c.Name == "" || c.Name == "gz" || c.Name == "bz2" || c.Name == "snappy"
}

// maxZstdWindow bounds what a zstd stream may make the decoder hold; ours
// are frames of 1 MiB blocks.
const maxZstdWindow = 128 << 20

// NewDecoder returns the tar stream of a part compressed with c, read
// from r. For gzip it reads the first member only, as Barman's streaming
// restore does (Python's tarfile "r|gz"): whatever follows is not
// restored, and the caller sees it left in r. Every decoder checks what
// its format checks: gzip's CRC-32 and size, bzip2's block and stream
// CRCs, snappy framing's masked CRC-32C per chunk, zstd's frame
// checksums; an lz4 frame as we write it has none, so there only the tar
// headers' checksums and the manifest's catch damage.
func (c Codec) NewDecoder(r io.Reader) (io.ReadCloser, error) {
	switch c.Name {
	case "":
		return io.NopCloser(r), nil
	case "gz":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		return zr, nil
	case "bz2":
		return bzip2.NewReader(r, nil)
	case "snappy":
		return io.NopCloser(s2.NewReader(r)), nil
	case "lz4":
		return io.NopCloser(lz4.NewReader(r)), nil
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return nil, fmt.Errorf("no decoder for compression %q", c.Name)
}
