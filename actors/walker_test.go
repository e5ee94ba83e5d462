package actors

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// The compact listing has what os.ReadDir has, in its order: names and
// the type of each entry, a symbolic link as a link.
func TestReadDirListsAsOSReadDir(t *testing.T) {
	dir := t.TempDir()
	for i := range 2500 { // more than one batch
		os.WriteFile(filepath.Join(dir, fmt.Sprint(i*7919%10007)), nil, 0o600)
	}
	os.Mkdir(filepath.Join(dir, "base"), 0o700)
	os.Symlink(filepath.Join(dir, "base"), filepath.Join(dir, "link"))
	os.WriteFile(filepath.Join(dir, "é \n odd"), nil, 0o600)
	want, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.len() != len(want) {
		t.Fatalf("%d entries, os.ReadDir has %d", got.len(), len(want))
	}
	for i, w := range want {
		if name, mode := got.entry(i); name != w.Name() || mode != w.Type() {
			t.Fatalf("entry %d: %q %v, os.ReadDir: %q %v", i, name, mode, w.Name(), w.Type())
		}
	}
	if _, err := readDir(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("a missing directory: %v", err)
	}
}

// BenchmarkReadDirMemory reports what a listing holds per entry
// (heap-bytes/entry) for a directory of 50,000 relation files, as the
// walker holds it while it reads that directory.
func BenchmarkReadDirMemory(b *testing.B) {
	dir := b.TempDir()
	const n = 50000
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(100000+i)), nil, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var before, after runtime.MemStats
	for range b.N {
		runtime.GC()
		runtime.ReadMemStats(&before)
		l, err := readDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/entry")
		runtime.KeepAlive(l)
	}
}
