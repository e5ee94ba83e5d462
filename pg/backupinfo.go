package pg

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Tablespace is a user tablespace as backup.info records it.
type Tablespace struct {
	Name     string
	OID      uint32
	Location string
}

// ItemTime is a per-archive figure of copy_stats, in archive order.
type ItemTime struct {
	Name    string
	Seconds float64
}

// CopyStats is backup.info's copy_stats: how long the upload took, overall
// and per archive ("data" and each tablespace OID).
type CopyStats struct {
	TotalTime                 float64
	NumberOfWorkers           int
	CopyTimePerItem           []ItemTime
	SerializedCopyTimePerItem []ItemTime
	CopyTime                  float64
	SerializedCopyTime        float64
}

// BackupInfo is Barman's backup.info. Zero values of optional fields are
// written as Python's None, as Barman writes unset fields.
type BackupInfo struct {
	// ID is the backup ID; it names the backup's folder, not a field.
	ID string

	BackupLabel      *string
	BackupName       string
	BeginOffset      *int64
	BeginTime        *time.Time
	BeginWAL         string
	BeginXLOG        string
	Compression      string
	ConfigFile       string
	CopyStats        *CopyStats
	DeduplicatedSize *int64
	EndOffset        *int64
	EndTime          *time.Time
	EndWAL           string
	EndXLOG          string
	Error            string
	HBAFile          string
	IdentFile        string
	IncludedFiles    []string
	Mode             string
	PGData           string
	ServerName       string
	Size             *int64
	Status           string
	SystemID         string
	Tablespaces      []Tablespace
	Timeline         *int64
	Version          *int64
	XLOGSegmentSize  *int64
}

// Statuses Barman's catalogue knows.
const (
	StatusEmpty   = "EMPTY"
	StatusStarted = "STARTED"
	StatusDone    = "DONE"
	StatusFailed  = "FAILED"
)

// Int64 returns a pointer to v, for the optional integer fields.
func Int64(v int64) *int64 { return &v }

// Marshal renders backup.info exactly as Barman's infofile module does:
// one key=value line per field, keys sorted, Python reprs for the
// structured values.
func (b *BackupInfo) Marshal() []byte {
	fields := map[string]string{
		"backup_label":      optRepr(b.BackupLabel),
		"begin_offset":      optInt(b.BeginOffset),
		"begin_time":        optTime(b.BeginTime),
		"begin_wal":         optStr(b.BeginWAL),
		"begin_xlog":        optStr(b.BeginXLOG),
		"compression":       optStr(b.Compression),
		"config_file":       optStr(b.ConfigFile),
		"copy_stats":        b.CopyStats.repr(),
		"deduplicated_size": optInt(b.DeduplicatedSize),
		"end_offset":        optInt(b.EndOffset),
		"end_time":          optTime(b.EndTime),
		"end_wal":           optStr(b.EndWAL),
		"end_xlog":          optStr(b.EndXLOG),
		"error":             optStr(b.Error),
		"hba_file":          optStr(b.HBAFile),
		"ident_file":        optStr(b.IdentFile),
		"included_files":    strListRepr(b.IncludedFiles),
		"mode":              optStr(b.Mode),
		"pgdata":            optStr(b.PGData),
		"server_name":       optStr(b.ServerName),
		"size":              optInt(b.Size),
		"status":            statusOrEmpty(oneLine(b.Status)),
		"systemid":          optStr(b.SystemID),
		"tablespaces":       tablespacesRepr(b.Tablespaces),
		"timeline":          optInt(b.Timeline),
		"version":           optInt(b.Version),
		"xlog_segment_size": optInt(segmentSizeOrDefault(b.XLOGSegmentSize)),
	}
	// Barman hides these two when they are unset.
	if b.BackupName != "" {
		fields["backup_name"] = oneLine(b.BackupName)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(fields[k])
		sb.WriteByte('\n')
	}
	return []byte(sb.String())
}

// DefaultSegmentSize is the WAL segment size Barman assumes when none is
// known; backup.info shows it even for a backup that failed early.
const DefaultSegmentSize = 16 << 20

func segmentSizeOrDefault(v *int64) *int64 {
	if v == nil {
		return Int64(DefaultSegmentSize)
	}
	return v
}

func statusOrEmpty(s string) string {
	if s == "" {
		return StatusEmpty
	}
	return s
}

const none = "None"

func optStr(s string) string {
	if s == "" {
		return none
	}
	return oneLine(s)
}

// oneLine keeps a value on its key's line. Barman writes values as they
// are, so an error message with a newline (PostgreSQL's have DETAIL
// lines) would start a line of its own, even one that reads as another
// key; backup.info must stay one key per line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}

func optInt(v *int64) string {
	if v == nil {
		return none
	}
	return strconv.FormatInt(*v, 10)
}

func optRepr(s *string) string {
	if s == nil || *s == "" {
		return none
	}
	return PyRepr(*s)
}

// PyTime formats t as Python's str() of an aware datetime.
func PyTime(t time.Time) string {
	s := t.Format("2006-01-02 15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	_, off := t.Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	s += fmt.Sprintf("%s%02d:%02d", sign, off/3600, off%3600/60)
	if off%60 != 0 {
		s += fmt.Sprintf(":%02d", off%60)
	}
	return s
}

func optTime(t *time.Time) string {
	if t == nil {
		return none
	}
	return PyTime(*t)
}

// PyRepr renders s as Python 3's repr() of a str.
func PyRepr(s string) string {
	quote := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		quote = '"'
	}
	var b strings.Builder
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte(quote)
	return b.String()
}

// PyFloat renders f as Python's repr() of a float.
func PyFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return map[bool]string{true: "inf", false: "nan"}[math.IsInf(f, 1)]
	}
	if f == 0 {
		return "0.0"
	}
	exp := math.Floor(math.Log10(math.Abs(f)))
	// Python switches to exponent notation outside [1e-4, 1e16).
	if exp < -4 || exp >= 16 {
		return strconv.FormatFloat(f, 'e', -1, 64)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

func strListRepr(list []string) string {
	if len(list) == 0 {
		return none
	}
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = PyRepr(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func tablespacesRepr(ts []Tablespace) string {
	if len(ts) == 0 {
		return none
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("(%s, %d, %s)", PyRepr(t.Name), t.OID, PyRepr(t.Location))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func itemsRepr(items []ItemTime, zero bool) string {
	parts := make([]string, len(items))
	for i, it := range items {
		v := PyFloat(it.Seconds)
		if zero {
			v = "0"
		}
		parts[i] = PyRepr(it.Name) + ": " + v
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (c *CopyStats) repr() string {
	if c == nil {
		return none
	}
	return fmt.Sprintf("{'total_time': %s, 'number_of_workers': %d, 'analysis_time': 0, "+
		"'analysis_time_per_item': %s, 'copy_time_per_item': %s, "+
		"'serialized_copy_time_per_item': %s, 'copy_time': %s, 'serialized_copy_time': %s}",
		PyFloat(c.TotalTime), c.NumberOfWorkers, itemsRepr(c.CopyTimePerItem, true),
		itemsRepr(c.CopyTimePerItem, false), itemsRepr(c.SerializedCopyTimePerItem, false),
		PyFloat(c.CopyTime), PyFloat(c.SerializedCopyTime))
}

// Seconds converts d to the float Python's timedelta.total_seconds() gives:
// microsecond resolution.
func Seconds(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1e6
}
