//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

// The rules real S3-compatible stores enforce and MinIO does not, put in
// force by the proxy in front of MinIO, each alone and all together: our
// backups pass, and Barman restores them.
func TestStoreRules(t *testing.T) {
	w, m := newS3World(t)
	p := StartFaultProxy(t, m.Endpoint)
	via := []string{"--endpoint-url", p.Endpoint}
	backup := func(t *testing.T, rules StoreRules, args ...string) string {
		t.Helper()
		p.SetStoreRules(rules)
		id := w.backup(t, append(append([]string{}, via...), args...)...)
		if refused := p.Refused(); len(refused) > 0 {
			t.Errorf("requests refused: %v", refused)
		}
		return id
	}

	t.Run("content-md5", func(t *testing.T) {
		backup(t, StoreRules{RequireMD5: true})
		bodies := 0
		for _, r := range p.Requests() {
			if r.Method != http.MethodPut || r.Size == 0 {
				continue
			}
			bodies++
			// Over http the payload is signed with its SHA-256, as botocore
			// signs it for Barman; never streamed in aws-chunked.
			if sha := r.Header.Get("X-Amz-Content-Sha256"); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sha) {
				t.Errorf("PUT %s: X-Amz-Content-Sha256 %q, want the body's SHA-256", r.Path, sha)
			}
			if r.Header.Get("Content-Length") == "" && r.Size > 0 && r.Header.Get("Transfer-Encoding") != "" {
				t.Errorf("PUT %s without a plain Content-Length", r.Path)
			}
		}
		if bodies < 3 {
			t.Errorf("only %d bodies sent", bodies)
		}
	})
	t.Run("no-streaming-no-checksum-headers", func(t *testing.T) {
		backup(t, StoreRules{RefuseStreaming: true})
	})
	t.Run("equal-parts", func(t *testing.T) {
		p.SetStoreRules(StoreRules{EqualParts: true})
		id := backup(t, StoreRules{EqualParts: true})
		sizes := map[string][]int64{}
		for _, r := range p.Requests() {
			if r.Method == http.MethodPut && r.Query.Has("partNumber") && strings.Contains(r.Path, id) {
				sizes[r.Query.Get("uploadId")] = append(sizes[r.Query.Get("uploadId")], r.Size)
			}
		}
		multipart := 0
		for _, s := range sizes {
			if len(s) > 1 {
				multipart++
			}
		}
		if multipart == 0 {
			t.Fatalf("no object went up in several parts: the rule was not exercised (%v)", sizes)
		}
	})
	t.Run("part-count-ceiling", func(t *testing.T) {
		// Scaleway allows 1,000 parts; here the ceiling is 3, and the
		// data archive needs 4 parts of 8 MiB: refused, with the operation
		// and the store's words, and nothing left open.
		p.SetStoreRules(StoreRules{MaxParts: 3})
		r := w.run(t, append(append([]string{}, via...), "-v")...)
		if r.code != 1 || !strings.Contains(r.stderr, "UploadPart") || !strings.Contains(r.stderr, "Part number must be an integer between 1 and 3") {
			t.Fatalf("exit %d, want 1 naming UploadPart and the store's rule:\n%s", r.code, tail(r.stderr, 10))
		}
		if left := incomplete(t, m, "backups"); len(left) > 0 {
			t.Errorf("uploads left open: %v", left)
		}
		// --min-chunk-size fits the archive in fewer, larger parts.
		backup(t, StoreRules{MaxParts: 3}, "--min-chunk-size", "16MB")
	})
	t.Run("no-tagging", func(t *testing.T) {
		backup(t, StoreRules{NoTagging: true})
		p.SetStoreRules(StoreRules{NoTagging: true})
		r := w.run(t, append(append([]string{}, via...), "--tag", "team,dba")...)
		if r.code != 1 || !strings.Contains(r.stderr, "Tagging is not implemented") {
			t.Errorf("tags on a store without tagging: exit %d, want 1 with the store's answer:\n%s", r.code, tail(r.stderr, 5))
		}
	})
	t.Run("all-together", func(t *testing.T) {
		id := backup(t, StoreRules{RequireMD5: true, RefuseStreaming: true, EqualParts: true, MaxParts: 3, NoTagging: true},
			"-z", "--min-chunk-size", "16MB")
		if left := incomplete(t, m, "backups"); len(left) > 0 {
			t.Errorf("uploads left open: %v", left)
		}
		w.change(t, 60)
		w.checkRestored(t, w.restoreWithBarman(t, id))
	})
}

