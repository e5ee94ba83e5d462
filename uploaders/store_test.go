package uploaders

import (
	"reflect"
	"strings"
	"testing"
)

// Paths as Python's urllib.parse.urlparse gives them (printed by it).
func TestURLPathIsPythons(t *testing.T) {
	for raw, want := range map[string]string{
		"s3://b/a b/%2F": "/a b/%2F",
		"s3://b//x/":     "//x/",
		"s3://b":         "",
		"s3://b/x?y#z":   "/x",
		"s3://b/x;p":     "/x;p",
		"https://acct.blob.core.windows.net/c/p;q": "/c/p",
		"http://127.0.0.1:10000/acct/c/a/b?sig=1":  "/acct/c/a/b",
		"https://h/c/x;y/z;w":                      "/c/x;y/z",
		"s3://b/%41//":                             "/%41//",
	} {
		if got := urlPath(raw); got != want {
			t.Errorf("urlPath(%q) = %q, want %q", raw, got, want)
		}
	}
}

// parse picks the provider from the option and the URL alone.
func TestParsePicksTheProvider(t *testing.T) {
	getenv := env("AZURE_STORAGE_CONNECTION_STRING", testConnStr)
	for _, c := range []struct {
		url, provider string
		want          destination
	}{
		{"s3://b/p", "", &s3Config{}},
		{"s3://b/p", "aws-s3", &s3Config{}},
		{"https://a.blob.core.windows.net/c/p", "azure-blob-storage", &azureConfig{}},
		{"gs://b/p", "google-cloud-storage", &gcsConfig{}},
		{"file:///var/backups", "", &fileConfig{}},
		{"FILE:///var/backups", "google-cloud-storage", &fileConfig{}},
	} {
		got, err := parse(c.url, Options{Provider: c.provider}, getenv)
		if err != nil || reflect.TypeOf(got) != reflect.TypeOf(c.want) {
			t.Errorf("%s with %q: %T, %v; want %T", c.url, c.provider, got, err, c.want)
		}
	}
	for _, c := range []struct{ url, provider, want string }{
		{"s3://b/p", "ibm-cos", `cloud provider "ibm-cos" is not supported`},
		{"file://host/x", "", "only local paths"},
		{"file://relative", "", "only local paths"},
		{"file:", "", "not an absolute path"},
		{"s3://b/p%zz", "", `invalid destination URL "s3://b/p%zz"`},
		{"https://a.blob.core.windows.net/c/p%zz", "azure-blob-storage", `invalid URL escape "%zz"`},
		{"gs://b%2Fc/p", "google-cloud-storage", `invalid URL escape "%2F"`},
	} {
		if _, err := parse(c.url, Options{Provider: c.provider}, getenv); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
	}
}
