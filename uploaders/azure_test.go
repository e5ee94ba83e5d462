package uploaders

import (
	"context"
	"errors"
	"strings"
	"testing"
)

const testConnStr = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" +
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"

func TestAzureURLs(t *testing.T) {
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", testConnStr)
	for url, want := range map[string][2]string{
		"https://acct.blob.core.windows.net/cont/a/b":  {"cont", "a/b"},
		"https://acct.blob.core.windows.net/cont":      {"cont", ""},
		"http://127.0.0.1:10000/devstoreaccount1/c/pg": {"c", "pg"},
	} {
		a, err := NewAzure(url, Options{})
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		if a.container != want[0] || a.prefix != want[1] {
			t.Errorf("%s: container %q prefix %q, want %v", url, a.container, a.prefix, want)
		}
	}
	for _, url := range []string{"https://acct.blob.core.windows.net/", "http://127.0.0.1:10000/devstoreaccount1", "ftp://x/y/z"} {
		if _, err := NewAzure(url, Options{}); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("%s: %v", url, err)
		}
	}
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	if _, err := NewAzure("http://127.0.0.1:10000/acct/c/p", Options{Credential: "azure-cli"}); err == nil {
		t.Error("--credential with emulated storage was accepted")
	}
}

func TestAzureRedact(t *testing.T) {
	a := &Azure{secrets: []string{"topsecret"}}
	err := a.redact(errors.New("GET https://a.blob.core.windows.net/c?sv=2020&sig=abc%2Fdef&se=1 failed: key topsecret\nline two"))
	if msg := err.Error(); strings.Contains(msg, "abc%2Fdef") || strings.Contains(msg, "topsecret") || strings.Contains(msg, "\n") {
		t.Errorf("redact left %q", msg)
	}
}

func TestBlockIDsAreBarmans(t *testing.T) {
	// Barman's Python SDK base64-encodes str(part).zfill(5).
	if got := blockID(7); got != "MDAwMDc=" {
		t.Errorf("blockID(7) = %s", got)
	}
}

func TestGCSURLs(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9")
	for url, want := range map[string][2]string{
		"gs://bucket/a/b/": {"bucket", "a/b"},
		"gs://bucket":      {"bucket", ""},
		"https://console.cloud.google.com/storage/browser/bkt/x": {"bkt", "x"},
	} {
		g, err := NewGCS(context.Background(), url, Options{})
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		if g.name != want[0] || g.prefix != want[1] {
			t.Errorf("%s: bucket %q prefix %q, want %v", url, g.name, g.prefix, want)
		}
	}
	for _, url := range []string{"gs:///x", "s3://b/p"} {
		if _, err := NewGCS(context.Background(), url, Options{}); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Errorf("%s: %v", url, err)
		}
	}
}