// A reply lost after the store acted (the connection drops before the
// answer) on each request that is not simply repeatable: each backup ends
// DONE, with nothing left open and no false clash with itself.
func TestLostReplies(t *testing.T) {
	w, m := newS3World(t)
	p := StartFaultProxy(t, m.Endpoint)
	for _, c := range []struct {
		name  string
		match func(r *http.Request) bool
	}{
		{"CreateMultipartUpload", func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("uploads") }},
		{"UploadPart", IsPart},
		{"CompleteMultipartUpload", func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("uploadId") }},
		{"lock", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".lock")
		}},
		{"backup.info", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/backup.info")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			lost := false
			p.SetRule(func(r *http.Request) Fault {
				if !lost && c.match(r) {
					lost = true
					return LostReply
				}
				return Pass
			})
			id, log := w.backupLog(t, "--endpoint-url", p.Endpoint, "-J", "3")
			if p.Seen(LostReply) == 0 {
				t.Fatalf("no %s reply was lost: %s", c.name, p)
			}
			if !strings.Contains(log, "retrying in") {
				t.Errorf("the lost reply was not retried:\n%s", tail(log, 10))
			}
			if left := incomplete(t, m, "backups"); len(left) > 0 {
				t.Errorf("uploads left open: %v", left)
			}
			for _, k := range m.Keys(t, "backups", w.prefix+"/") {
				if strings.HasSuffix(k, ".lock") {
					t.Errorf("lock left: %s", k)
				}
			}
			if c.name == "CompleteMultipartUpload" {
				w.change(t, 61)
				w.checkRestored(t, w.restoreWithBarman(t, id))
			}
		})
		p.SetRule(func(*http.Request) Fault { return Pass })
	}

	// The same on Azure and GCS, where a retried commit or compose simply
	// succeeds again and a conditional create is read back.
	a := StartAzurite(t, "lost")
	ap := StartFaultProxy(t, strings.TrimSuffix(a.Endpoint, "/"+azuriteAccount))
	azure := &world{store: a.Container(t, "lost"), cloud: []string{"--cloud-provider", "azure-blob-storage"},
		env:  []string{"AZURE_STORAGE_CONNECTION_STRING=" + strings.Replace(a.ConnStr, strings.TrimSuffix(a.Endpoint, "/"+azuriteAccount), ap.Endpoint, 1)},
		dest: ap.Endpoint + "/" + azuriteAccount + "/lost/pg", prefix: "pg", server: "main", src: w.src}
	g := StartFakeGCS(t, "lost")
	gp := StartFaultProxy(t, "http://"+g.Host)
	gp.RewriteHost = true
	gcs := &world{store: g.Bucket("lost"), cloud: []string{"--cloud-provider", "google-cloud-storage"},
		env:  []string{"STORAGE_EMULATOR_HOST=" + strings.TrimPrefix(gp.Endpoint, "http://")},
		dest: "gs://lost/pg", prefix: "pg", server: "main", src: w.src}
	for _, c := range []struct {
		name  string
		w     *world
		p     *FaultProxy
		match func(r *http.Request) bool
	}{
		{"azure-lock", azure, ap, func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, ".lock")
		}},
		{"azure-block", azure, ap, func(r *http.Request) bool { return r.URL.Query().Get("comp") == "block" }},
		{"azure-commit", azure, ap, func(r *http.Request) bool { return r.URL.Query().Get("comp") == "blocklist" }},
		{"gcs-lock", gcs, gp, func(r *http.Request) bool { return r.URL.Query().Get("ifGenerationMatch") == "0" }},
		{"gcs-compose", gcs, gp, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/compose") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			lost := false
			c.p.SetRule(func(r *http.Request) Fault {
				if !lost && c.match(r) {
					lost = true
					return LostReply
				}
				return Pass
			})
			defer c.p.SetRule(func(*http.Request) Fault { return Pass })
			id := c.w.backupTo(t, "-J", "3", "-S", "16MB")
			if c.p.Seen(LostReply) == 0 {
				t.Fatalf("no reply was lost: %s", c.p)
			}
			names := c.w.names(t, id)
			if !contains(names, "backup.info") || !contains(names, "data.tar") {
				t.Errorf("objects %v", names)
			}
			info := string(c.w.store.Get(t, c.w.basePrefix(id)+"backup.info"))
			if !strings.Contains(info, "status=DONE") {
				t.Errorf("backup.info:\n%s", info)
			}
			for _, k := range c.w.store.Keys(t, "") {
				if strings.HasSuffix(k, ".lock") || strings.Contains(k, ".bcb-parts/") {
					t.Errorf("left behind: %s", k)
				}
			}
		})
	}
}

