package uploaders

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/ini.v1"
)

// s3Settings are the S3-specific settings boto3 users keep in the AWS
// config file, in the nested "s3 =" block of their profile, which
// botocore reads (configprovider.py, DEFAULT_S3_CONFIG_VARS) and Barman
// so obeys. Neither has an environment variable.
type s3Settings struct {
	// addressingStyle is "path", "virtual" or "auto" ("" is auto).
	addressingStyle string
	// payloadSigning signs every payload with its SHA-256 even over
	// https, where it is otherwise sent as UNSIGNED-PAYLOAD.
	payloadSigning bool
}

// loadS3Settings reads the profile's s3 block from $AWS_CONFIG_FILE or
// ~/.aws/config; a missing file or profile leaves the defaults.
func loadS3Settings(profile string) (s3Settings, error) {
	var st s3Settings
	file := os.Getenv("AWS_CONFIG_FILE")
	if file == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return st, nil
		}
		file = filepath.Join(home, ".aws", "config")
	}
	cfg, err := ini.LoadSources(ini.LoadOptions{AllowPythonMultilineValues: true, Insensitive: false}, file)
	if err != nil {
		return st, nil // no config file: botocore's defaults
	}
	if profile == "" {
		profile = os.Getenv("AWS_PROFILE")
	}
	section := "default"
	if profile != "" && profile != "default" {
		section = "profile " + profile
	}
	for _, line := range strings.Split(cfg.Section(section).Key("s3").String(), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "addressing_style":
			if v != "path" && v != "virtual" && v != "auto" {
				return st, fmt.Errorf("%s, profile %s: s3 addressing_style %q: use path, virtual or auto", file, section, v)
			}
			st.addressingStyle = v
		case "payload_signing_enabled":
			st.payloadSigning = strings.EqualFold(v, "true")
		}
	}
	return st, nil
}
