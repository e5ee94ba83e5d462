//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secrets never show: at any verbosity, in success and in failure, in
// stdout, stderr or the uploaded backup.info.
func TestSecretsNeverShow(t *testing.T) {
	m := StartMinIO(t, "secrets")
	src := StartPostgres(t, nil, nil) // trust authentication: the passwords below are ignored
	secrets := []string{m.SecretKey, "fake-pg-password-1", "fake-conninfo-password-2", "fake-azure-key-3",
		"fake-sas-signature-4", "fake-azure-connection-5", "fake-wrong-secret-6"}
	env := append(m.Env(), "PGPASSWORD="+secrets[1], "AZURE_STORAGE_KEY="+secrets[3],
		"AZURE_STORAGE_SAS_TOKEN=sv=2020&sig="+secrets[4], "AZURE_STORAGE_CONNECTION_STRING=AccountKey="+secrets[5])
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres password=%s", src.Port, secrets[2])
	check := func(t *testing.T, what, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds secret %q:\n%s", what, s, text)
			}
		}
	}
	summary := filepath.Join(t.TempDir(), "summary.json")
	for i, v := range []string{"-q", "", "-v", "-vv", "--log-format=json"} {
		t.Run("verbosity"+v, func(t *testing.T) {
			args := []string{"--endpoint-url", m.Endpoint, "-d", conninfo, "--immediate-checkpoint", "-z", "--json-summary", summary}
			if v != "" {
				args = append(args, v)
			}
			if v == "--log-format=json" {
				args = append(args, "-vv")
			}
			dest := fmt.Sprintf("s3://secrets/run%d", i)
			r := runCmd(t, env, binary, append(args, dest, "main")...)
			if r.code != 0 {
				t.Fatalf("exit %d:\n%s", r.code, r.stderr)
			}
			if v == "-vv" && !strings.Contains(r.stderr, "DEBUG") {
				t.Fatalf("-vv logged no debug lines: the check would prove little")
			}
			check(t, "output", r.stdout+r.stderr)
			js, _ := os.ReadFile(summary)
			check(t, "the JSON summary", string(js))
			for _, k := range m.Keys(t, "secrets", fmt.Sprintf("run%d/", i)) {
				if strings.HasSuffix(k, "backup.info") {
					check(t, k, string(m.Get(t, "secrets", k)))
				}
			}
			pc := runCmd(t, env, binary, append(args, "--print-config", dest, "main")...)
			check(t, "--print-config", pc.stdout+pc.stderr)
		})
	}
	t.Run("wrong-secret", func(t *testing.T) {
		bad := append(append([]string{}, env...), "AWS_SECRET_ACCESS_KEY="+secrets[6])
		for _, format := range []string{"text", "json"} {
			r := runCmd(t, bad, binary, "-vv", "--log-format", format, "--json-summary", summary, "--endpoint-url", m.Endpoint,
				"-d", conninfo, "s3://secrets/bad", "main")
			if r.code == 0 {
				t.Fatal("a wrong secret key was accepted")
			}
			check(t, "output", r.stdout+r.stderr)
			js, _ := os.ReadFile(summary)
			check(t, "the JSON summary of a failure", string(js))
		}
	})
	t.Run("bad-conninfo", func(t *testing.T) {
		r := runCmd(t, env, binary, "-vv", "--endpoint-url", m.Endpoint, "-d", "host=127.0.0.1 port=1 password="+secrets[2]+" sslmode=bogus", "s3://secrets/bad", "main")
		if r.code == 0 {
			t.Fatal("a bad conninfo was accepted")
		}
		check(t, "output", r.stdout+r.stderr)
	})
}
