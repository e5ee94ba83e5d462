package uploaders

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const testConnStr = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" +
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"

// env is a fixed environment for parse, in place of os.LookupEnv.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseAzure(t *testing.T) {
	connStr := env("AZURE_STORAGE_CONNECTION_STRING", testConnStr)
	for _, c := range []struct {
		url    string
		opts   Options
		getenv func(string) (string, bool)
		want   azureConfig
	}{
		{"https://acct.blob.core.windows.net/cont/a/b", Options{}, env(),
			azureConfig{accountURL: "https://acct.blob.core.windows.net", account: "acct", container: "cont", prefix: "a/b", auth: azureDefault, credential: "default"}},
		{"https://acct.blob.core.windows.net/cont", Options{Credential: "managed-identity"}, connStr,
			azureConfig{accountURL: "https://acct.blob.core.windows.net", account: "acct", container: "cont", auth: azureCredential, credential: "managed-identity"}},
		{"http://127.0.0.1:10000/devstoreaccount1/c/pg", Options{}, connStr,
			azureConfig{accountURL: "http://127.0.0.1:10000/devstoreaccount1", account: "devstoreaccount1", container: "c", prefix: "pg", auth: azureConnStr, secret: testConnStr}},
		{"https://acct.blob.core.windows.net/c/p", Options{}, env("AZURE_STORAGE_SAS_TOKEN", "?sv=1&sig=x", "AZURE_STORAGE_KEY", "k"),
			azureConfig{accountURL: "https://acct.blob.core.windows.net", account: "acct", container: "c", prefix: "p", auth: azureSAS, secret: "sv=1&sig=x"}},
		{"https://acct.blob.core.windows.net/c/p", Options{}, env("AZURE_STORAGE_KEY", "k"),
			azureConfig{accountURL: "https://acct.blob.core.windows.net", account: "acct", container: "c", prefix: "p", auth: azureKey, secret: "k"}},
	} {
		got, err := parseAzure(c.url, c.opts, c.getenv)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		got.timeout, got.jobs = 0, 0
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%s %+v:\n got %+v\nwant %+v", c.url, c.opts, *got, c.want)
		}
	}
	for _, c := range []struct {
		url, opt string
		getenv   func(string) (string, bool)
		want     string
	}{
		{"https://acct.blob.core.windows.net/", "", env(), "malformed: no container"},
		{"http://127.0.0.1:10000/devstoreaccount1", "", connStr, "malformed: use http://HOST:PORT/ACCOUNT/CONTAINER/PATH"},
		{"ftp://x/y/z", "", env(), "malformed"},
		{"http://127.0.0.1:10000/acct/c/p", "", env(), "A connection string must be provided"},
		{"http://127.0.0.1:10000/acct/c/p", "azure-cli", connStr, "--credential azure-cli needs an account URL"},
	} {
		_, err := parseAzure(c.url, Options{Credential: c.opt}, c.getenv)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
	}
}

func TestAzureClassifyRedacts(t *testing.T) {
	a := &Azure{secrets: []string{"topsecret"}}
	err := a.classify(errors.New("GET https://a.blob.core.windows.net/c?sv=2020&sig=abc%2Fdef&se=1 failed: key topsecret\nline two"))
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
