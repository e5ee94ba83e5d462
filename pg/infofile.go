package pg

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// InfoFile is what a backup.info says about a backup, as read back from
// Barman's key=value serialization (barman/infofile.py): the fields a
// check of the stored backup needs. Keys it does not know are ignored, so
// newer Barman's backup.info reads too.
type InfoFile struct {
	// Keys holds every key as written, "None" included.
	Keys        map[string]string
	Status      string
	BackupName  string
	BeginXLOG   string
	EndXLOG     string
	BeginWAL    string
	EndWAL      string
	Timeline    int64
	SystemID    string
	Version     int64
	Compression string
	PGData      string
	// SegmentSize is xlog_segment_size in bytes; DefaultSegmentSize when
	// absent.
	SegmentSize int64
	Tablespaces []Tablespace
	// BackupLabel is backup_label's text, its Python repr decoded; "" when
	// None.
	BackupLabel string
	// EndTime is end_time; zero when None.
	EndTime time.Time
}

// ParsePyTime reads a time as PyTime writes it (Python's str() of an
// aware datetime), with or without microseconds.
func ParsePyTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999-07:00:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time as Python writes one", s)
}

// ReadInfo parses a backup.info. A line that is not key=value, or a
// tablespaces or backup_label value that is not the Python literal
// Barman writes, is an error.
func ReadInfo(raw []byte) (*InfoFile, error) {
	f := &InfoFile{Keys: map[string]string{}, SegmentSize: DefaultSegmentSize}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("backup.info line %d is not key=value", n)
		}
		f.Keys[k] = v
		if v == none {
			continue
		}
		var err error
		switch k {
		case "status":
			f.Status = v
		case "backup_name":
			f.BackupName = v
		case "begin_xlog":
			f.BeginXLOG = v
		case "end_xlog":
			f.EndXLOG = v
		case "begin_wal":
			f.BeginWAL = v
		case "end_wal":
			f.EndWAL = v
		case "systemid":
			f.SystemID = v
		case "compression":
			f.Compression = v
		case "pgdata":
			f.PGData = v
		case "timeline":
			f.Timeline, err = strconv.ParseInt(v, 10, 64)
		case "version":
			f.Version, err = strconv.ParseInt(v, 10, 64)
		case "xlog_segment_size":
			f.SegmentSize, err = strconv.ParseInt(v, 10, 64)
		case "tablespaces":
			f.Tablespaces, err = parseTablespaces(v)
		case "backup_label":
			p := &pyParser{s: v}
			f.BackupLabel, err = p.str()
		case "end_time":
			f.EndTime, err = ParsePyTime(v)
		}
		if err != nil {
			return nil, fmt.Errorf("backup.info %s: %w", k, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read backup.info: %w", err)
	}
	return f, nil
}
