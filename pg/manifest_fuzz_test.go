package pg

import (
	"testing"
	"time"
)

// FuzzParse feeds Parse what a damaged store could hold: it must refuse
// or accept without panicking, and what it accepts from the builder must
// read back as built.
func FuzzParseManifest(f *testing.F) {
	b := NewManifestBuilder()
	b.Add("PG_VERSION", 3, time.Unix(1, 0), 0xE3069283)
	b.Add("pg_tblspc/16384/PG_15_202209061/5/1\"x", 10, time.Unix(2, 0), 7)
	f.Add(b.Bytes(1, 0, []WALRange{{1, 0x2C000028, 0x2C000138}}))
	f.Add(b.Bytes(2, 7711737989575920341, nil))
	f.Add([]byte("{}\n\"Manifest-Checksum\": \"00\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		if m.Version != 1 && m.Version != 2 {
			t.Fatalf("accepted version %d", m.Version)
		}
		again := NewManifestBuilder()
		for _, f := range m.Files {
			again.Add(f.Path, f.Size, time.Unix(0, 0), 0)
		}
		if _, err := ParseManifest(again.Bytes(m.Version, m.SystemID, m.WALRanges)); err != nil {
			t.Fatalf("a rebuilt manifest does not parse: %v", err)
		}
	})
}
