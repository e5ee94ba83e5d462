package conf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Any text gives a size or Barman's one-line refusal, never a panic; the
// case of the unit does not matter, and a size is at least one byte.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"100GB", "1.5GiB", "1", "0", "1TB5", "kb", "1e3MB", "-1", "9999999999999YB", " 1GB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") && !strings.Contains(s, "\n") {
				t.Fatalf("%q: two-line error %q", s, msg)
			}
			return
		}
		if n < 1 {
			t.Fatalf("%q parsed as %d, below one byte", s, n)
		}
		if m, err := ParseSize(strings.ToLower(s)); err != nil || m != n {
			t.Fatalf("%q = %d but its lower case = %d (%v)", s, n, m, err)
		}
	})
}

// Any configuration file loads or is refused with one line that names the
// file; one that loads prints (--print-config) as a file that loads to the
// same configuration.
func FuzzLoadFile(f *testing.F) {
	example, err := os.ReadFile("../example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("jobs = 4\n[postgres]\nhost = \"db\"\nport = 5433\n[tags]\nteam = \"dba\"\n")
	f.Add("compression = \"gzip\"\ncompression_level = 9\nmax_archive_size = \"1.5GiB\"\n")
	f.Add("[s3]\nendpoint_url =\n")
	f.Add("nosuchkey = 1\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := Defaults()
		if err := LoadFile(path, &cfg); err != nil {
			msg := err.Error()
			if _, ok := err.(*FileError); !ok || !strings.HasPrefix(msg, path) && !strings.HasPrefix(msg, "configuration file") {
				t.Fatalf("error %T %q does not name the file", err, msg)
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("two-line error %q", msg)
			}
			return
		}
		if strings.Contains(strings.ToLower(cfg.DBName), "password") {
			return // --print-config masks it, on purpose
		}
		printed := cfg.TOML()
		if err := os.WriteFile(path, []byte(printed), 0o600); err != nil {
			t.Fatal(err)
		}
		again := Defaults()
		if err := LoadFile(path, &again); err != nil {
			t.Fatalf("printed configuration does not load: %v\n%s", err, printed)
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("printed configuration loads differently:\n%+v\n%+v\n%s", cfg, again, printed)
		}
	})
}