// Least privilege: a user allowed to list only its prefix and to write
// objects only under it backs up with no bucket-wide request; the same
// user on another prefix gets one line naming the refused operation.
func TestLeastPrivilege(t *testing.T) {
	w, m := newS3World(t)
	policy := `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::backups"],
		 "Condition":{"StringLike":{"s3:prefix":["nightly","nightly/*"]}}},
		{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:DeleteObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],
		 "Resource":["arn:aws:s3:::backups/nightly/*"]}]}`
	env := m.RestrictedEnv(t, policy)
	p := StartFaultProxy(t, m.Endpoint)
	user := &world{store: w.store, env: env, cloud: []string{"--endpoint-url", p.Endpoint}, dest: w.dest,
		prefix: w.prefix, server: w.server, src: w.src}
	if r := runCmd(t, env, binary, "-t", "--endpoint-url", p.Endpoint, w.dest, w.server); r.code != 0 {
		t.Fatalf("-t with the prefix's user: exit %d:\n%s", r.code, r.stderr)
	}
	id := user.backupTo(t, "-z")
	for _, r := range p.Requests() {
		if r.Path == "/backups" || r.Path == "/backups/" {
			if q := r.Query; !q.Has("prefix") || !strings.HasPrefix(q.Get("prefix"), "nightly") {
				t.Errorf("bucket-wide request %s %s?%s", r.Method, r.Path, q.Encode())
			}
		}
		if r.Query.Has("location") || r.Method == http.MethodHead && strings.Count(strings.Trim(r.Path, "/"), "/") == 0 {
			t.Errorf("bucket-wide request %s %s?%s", r.Method, r.Path, r.Query.Encode())
		}
	}
	w.change(t, 62)
	w.checkRestored(t, w.restoreWithBarman(t, id))

	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"-t"}, 4}, // as Barman: an error answer to -t's check
		{[]string{"-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port), "-U", "postgres"}, 1},
	} {
		r := runCmd(t, env, binary, append(append(c.args, "--endpoint-url", m.Endpoint), "s3://backups/elsewhere", "main")...)
		if r.code != c.code || !strings.Contains(r.stderr, "ListObjectsV2") || !strings.Contains(r.stderr, "Access Denied") ||
			strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%v on another prefix: exit %d, want %d and one line naming ListObjectsV2:\n%s", c.args, r.code, c.code, r.stderr)
		}
	}
}

// --sse-kms-key-id encrypts every object with that key (MinIO's KMS).
func TestSSEKMSKeyID(t *testing.T) {
	w, m := newS3World(t)
	id := w.backup(t, "-e", "aws:kms", "--sse-kms-key-id", "bcb-test-key")
	for _, n := range w.names(t, id) {
		st, err := m.Client.StatObject(context.Background(), "backups", w.basePrefix(id)+n, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Metadata.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); !strings.HasSuffix(got, "bcb-test-key") {
			t.Errorf("%s: KMS key %q, want bcb-test-key", n, got)
		}
	}
	w.change(t, 63)
	w.checkRestored(t, w.restoreWithBarman(t, id))
	r := w.run(t, "--sse-kms-key-id", "bcb-test-key")
	if r.code != 4 || !strings.Contains(r.stderr, `Encryption type must be "aws:kms" if SSE KMS Key ID is specified`) {
		t.Errorf("--sse-kms-key-id without -e aws:kms: exit %d:\n%s", r.code, r.stderr)
	}
}

// hostsEntry maps names to loopback in /etc/hosts for the test (the
// resolver of Go, boto3 and libpq alike reads it), and removes them after.
func hostsEntry(t *testing.T, names ...string) {
	t.Helper()
	line := "127.0.0.1 " + strings.Join(names, " ") + " # bcb-test\n"
	old, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/etc/hosts", append(old, []byte(line)...), 0o644); err != nil {
		t.Skipf("cannot add a hosts entry (%v): virtual-host addressing needs a name on loopback", err)
	}
	t.Cleanup(func() {
		now, _ := os.ReadFile("/etc/hosts")
		os.WriteFile("/etc/hosts", bytes.Replace(now, []byte(line), nil, 1), 0o644)
	})
}

