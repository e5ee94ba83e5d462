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

// fileKeys are the options the TOML file and the environment can set,
// in the table's order.
func fileKeys() []*option {
	var keys []*option
	for _, o := range options {
		if o.key != "" {
			keys = append(keys, o)
		}
	}
	return keys
}

func (o *option) envName() string {
	return envPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(o.key))
}

// applyText sets one file or environment value, given as text, with the
// option's own checks. An empty string leaves a string setting as it is,
// and a 0 an integer or size that is 0 (unset), so printed settings load
// back.
func (o *option) applyText(c *Config, v string) error {
	if (v == "" && o.typ == tString) || (v == "0" && (o.typ == tInt || o.typ == tSize) && fmt.Sprint(o.get(c)) == "0") {
		return nil
	}
	if len(o.choices) > 0 && !contains(o.choices, v) {
		return fmt.Errorf("invalid choice: '%s' (choose from %s)", v, quoteChoices(o.choices))
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

// clearList empties a list setting before the file or the environment
// gives it: their value replaces the one before, as a flag's does.
func (o *option) clearList(c *Config) {
	switch o.typ {
	case tTags:
		c.Tags = nil
	case tList:
		c.Snapshot.Disks = nil
	}
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
	byPath := map[string]*option{}
	for _, k := range fileKeys() {
		byPath[k.key] = k
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
			k.clearList(cfg)
			for _, v := range vals {
				if err = k.applyText(cfg, v); err != nil {
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
	for _, k := range fileKeys() {
		if strings.HasPrefix(k.key, p+".") || k.key == p {
			return true
		}
	}
	return false
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
func textValues(k *option, v any) ([]string, error) {
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
			if k.key == "postgres.port" {
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
	for _, k := range fileKeys() {
		v, ok := os.LookupEnv(k.envName())
		if !ok {
			continue
		}
		vals := []string{v}
		if k.typ == tTags || k.typ == tList {
			k.clearList(cfg)
			vals = nil
			for _, item := range strings.Split(v, ";") {
				if item = strings.TrimSpace(item); item != "" {
					vals = append(vals, item)
				}
			}
		}
		for _, item := range vals {
			if err := k.applyText(cfg, item); err != nil {
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
