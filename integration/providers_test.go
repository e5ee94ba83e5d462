//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// Azure: our backups to Azurite are listed, shown and restored by
// Barman's own tools, and recovered with its WAL restore from Azure.
func TestAzureRoundTrip(t *testing.T) {
	a := StartAzurite(t, "backups")
	w := &world{store: a.Container(t, "backups"), env: a.Env(), cloud: []string{"--cloud-provider", "azure-blob-storage"},
		dest: a.Endpoint + "/backups/nightly/pg", prefix: "nightly/pg", server: "main"}
	w.startSource(t, nil)
	for i, c := range []struct {
		name  string
		args  []string
		split bool
	}{
		{"gzip", []string{"--tags", "team,dba", "-z"}, false},
		{"gzip-split", []string{"-z", "-S", "1MB", "-J", "4"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := w.backup(t, c.args...)
			names := w.names(t, id)
			for _, want := range []string{"backup.info", "data.tar.gz", "16384.tar.gz"} {
				if !contains(names, want) {
					t.Errorf("object %s missing from %v", want, names)
				}
			}
			if c.split != contains(names, "data_0001.tar.gz") {
				t.Errorf("split=%v but objects are %v", c.split, names)
			}
			if contains(c.args, "--tags") {
				for _, n := range names {
					if tags := w.store.(*azureContainer).Tags(t, w.basePrefix(id)+n); tags["team"] != "dba" {
						t.Errorf("%s: blob index tags %v", n, tags)
					}
				}
			}
			show := mustRun(t, w.env, "barman-cloud-backup-show", append(w.cloud, w.dest, w.server, id)...)
			if !strings.Contains(show, "Status                 : DONE") {
				t.Errorf("barman-cloud-backup-show:\n%s", show)
			}
			w.change(t, 20+i)
			if !c.split {
				w.checkRestored(t, w.restoreWithBarman(t, id))
				return
			}
			// Ours restores from Azure the same files as Barman's restore
			// (whose restore starts in the subtest above); ours starts.
			barmanDir := w.barmanRestore(t, id)
			ours, _ := w.restoreWithOurs(t, id, "-J", "4")
			sameTree(t, "Barman's restore, then ours", barmanDir, ours)
			w.checkRestored(t, w.startRestored(t, ours))
		})
	}
}

// GCS: Debian has no Python GCS client for Barman, so the layout written
// to fake-gcs-server is compared with an S3 backup taken with the same
// options, and the downloaded parts must make a cluster that starts; our
// restore from GCS writes the same files.
func TestGCSLayoutAndRestore(t *testing.T) {
	s3, _ := newS3World(t)
	// No writes between the two backups, so the uncompressed archives
	// have the same sizes and split at the same places.
	s3.src.Exec(t, "ALTER SYSTEM SET autovacuum = off", "SELECT pg_reload_conf()")
	g := StartFakeGCS(t, "backups")
	gcs := &world{store: g.Bucket("backups"), env: append(append([]string{}, s3.env...), g.Env()...),
		cloud: []string{"--cloud-provider", "google-cloud-storage"}, dest: "gs://backups/nightly/pg",
		prefix: "nightly/pg", server: "main", src: s3.src}
	for i, args := range [][]string{{"-z"}, {"-S", "8MB", "-J", "4"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			s3.src.Exec(t, "CHECKPOINT")
			want := s3.names(t, s3.backup(t, args...))
			s3.src.Exec(t, "CHECKPOINT")
			id := gcs.backupTo(t, args...)
			got := gcs.names(t, id)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("GCS objects %v, S3 objects %v", got, want)
			}
			if split := contains(args, "-S"); split != contains(got, "data_0001.tar") {
				t.Errorf("split=%v but objects are %v", split, got)
			}
			if md := g.Bucket("backups").Metadata(t, gcs.basePrefix(id)+"backup.info"); len(md) != 0 {
				t.Errorf("unexpected metadata %v", md)
			}
			if tmp := g.Bucket("backups").Keys(t, "nightly/pg/.bcb-parts/"); len(tmp) != 0 {
				t.Errorf("temporary parts left: %v", tmp)
			}
			parts := map[string]func() io.Reader{}
			for _, n := range got {
				key := gcs.basePrefix(id) + n
				parts[n] = func() io.Reader {
					raw := gcs.store.Get(t, key)
					if !strings.HasSuffix(n, ".gz") {
						return bytes.NewReader(raw)
					}
					cmd := exec.Command("gzip", "-dc")
					cmd.Stdin = bytes.NewReader(raw)
					out, err := cmd.Output()
					if err != nil {
						t.Fatalf("gzip -dc %s: %v", n, err)
					}
					return bytes.NewReader(out)
				}
			}
			dir := manualRestore(t, parts, got, "16384")
			if split := contains(args, "-S"); split {
				// Ours restores from GCS the files GNU tar unpacked; its
				// restore starts in their stead.
				ours, _ := gcs.restoreWithOurs(t, id, "-J", "4")
				sameTree(t, "GNU tar, then our restore", dir, ours)
				dir = ours
			}
			s3.change(t, 30+i)
			// WAL is archived to S3 by the source; recovery reads it there.
			s3.checkRestored(t, StartRestored(t, dir, s3.restoreCommand(), s3.env))
		})
	}
	t.Run("tags-as-metadata", func(t *testing.T) {
		id := gcs.backupTo(t, "--tags", "team,dba", "-z")
		for _, n := range gcs.names(t, id) {
			if md := g.Bucket("backups").Metadata(t, gcs.basePrefix(id)+n); md["team"] != "dba" {
				t.Errorf("%s metadata %v", n, md)
			}
		}
	})
}

