package conf

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// EnvConfig names the TOML file when --config is not given.
const EnvConfig = "BARMAN_CLOUD_BACKUP_CONFIG"

// envPrefix starts the environment variable of every TOML key: the key's
// path in upper case with "." and "-" as "_" (jobs is
// BARMAN_CLOUD_BACKUP_JOBS, postgres.host BARMAN_CLOUD_BACKUP_POSTGRES_HOST).
const envPrefix = "BARMAN_CLOUD_BACKUP_"

type valueType int

const (
	tString valueType = iota
	tInt
	tBool
	tSize // a size string ("100GB") or a number of bytes
	tList // a list of strings
	tTags // a table of KEY = "VALUE"
)

// fileKey is one key of the TOML file and the option it stands for; its
// value goes through the option's own checks.
type fileKey struct {
	path   string
	option string // long option name; "" for keys that have none
	typ    valueType
	doc    string
	set    func(c *Config, v string) error // for keys without an option
}

var compressionNames = map[string]string{"none": "", "gzip": "gz", "bzip2": "bz2", "snappy": "snappy", "lz4": "lz4", "zstd": "zstd"}

var fileKeys = []fileKey{
	{path: "destination_url", typ: tString, doc: "URL of the destination, e.g. s3://bucket/path",
		set: func(c *Config, v string) error { c.DestinationURL = v; return nil }},
	{path: "server_name", typ: tString, doc: "the name of the server as configured in Barman",
		set: func(c *Config, v string) error { c.ServerName = v; return nil }},
	{path: "cloud_provider", option: "--cloud-provider", typ: tString},
	{path: "compression", typ: tString, doc: "none, gzip, bzip2, snappy, lz4 or zstd",
		set: func(c *Config, v string) error {
			name, ok := compressionNames[v]
			if !ok {
				return fmt.Errorf("invalid choice: '%s' (choose from 'none', 'gzip', 'bzip2', 'snappy', 'lz4', 'zstd')", v)
			}
			c.Compression = name
			return nil
		}},
	{path: "compression_level", option: "--compression-level", typ: tInt},
	{path: "jobs", option: "--jobs", typ: tInt},
	{path: "max_archive_size", option: "--max-archive-size", typ: tSize},
	{path: "immediate_checkpoint", option: "--immediate-checkpoint", typ: tBool},
	{path: "name", option: "--name", typ: tString},
	{path: "verbose", typ: tInt, doc: "like -v given this many times",
		set: func(c *Config, v string) error { return setCount(&c.Verbose, v) }},
	{path: "quiet", typ: tInt, doc: "like -q given this many times",
		set: func(c *Config, v string) error { return setCount(&c.Quiet, v) }},
	{path: "test", option: "--test", typ: tBool},
	{path: "tags", option: "--tags", typ: tTags},
	{path: "log_format", option: "--log-format", typ: tString},
	{path: "json_summary", option: "--json-summary", typ: tString},
	{path: "prometheus_textfile", option: "--prometheus-textfile", typ: tString},
	{path: "postgres.host", option: "--host", typ: tString},
	{path: "postgres.port", option: "--port", typ: tInt},
	{path: "postgres.user", option: "--user", typ: tString},
	{path: "postgres.dbname", option: "--dbname", typ: tString},
	{path: "s3.endpoint_url", option: "--endpoint-url", typ: tString},
	{path: "s3.profile", option: "--profile", typ: tString},
	{path: "s3.read_timeout", option: "--read-timeout", typ: tInt},
	{path: "s3.encryption", option: "--encryption", typ: tString},
	{path: "azure.credential", option: "--credential", typ: tString},
	{path: "azure.encryption_scope", option: "--encryption-scope", typ: tString},
	{path: "snapshot.instance", option: "--snapshot-instance", typ: tString},
	{path: "snapshot.disks", option: "--snapshot-disk", typ: tList},
	{path: "snapshot.zone", option: "--snapshot-zone", typ: tString},
	{path: "snapshot.gcp_project", option: "--snapshot-gcp-project", typ: tString},
}

func setCount(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("'%s' is not a valid count", v)
	}
	*dst = n
	return nil
}

func (k fileKey) envName() string {
	return envPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(k.path))
}

// apply sets one value, given as text, with the option's own checks. An
// empty string leaves a setting as it is, so printed settings load back.
func (k fileKey) apply(c *Config, v string) error {
	if v == "" && k.typ == tString {
		return nil
	}
	if k.set != nil {
		return k.set(c, v)
	}
	o, _ := findLong(k.option)
	if len(o.choices) > 0 && !contains(o.choices, v) {
		return fmt.Errorf("invalid choice: '%s' (choose from '%s')", v, strings.Join(o.choices, "', '"))
	}
	if o.kind == flagTrue {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("'%s' is not true or false", v)
		}
		if b {
			return o.set(c, "")
		}
		return nil
	}
	return o.set(c, v)
}

// FileError is a bad configuration file or environment variable; like
// bad flags, it exits 3.
type FileError struct{ Msg string }

// Error is the message on one line: the TOML parser quotes the input, and
// a quoted newline would split the log line.
func (e *FileError) Error() string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(e.Msg)
}

