//go:build integration

package integration

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Resets, stalls and throttling on the way to the store are retried: the
// backup succeeds and Barman restores it.
func TestTransientFaultsAreRetried(t *testing.T) {
	w, m := newS3World(t)
	p := StartFaultProxy(t, m.Endpoint)
	requests, parts := 0, 0
	p.SetRule(func(r *http.Request) Fault {
		requests++
		if requests <= 2 {
			return SlowDown // the connectivity check itself is throttled
		}
		if !IsPart(r) {
			return Pass
		}
		parts++
		switch parts {
		case 1:
			return Reset
		case 2:
			return Stall
		case 3, 4:
			return SlowDown
		}
		return Pass
	})
	id, log := w.backupLog(t, "--endpoint-url", p.Endpoint, "--read-timeout", "2", "-J", "2")
	if p.Seen(Reset) != 1 || p.Seen(Stall) != 1 || p.Seen(SlowDown) != 4 {
		t.Fatalf("the faults did not all happen: %s", p)
	}
	// The connectivity check's retries are logged at debug level.
	if n := strings.Count(log, "retrying in"); n < 4 {
		t.Errorf("%d retries logged, want 4:\n%s", n, log)
	}
	assertRetriedToSuccess(t, w, m, id)
}

// assertRetriedToSuccess checks a backup that met faults: nothing left
// open, and Barman restores it with the source's data.
func assertRetriedToSuccess(t *testing.T, w *world, m *MinIO, id string) {
	t.Helper()
	if left := incomplete(t, m, "backups"); len(left) > 0 {
		t.Errorf("multipart uploads left open: %v", left)
	}
	w.change(t, 1)
	w.checkRestored(t, w.restoreWithBarman(t, id))
}

// A store that refuses the data for good fails the backup at once and
// cleanly: FAILED backup.info, no open multipart upload, backup mode over.
func TestPermanentFaultFailsCleanly(t *testing.T) {
	w, m := newS3World(t)
	p := StartFaultProxy(t, m.Endpoint)
	p.SetRule(func(r *http.Request) Fault {
		if IsPart(r) {
			return Forbidden
		}
		return Pass
	})
	r := w.run(t, "--endpoint-url", p.Endpoint)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.code, r.stderr)
	}
	if p.Seen(Forbidden) == 0 {
		t.Fatalf("no part was refused: %s", p)
	}
	if strings.Contains(r.stderr, "retrying") {
		t.Errorf("a permanent error was retried:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "ERROR: Backup failed uploading data (") || !strings.Contains(r.stderr, "Access Denied") {
		t.Errorf("the failure is not explained:\n%s", r.stderr)
	}
	assertFailedCleanly(t, w, m, "Access Denied")
}

// assertFailedCleanly checks what a failed run must leave: one backup.info
// with status FAILED and the error, no open multipart upload, and no
// backup in progress on the source.
func assertFailedCleanly(t *testing.T, w *world, m *MinIO, why string) {
	t.Helper()
	// Objects stored whole before the failure stay, as with Barman: the
	// FAILED status tells its tools to ignore them.
	var info string
	for _, k := range m.Keys(t, "backups", w.prefix+"/"+w.server+"/base/") {
		if strings.HasSuffix(k, "/backup.info") {
			info = string(m.Get(t, "backups", k))
		}
	}
	if !strings.Contains(info, "status=FAILED\n") || !strings.Contains(info, "error=failure uploading data (") || !strings.Contains(info, why) {
		t.Errorf("backup.info:\n%s", info)
	}
	if left := incomplete(t, m, "backups"); len(left) > 0 {
		t.Errorf("multipart uploads left open: %v", left)
	}
	if n := w.src.Query(t, "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'barman_cloud_backup'"); n != "0" {
		t.Errorf("backup session still open")
	}
	// A new backup can start: the failed one is not in backup mode.
	w.src.Exec(t, "SELECT pg_backup_start('probe', true)", "SELECT pg_backup_stop(false)")
}

// MinIO killed while parts are on their way, and started again on the
// same data a few seconds later: the retries carry the backup through.
func TestStoreRestartedMidUpload(t *testing.T) {
	w, m := newS3World(t)
	p := StartFaultProxy(t, m.Endpoint)
	var restarted sync.WaitGroup
	parts := 0
	p.SetRule(func(r *http.Request) Fault {
		if IsPart(r) {
			parts++
			if parts == 2 {
				m.Kill()
				restarted.Add(1)
				go func() {
					defer restarted.Done()
					time.Sleep(2 * time.Second)
					if err := m.start(); err != nil {
						t.Errorf("restart minio: %v", err)
					}
				}()
			}
		}
		return Pass
	})
	id, log := w.backupLog(t, "--endpoint-url", p.Endpoint, "-J", "2")
	restarted.Wait()
	if parts < 3 {
		t.Fatalf("%d parts seen: the server was not killed mid-upload", parts)
	}
	if !strings.Contains(log, "retrying in") {
		t.Errorf("no retry logged:\n%s", log)
	}
	assertRetriedToSuccess(t, w, m, id)
}

// A file in PGDATA that the backup cannot read fails the backup, naming
// the file: a backup is never silently incomplete. The binary runs as
// postgres, as in production, so root's file is out of its reach.
func TestUnreadableFileFailsTheBackup(t *testing.T) {
	w, m := newS3World(t)
	stray := filepath.Join(w.src.Data, "root-only.conf")
	if err := os.WriteFile(stray, []byte("secret=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(binary), 0o755); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"-u", "postgres", "--", binary}, w.cloud...),
		"--immediate-checkpoint", "-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port), "-U", "postgres", w.dest, w.server)
	r := runCmd(t, w.env, "runuser", args...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "ERROR: Backup failed uploading data (") || !strings.Contains(r.stderr, stray+": permission denied") {
		t.Errorf("the unreadable file is not named:\n%s", r.stderr)
	}
	assertFailedCleanly(t, w, m, stray+": permission denied")
}

// HTTPS endpoints are verified against the system's roots: a certificate
// nobody vouches for is refused (exit 2, not retried), and trusted once
// its CA is given in AWS_CA_BUNDLE, as with boto3.
func TestTLSIsVerified(t *testing.T) {
	m := StartMinIO(t, "tls")
	target, _ := url.Parse(m.Endpoint)
	// The Host header the client signed goes through unchanged.
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host }}
	srv := httptest.NewUnstartedServer(proxy)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, m.Env(), binary, "-t", "--endpoint-url", srv.URL, "s3://tls/x", "srv")
	if r.code != 2 || !strings.Contains(r.stderr, "certificate signed by unknown authority") {
		t.Fatalf("unverified certificate: exit %d, want 2:\n%s", r.code, r.stderr)
	}
	r = runCmd(t, append(m.Env(), "AWS_CA_BUNDLE="+ca), binary, "-t", "--endpoint-url", srv.URL, "s3://tls/x", "srv")
	if r.code != 0 {
		t.Fatalf("with AWS_CA_BUNDLE: exit %d:\n%s", r.code, r.stderr)
	}
}
