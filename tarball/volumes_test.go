package tarball

import (
	"bytes"
	"io"
	"testing"
)

func TestDecodersReadEveryCodec(t *testing.T) {
	data := sample(3<<20 + 777)
	for _, name := range []string{"", "gz", "bz2", "snappy", "lz4", "zstd"} {
		c, _ := CodecByName(name, 0)
		t.Run("codec="+name, func(t *testing.T) {
			z := encodeBlocks(t, c, data, 1<<20)
			if j := c.NewJoiner(); j != nil {
				out, err := j.Add(z)
				if err != nil {
					t.Fatal(err)
				}
				tail, err := j.Close()
				if err != nil {
					t.Fatal(err)
				}
				z = append(out, tail...)
			}
			back, ok := CodecByExt(c.Ext())
			if !ok || back.Name() != c.Name() {
				t.Fatalf("CodecByExt(%q) = %v, %v", c.Ext(), back, ok)
			}
			d, err := back.NewDecoder(bytes.NewReader(z))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(d)
			d.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("decoded %d bytes, want %d: %v", len(got), len(data), err)
			}
			if name == "" {
				return
			}
			// A flipped byte in the compressed stream: every codec but lz4
			// (no checksums in our frames) must fail or change the data.
			bad := append([]byte(nil), z...)
			bad[len(bad)/2] ^= 0x40
			d, err = back.NewDecoder(bytes.NewReader(bad))
			if err == nil {
				got, err = io.ReadAll(d)
			}
			if err == nil && bytes.Equal(got, data) {
				t.Errorf("a flipped byte went unnoticed")
			}
			if err == nil && name != "lz4" {
				t.Errorf("a flipped byte decoded without an error")
			}
		})
	}
}

func TestSplitVolumeName(t *testing.T) {
	for _, c := range []struct {
		name, base string
		part       int
		ext        string
		ok         bool
	}{
		{"data.tar", "data", 0, "", true},
		{"data.tar.gz", "data", 0, ".gz", true},
		{"data_0001.tar.gz", "data", 1, ".gz", true},
		{"16384_0012.tar.zst", "16384", 12, ".zst", true},
		{"16384.tar.snappy", "16384", 0, ".snappy", true},
		{"backup.info", "", 0, "", false},
		{"data_0000.tar", "", 0, "", false},
		{"data_1.tar", "", 0, "", false},
		{"data.tarball", "", 0, "", false},
		{".tar", "", 0, "", false},
	} {
		base, part, ext, ok := SplitVolumeName(c.name)
		if base != c.base || part != c.part || ext != c.ext || ok != c.ok {
			t.Errorf("SplitVolumeName(%s) = %s %d %s %v", c.name, base, part, ext, ok)
		}
	}
}
