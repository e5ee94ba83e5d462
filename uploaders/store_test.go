package uploaders

import "testing"

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