// backupTo runs our binary against the world's destination and returns
// the new backup ID; for providers Barman cannot list here.
func (w *world) backupTo(t *testing.T, args ...string) string {
	t.Helper()
	before := map[string]bool{}
	for _, k := range w.store.Keys(t, w.prefix+"/"+w.server+"/base/") {
		before[strings.Split(strings.TrimPrefix(k, w.prefix+"/"+w.server+"/base/"), "/")[0]] = true
	}
	waitNextSecond()
	full := append(append(append([]string{}, w.cloud...), "-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port), "-U", "postgres",
		"--immediate-checkpoint"), args...)
	r := runCmd(t, w.env, binary, append(full, w.dest, w.server)...)
	if r.code != 0 {
		t.Fatalf("backup %q exited %d:\n%s", args, r.code, r.stderr)
	}
	for _, k := range w.store.Keys(t, w.prefix+"/"+w.server+"/base/") {
		id := strings.Split(strings.TrimPrefix(k, w.prefix+"/"+w.server+"/base/"), "/")[0]
		if !before[id] {
			return id
		}
	}
	t.Fatalf("no new backup after %q", args)
	return ""
}

// -t and bad input for Azure and GCS: Barman's exit codes, one line,
// and never a secret.
func TestProviderInputs(t *testing.T) {
	a := StartAzurite(t, "probe")
	g := StartFakeGCS(t, "probe")
	deadAzure := fmt.Sprintf("http://127.0.0.1:%d/%s", freePort(t), azuriteAccount)
	wrongKey := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" +
		"c2VjcmV0LWtleS10aGF0LWlzLXdyb25nLXNlY3JldC1rZXktdGhhdC1pcy13cm9uZw==;BlobEndpoint=" + a.Endpoint + ";"
	azure := []string{"--cloud-provider", "azure-blob-storage"}
	gcs := []string{"--cloud-provider", "google-cloud-storage"}
	for _, c := range []struct {
		name   string
		env    []string
		args   []string
		code   int
		msg    string
		secret string
	}{
		{"azure-test-ok", a.Env(), append(azure, "-t", a.Endpoint+"/probe/x", "srv"), 0, "", ""},
		{"azure-unreachable", []string{"AZURE_STORAGE_CONNECTION_STRING=" + strings.Replace(a.ConnStr, a.Endpoint, deadAzure, 1)},
			append(azure, "-t", deadAzure+"/probe/x", "srv"), 2, "can't connect to cloud provider", ""},
		{"azure-wrong-key", []string{"AZURE_STORAGE_CONNECTION_STRING=" + wrongKey},
			append(azure, "-t", a.Endpoint+"/probe/x", "srv"), 2, "HTTP 403 AuthorizationFailure", "c2VjcmV0LWtleS10aGF0"},
		{"azure-emulator-without-connection-string", nil,
			append(azure, "-t", a.Endpoint+"/probe/x", "srv"), 4, "A connection string must be provided", ""},
		{"azure-empty-connection-string", []string{"AZURE_STORAGE_CONNECTION_STRING="},
			append(azure, "-t", a.Endpoint+"/probe/x", "srv"), 4, "not a valid connection string", ""},
		{"azure-malformed", a.Env(), append(azure, "-t", "https://acct.blob.core.windows.net", "srv"), 4, "is malformed", ""},
		{"azure-bad-connection-string", []string{"AZURE_STORAGE_CONNECTION_STRING=AccountKey=s3cr3t-value"},
			append(azure, "-t", a.Endpoint+"/probe/x", "srv"), 4, "not a valid connection string", "s3cr3t-value"},
		{"azure-s3-option", a.Env(), append(azure, "--endpoint-url", "http://127.0.0.1:1", a.Endpoint+"/probe/x", "srv"), 3,
			"--endpoint-url is an option of the aws-s3 cloud provider", ""},
		{"azure-missing-container", a.Env(), append(azure, "-t", a.Endpoint+"/nosuch/x", "srv"), 1, "Bucket nosuch does not exist", ""},
		{"gcs-test-ok", g.Env(), append(gcs, "-t", "gs://probe/x", "srv"), 0, "", ""},
		{"gcs-missing-bucket", g.Env(), append(gcs, "-t", "gs://nosuch/x", "srv"), 1, "Bucket nosuch does not exist", ""},
		{"gcs-unreachable", []string{fmt.Sprintf("STORAGE_EMULATOR_HOST=127.0.0.1:%d", freePort(t))},
			append(gcs, "-t", "gs://probe/x", "srv"), 2, "can't connect to cloud provider", ""},
		{"gcs-malformed", g.Env(), append(gcs, "-t", "s3://probe/x", "srv"), 4, "Google cloud storage URL s3://probe/x is malformed", ""},
		{"gcs-azure-option", g.Env(), append(gcs, "--encryption-scope", "x", "gs://probe/x", "srv"), 3,
			"--encryption-scope is an option of the azure-blob-storage cloud provider", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCmd(t, c.env, binary, c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, c.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.msg) {
				t.Errorf("stderr lacks %q:\n%s", c.msg, r.stderr)
			}
			if c.code != 0 && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("want one line:\n%s", r.stderr)
			}
			if c.secret != "" && strings.Contains(r.stderr+r.stdout, c.secret) {
				t.Errorf("secret in the output:\n%s", r.stderr)
			}
		})
	}
	// -t creates nothing.
	if keys := a.Container(t, "probe").Keys(t, ""); len(keys) != 0 {
		t.Errorf("azure objects after -t: %v", keys)
	}
}
