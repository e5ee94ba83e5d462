//go:build integration

package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// --read-timeout bounds the wait for every store, not only S3's (issue
// 23): a store slower to answer the data archive's uploads than a short
// timeout fails the backup (exit 1) with one line naming the timeout and
// a FAILED backup.info, after three attempts; a store that answers within
// it, if slowly, does not. The proxy holds only the data archive's
// uploads, so the run takes seconds.
func TestReadTimeout(t *testing.T) {
	w, m := newS3World(t)
	sp := StartFaultProxy(t, m.Endpoint)
	s3 := &world{store: w.store, env: w.env, cloud: []string{"--endpoint-url", sp.Endpoint},
		dest: w.dest, prefix: "nightly/pg", server: "main", src: w.src}
	a := StartAzurite(t, "slow")
	root := strings.TrimSuffix(a.Endpoint, "/"+azuriteAccount)
	ap := StartFaultProxy(t, root)
	azure := &world{store: a.Container(t, "slow"), cloud: []string{"--cloud-provider", "azure-blob-storage"},
		env:  []string{"AZURE_STORAGE_CONNECTION_STRING=" + strings.Replace(a.ConnStr, root, ap.Endpoint, 1)},
		dest: ap.Endpoint + "/" + azuriteAccount + "/slow/pg", prefix: "pg", server: "main", src: w.src}
	g := StartFakeGCS(t, "slow")
	gp := StartFaultProxy(t, "http://"+g.Host)
	gp.RewriteHost = true
	gcs := &world{store: g.Bucket("slow"), cloud: []string{"--cloud-provider", "google-cloud-storage"},
		env:  []string{"STORAGE_EMULATOR_HOST=" + strings.TrimPrefix(gp.Endpoint, "http://")},
		dest: "gs://slow/pg", prefix: "pg", server: "main", src: w.src}

	for _, c := range []struct {
		name string
		w    *world
		p    *FaultProxy
	}{{"s3", s3, sp}, {"azure", azure, ap}, {"gcs", gcs, gp}} {
		t.Run(c.name, func(t *testing.T) {
			// slow holds up to most of the data archive's uploads.
			slow := func(d time.Duration, most int) {
				c.p.SetDelay(d)
				held := 0
				c.p.SetRule(func(r *http.Request) Fault {
					if dataUpload(r) && held < most {
						held++
						return Delay
					}
					return Pass
				})
			}
			defer c.p.SetRule(func(*http.Request) Fault { return Pass })

			// Three times the timeout: no busy machine makes it pass.
			slow(6*time.Second, 1000)
			start := time.Now()
			r := c.w.runTo(t, c.w.env, c.w.dest, append(c.w.cloud, "--read-timeout", "2")...)
			t.Logf("timed out in %s: %s", time.Since(start).Round(100*time.Millisecond), c.p)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1:\n%s", r.code, r.stderr)
			}
			const msg = "no answer from the store within --read-timeout (2 s)"
			var errLines []string
			for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
				if strings.Contains(l, "ERROR") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 || !strings.Contains(errLines[0], msg) {
				t.Errorf("want one ERROR line naming the timeout, got %q:\n%s", errLines, r.stderr)
			}
			if n := c.p.Seen(Delay); n < 3 {
				t.Errorf("%d answers held, want 3 attempts at least", n)
			}
			info := onlyBackupInfo(t, c.w)
			if !strings.Contains(info, "status=FAILED\n") || !strings.Contains(info, msg) {
				t.Errorf("backup.info:\n%s", info)
			}
			for _, k := range c.w.store.Keys(t, c.w.prefix+"/") {
				if strings.HasSuffix(k, ".lock") || strings.Contains(k, ".bcb-parts/") {
					t.Errorf("left behind: %s", k)
				}
			}

			// A fifth of the timeout: slow, but within it. A few answers
			// are enough, and keep the run short.
			slow(time.Second, 3)
			held := c.p.Seen(Delay)
			waitNextSecond()
			start = time.Now()
			r = c.w.runTo(t, c.w.env, c.w.dest, append(c.w.cloud, "--read-timeout", "5")...)
			t.Logf("succeeded in %s: %s", time.Since(start).Round(100*time.Millisecond), c.p)
			if r.code != 0 {
				t.Fatalf("exit %d, want 0:\n%s", r.code, r.stderr)
			}
			if c.p.Seen(Delay) == held {
				t.Errorf("no answer was held: %s", c.p)
			}
			if strings.Contains(r.stderr, "retrying") {
				t.Errorf("a slow answer within the timeout was retried:\n%s", r.stderr)
			}
			done := 0
			for _, k := range c.w.store.Keys(t, c.w.prefix+"/"+c.w.server+"/base/") {
				if strings.HasSuffix(k, "/backup.info") && strings.Contains(string(c.w.store.Get(t, k)), "status=DONE") {
					done++
				}
			}
			if done != 1 {
				t.Errorf("%d DONE backups, want 1", done)
			}
		})
	}
}

// dataUpload is a request that sends the data archive, or a part of it,
// to S3, Azure or GCS; not the commit of Azure's block list, which
// Barman's abort sends too.
func dataUpload(r *http.Request) bool {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		return false
	}
	q := r.URL.Query()
	if q.Get("comp") == "blocklist" {
		return false
	}
	return strings.HasSuffix(r.URL.Path, "/data.tar") || strings.HasSuffix(q.Get("name"), "/data.tar") ||
		strings.Contains(q.Get("name"), "/.bcb-parts/")
}

// onlyBackupInfo is the world's one backup.info: a failed run left no
// other backup.
func onlyBackupInfo(t *testing.T, w *world) string {
	t.Helper()
	var infos []string
	for _, k := range w.store.Keys(t, w.prefix+"/"+w.server+"/base/") {
		if strings.HasSuffix(k, "/backup.info") {
			infos = append(infos, k)
		}
	}
	if len(infos) != 1 {
		t.Fatalf("backup.info objects %v, want one", infos)
	}
	return string(w.store.Get(t, infos[0]))
}