// Virtual-host addressing, as boto3 users choose it in the profile's s3
// settings: requests go to BUCKET.HOST, and keys have no bucket folder.
// An endpoint URL that already names the bucket under path-style is
// refused with the URL to use.
func TestVirtualHostAddressing(t *testing.T) {
	hostsEntry(t, "s3.bcb.test", "vhost.s3.bcb.test")
	m := StartMinIODomain(t, "s3.bcb.test", "vhost")
	w := &world{store: minioBucket{m, "vhost"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://vhost/pg", prefix: "pg", server: "main"}
	w.startSource(t, nil)
	p := StartFaultProxy(t, m.Endpoint)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(p.Endpoint, "http://"))
	config := filepath.Join(t.TempDir(), "config")
	os.WriteFile(config, []byte("[default]\nregion = us-east-1\ns3 =\n    addressing_style = virtual\n"), 0o600)
	vhost := &world{store: w.store, env: append(append([]string{}, m.Env()...), "AWS_CONFIG_FILE="+config),
		cloud: []string{"--endpoint-url", "http://s3.bcb.test:" + port}, dest: w.dest, prefix: w.prefix, server: w.server, src: w.src}
	id := vhost.backupTo(t, "-z")
	requests := p.Requests()
	if len(requests) == 0 {
		t.Fatal("no request went through the proxy")
	}
	for _, r := range requests {
		if r.Host != "vhost.s3.bcb.test:"+port || strings.HasPrefix(r.Path, "/vhost") {
			t.Errorf("%s %s with Host %s: not virtual-host style", r.Method, r.Path, r.Host)
		}
	}
	if names := w.names(t, id); !contains(names, "data.tar.gz") || !contains(names, "backup.info") {
		t.Fatalf("objects %v", names)
	}
	w.change(t, 64)
	w.checkRestored(t, w.restoreWithBarman(t, id))

	r := runCmd(t, m.Env(), binary, "-t", "--endpoint-url", "http://vhost.s3.bcb.test:"+port, w.dest, w.server)
	if r.code != 4 || !strings.Contains(r.stderr, "already names bucket vhost: use --endpoint-url http://s3.bcb.test:"+port+",") {
		t.Errorf("an endpoint naming the bucket, path-style: exit %d:\n%s", r.code, r.stderr)
	}
}

// --kms-key-name: every object written, composed or not, names the
// Cloud KMS key. fake-gcs-server 1.56 keeps no KMS key, so the requests
// are read on the wire, through the proxy.
func TestGCSKMSKeyName(t *testing.T) {
	w, _ := newS3World(t)
	g := StartFakeGCS(t, "kms")
	p := StartFaultProxy(t, "http://"+g.Host)
	p.RewriteHost = true
	gcs := &world{store: g.Bucket("kms"), env: append(append([]string{}, w.env...), "STORAGE_EMULATOR_HOST="+strings.TrimPrefix(p.Endpoint, "http://")),
		cloud: []string{"--cloud-provider", "google-cloud-storage"}, dest: "gs://kms/pg", prefix: "pg", server: "main", src: w.src}
	key := "projects/bcb/locations/global/keyRings/backups/cryptoKeys/nightly"
	gcs.backupTo(t, "--kms-key-name", key, "-S", "8MB", "-J", "2")
	// Every write names the key; every composed object is then rewritten
	// onto itself with it (the client sends no key with a compose).
	writes, composed, rewritten := 0, map[string]bool{}, map[string]bool{}
	for _, r := range p.Requests() {
		switch {
		case r.Method == http.MethodPost && strings.HasPrefix(r.Path, "/upload/storage/v1/b/kms/o"):
			writes++
			if r.Query.Get("kmsKeyName") != key {
				t.Errorf("write %s: kmsKeyName %q", r.Query.Get("name"), r.Query.Get("kmsKeyName"))
			}
		case r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/compose") && strings.Contains(r.Path, "/base/"):
			composed[strings.TrimSuffix(r.Path, "/compose")] = true
		case r.Method == http.MethodPost && strings.Contains(r.Path, "/rewriteTo/"):
			if r.Query.Get("destinationKmsKeyName") != key {
				t.Errorf("rewrite %s: destinationKmsKeyName %q", r.Path, r.Query.Get("destinationKmsKeyName"))
			}
			rewritten[r.Path[:strings.Index(r.Path, "/rewriteTo/")]] = true
		}
	}
	if writes < 3 || len(composed) < 1 {
		t.Errorf("%d writes and %d composed objects seen: the test proves little", writes, len(composed))
	}
	for o := range composed {
		if !rewritten[o] {
			t.Errorf("%s composed but not rewritten with the key", o)
		}
	}
	if left := g.Bucket("kms").Keys(t, "pg/.bcb-parts/"); len(left) > 0 {
		t.Errorf("temporary parts left: %v", left)
	}
}