// LoadFile reads a TOML configuration file over cfg. Unknown keys, wrong
// types and bad values are errors naming the file, the line and the key.
func LoadFile(path string, cfg *Config) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return &FileError{Msg: fmt.Sprintf("configuration file: %v", err)}
	}
	var doc map[string]any
	md, err := toml.Decode(string(raw), &doc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &FileError{Msg: fmt.Sprintf("%s:%d: %s", path, pe.Position.Line, pe.Message)}
		}
		return &FileError{Msg: fmt.Sprintf("%s: %v", path, err)}
	}
	text := string(raw)
	byPath := map[string]fileKey{}
	for _, k := range fileKeys {
		byPath[k.path] = k
	}
	for _, key := range md.Keys() {
		p := key.String()
		k, known := byPath[p]
		if !known {
			// Sections and the tag table's own keys are not leaves.
			if md.Type(key...) == "Hash" && isSection(p) || strings.HasPrefix(p, "tags.") {
				continue
			}
			return &FileError{Msg: fmt.Sprintf("%s:%d: unknown key %q", path, lineOf(text, key), p)}
		}
		vals, err := textValues(k, lookup(doc, key))
		if err == nil {
			if k.typ == tTags || k.typ == tList {
				clearList(cfg, k)
			}
			for _, v := range vals {
				if err = k.apply(cfg, v); err != nil {
					break
				}
			}
		}
		if err != nil {
			return &FileError{Msg: fmt.Sprintf("%s:%d: key %q: %v", path, lineOf(text, key), p, err)}
		}
	}
	return nil
}

func isSection(p string) bool {
	for _, k := range fileKeys {
		if strings.HasPrefix(k.path, p+".") || k.path == p {
			return true
		}
	}
	return false
}

func clearList(cfg *Config, k fileKey) {
	switch k.path {
	case "tags":
		cfg.Tags = nil
	case "snapshot.disks":
		cfg.SnapshotDisks = nil
	}
}

func lookup(doc map[string]any, key toml.Key) any {
	var v any = doc
	for _, part := range key {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// textValues turns a TOML value into the text an option takes, checking
// its type.
func textValues(k fileKey, v any) ([]string, error) {
	typeErr := func(want string) error { return fmt.Errorf("want %s, found %s", want, tomlTypeName(v)) }
	switch k.typ {
	case tString:
		if s, ok := v.(string); ok {
			return []string{s}, nil
		}
		return nil, typeErr("a string")
	case tInt:
		switch x := v.(type) {
		case int64:
			return []string{strconv.FormatInt(x, 10)}, nil
		case string:
			if k.path == "postgres.port" {
				return []string{x}, nil
			}
		}
		return nil, typeErr("an integer")
	case tBool:
		if b, ok := v.(bool); ok {
			return []string{strconv.FormatBool(b)}, nil
		}
		return nil, typeErr("true or false")
	case tSize:
		switch x := v.(type) {
		case string:
			return []string{x}, nil
		case int64:
			return []string{strconv.FormatInt(x, 10)}, nil
		}
		return nil, typeErr(`a size such as "100GB", or a number of bytes`)
	case tList:
		list, ok := v.([]any)
		if !ok {
			return nil, typeErr("a list of strings")
		}
		var out []string
		for _, item := range list {
			s, ok := item.(string)
			if !ok {
				return nil, typeErr("a list of strings")
			}
			out = append(out, s)
		}
		return out, nil
	case tTags:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, typeErr(`a table of KEY = "VALUE"`)
		}
		keys := make([]string, 0, len(m))
		for key := range m {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		var out []string
		for _, key := range keys {
			s, ok := m[key].(string)
			if !ok {
				return nil, fmt.Errorf("tag %q: want a string, found %s", key, tomlTypeName(m[key]))
			}
			out = append(out, csvPair(key, s))
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported key")
}

// csvPair renders a tag as the KEY,VALUE word --tags reads.
func csvPair(k, v string) string {
	quote := func(s string) string {
		if strings.ContainsAny(s, ",\"\n") {
			return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
		return s
	}
	return quote(k) + "," + quote(v)
}

func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a table"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

var sectionLine = regexp.MustCompile(`^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]`)

// lineOf finds the line a key is set on: the TOML library keeps key
// positions to itself.
func lineOf(text string, key toml.Key) int {
	section := strings.Join(key[:len(key)-1], ".")
	name := key[len(key)-1]
	cur := ""
	keyLine := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(name) + `"?\s*=`)
	dotted := regexp.MustCompile(`^\s*` + regexp.QuoteMeta(strings.Join(key, ".")) + `\s*=`)
	for i, line := range strings.Split(text, "\n") {
		if m := sectionLine.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if (cur == section && keyLine.MatchString(line)) || (cur == "" && dotted.MatchString(line)) {
			return i + 1
		}
	}
	return 0
}

// LoadEnv applies BARMAN_CLOUD_BACKUP_* variables over cfg. Lists and tags
// are separated by ";" (tags as KEY,VALUE).
func LoadEnv(cfg *Config) error {
	for _, k := range fileKeys {
		v, ok := os.LookupEnv(k.envName())
		if !ok {
			continue
		}
		vals := []string{v}
		if k.typ == tTags || k.typ == tList {
			clearList(cfg, k)
			vals = nil
			for _, item := range strings.Split(v, ";") {
				if item = strings.TrimSpace(item); item != "" {
					vals = append(vals, item)
				}
			}
		}
		for _, item := range vals {
			if err := k.apply(cfg, item); err != nil {
				return &FileError{Msg: fmt.Sprintf("environment variable %s: %v", k.envName(), err)}
			}
		}
	}
	return nil
}

var (
	passwordKV  = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	passwordURI = regexp.MustCompile(`(postgres(?:ql)?://[^:/@]*:)[^@]*@`)
)
