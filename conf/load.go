package conf

import (
	"fmt"
	"os"
	"strings"
)

// Load builds the run's configuration: defaults, then the TOML file
// (--config or $BARMAN_CLOUD_BACKUP_CONFIG), then BARMAN_CLOUD_BACKUP_*
// environment variables, then the command line; each wins over the
// ones before it.
func Load(args []string) (Config, Action, error) {
	cfg := Defaults()
	if err := loadSettings(args, &cfg); err != nil {
		return cfg, ActionRun, err
	}
	action, err := Parse(args, &cfg)
	return cfg, action, err
}

// loadSettings applies the TOML file (--config or $BARMAN_CLOUD_BACKUP_CONFIG)
// then the environment over cfg: what lies under the command line.
func loadSettings(args []string, cfg *Config) error {
	path := configFlag(args)
	if path == "" {
		path = os.Getenv(EnvConfig)
	}
	if path != "" {
		if err := LoadFile(path, cfg); err != nil {
			return err
		}
		cfg.ConfigFile = path
	}
	return LoadEnv(cfg)
}

// configFlag finds --config's value before the full parse, which needs
// the file's settings underneath it. Parse checks the flag again.
func configFlag(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		if len(name) < 4 || !strings.HasPrefix("--config", name) {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// TOML renders the effective configuration as a configuration file that
// loads back, with a conninfo's password masked.
func (c *Config) TOML() string {
	var b strings.Builder
	for _, sec := range sections() {
		if sec != "" {
			fmt.Fprintf(&b, "\n[%s]\n", sec)
		}
		for _, k := range fileKeys() {
			if s, name := k.section(); s == sec && k.typ != tTags {
				fmt.Fprintf(&b, "%s = %s\n", name, tomlValue(k.get(c)))
			}
		}
	}
	b.WriteString("\n[tags]\n")
	for _, kv := range c.Tags {
		fmt.Fprintf(&b, "%s = %s\n", quote(kv[0]), quote(kv[1]))
	}
	return b.String()
}

// section splits a key into its TOML table ("" for the top level) and
// its name there.
func (o *option) section() (string, string) {
	if sec, name, ok := strings.Cut(o.key, "."); ok {
		return sec, name
	}
	return "", o.key
}

// sections are the TOML tables, the top level first, then in the order of
// the option table.
func sections() []string {
	out := []string{""}
	for _, k := range fileKeys() {
		if sec, _ := k.section(); !contains(out, sec) {
			out = append(out, sec)
		}
	}
	return out
}

// tomlValue writes a value as TOML.
func tomlValue(v any) string {
	switch x := v.(type) {
	case string:
		return quote(x)
	case []string:
		return quoteList(x)
	}
	return fmt.Sprint(v)
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// MaskPassword hides the password of a conninfo string or URI.
func MaskPassword(conninfo string) string {
	out := passwordKV.ReplaceAllString(conninfo, "${1}xxxxx")
	return passwordURI.ReplaceAllString(out, "${1}xxxxx@")
}
