package pg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// BarmanBackup is a backup Barman already took, read from its backup
// directory when we run as Barman's post-backup hook: PGDATA is in data/,
// each tablespace in a directory named by its OID, and backup.info holds
// the rest. PostgreSQL is not contacted.
type BarmanBackup struct {
	Dir string
	// Raw is backup.info as Barman wrote it; it is uploaded unchanged.
	Raw []byte
	// InfoFile is Raw read.
	*InfoFile
}

// LoadBarmanBackup reads the backup in dir, whose backup.info is at
// infoPath, or in dir when infoPath is "". Barman servers from 3.13.2 on
// keep it outside the backup directory, at SERVER/meta/ID-backup.info,
// and tell hooks so in BARMAN_BACKUP_INFO_PATH; older ones keep it in dir.
// Keys this code does not know (newer Barman's cluster_size, encryption,
// ...) are kept: the file is uploaded as it is.
func LoadBarmanBackup(dir, infoPath string) (*BarmanBackup, error) {
	if infoPath == "" {
		infoPath = filepath.Join(dir, "backup.info")
	}
	raw, err := os.ReadFile(infoPath)
	if err != nil {
		return nil, fmt.Errorf("read Barman's backup.info: %w", err)
	}
	f, err := ReadInfo(raw)
	if err != nil {
		return nil, fmt.Errorf("Barman's %w", err)
	}
	if f.Version == 0 {
		return nil, fmt.Errorf("Barman's backup.info %s has no version", infoPath)
	}
	return &BarmanBackup{Dir: dir, Raw: raw, InfoFile: f}, nil
}

// MajorVersion spells the server's major version as in tablespace
// directory names.
func (b *BarmanBackup) MajorVersion() string { return (&Conn{Version: int(b.Version)}).MajorVersion() }

// Begin returns what to copy: the backup's own directories.
func (b *BarmanBackup) Begin(ctx context.Context, info *BackupInfo) (*Layout, error) {
	l := &Layout{PGData: filepath.Join(b.Dir, "data"), MajorVersion: b.MajorVersion()}
	for _, t := range b.Tablespaces {
		l.Tablespaces = append(l.Tablespaces, Tablespace{Name: t.Name, OID: t.OID,
			Location: filepath.Join(b.Dir, strconv.FormatUint(uint64(t.OID), 10))})
	}
	info.Status = StatusStarted
	// What the backup_manifest needs of Barman's record: its WAL range,
	// version and system identifier.
	info.BeginXLOG, info.EndXLOG, info.SystemID = b.BeginXLOG, b.EndXLOG, b.SystemID
	info.Version, info.Timeline = Int64(b.Version), Int64(b.Timeline)
	// The copy's own pg_control says whether its pages carry checksums.
	control, err := os.ReadFile(filepath.Join(l.PGData, "global", "pg_control"))
	if err == nil {
		l.DataChecksums, err = ControlChecksums(control)
	}
	l.ChecksumsUnknown = err
	return l, nil
}

// End has nothing to stop; backup_label is already in data/.
func (b *BarmanBackup) End(ctx context.Context, info *BackupInfo) ([]byte, error) { return nil, nil }

// Abort has no backup mode to leave.
func (b *BarmanBackup) Abort(ctx context.Context) {}

// parseTablespaces reads the Python repr of a list of (name, oid,
// location) tuples, as backup.info stores tablespaces.
func parseTablespaces(s string) ([]Tablespace, error) {
	p := &pyParser{s: s}
	var out []Tablespace
	if err := p.expect('['); err != nil {
		return nil, err
	}
	for {
		p.space()
		if p.peek() == ']' {
			p.i++
			return out, nil
		}
		if err := p.expect('('); err != nil {
			return nil, err
		}
		name, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
		oid, err := p.int()
		if err != nil {
			return nil, err
		}
		if err := p.expect(','); err != nil {
			return nil, err
		}
		loc, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.expect(')'); err != nil {
			return nil, err
		}
		out = append(out, Tablespace{Name: name, OID: uint32(oid), Location: loc})
		p.space()
		if p.peek() == ',' {
			p.i++
		}
	}
}

// pyParser reads the few Python literals backup.info holds.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) expect(c byte) error {
	p.space()
	if p.peek() != c {
		return fmt.Errorf("expected %q at %d in %q", c, p.i, p.s)
	}
	p.i++
	return nil
}

func (p *pyParser) int() (int64, error) {
	p.space()
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return strconv.ParseInt(p.s[start:p.i], 10, 64)
}

// str reads a quoted Python string with its escapes.
func (p *pyParser) str() (string, error) {
	p.space()
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("expected a string at %d in %q", p.i, p.s)
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\\' && p.i < len(p.s):
			e := p.s[p.i]
			p.i++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if p.i+n > len(p.s) {
					return "", fmt.Errorf("bad escape in %q", p.s)
				}
				r, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
				if err != nil {
					return "", fmt.Errorf("bad escape in %q", p.s)
				}
				b.WriteRune(rune(r))
				p.i += n
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("unterminated string in %q", p.s)
}
