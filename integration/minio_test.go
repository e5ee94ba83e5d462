//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a MinIO server on a loopback port, for the life of one test.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Client    *minio.Client

	dir, logDir   string
	port, console int
	// domain is MINIO_DOMAIN: virtual-host requests for BUCKET.domain.
	domain string
	mu     sync.Mutex
	cmd    *exec.Cmd
	log    *os.File
}

// minioPath finds the server: $MINIO_BIN, the PATH, or the cache that
// .ci/run installs it into.
func minioPath() (string, error) {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "bcb-tools", "bin", "minio")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no MinIO server binary: set MINIO_BIN or run .ci/run to install it (%v)", err)
	}
	return p, nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMinIO starts a server with its data in a temporary directory and
// the given buckets, and stops it when the test ends. Our binary never
// creates a bucket (Barman 3.16), so a test names the ones it uses.
func StartMinIO(t testing.TB, buckets ...string) *MinIO {
	t.Helper()
	return startMinIO(t, "", buckets)
}

// StartMinIODomain is StartMinIO answering virtual-host requests for
// BUCKET.domain too (MINIO_DOMAIN).
func StartMinIODomain(t testing.TB, domain string, buckets ...string) *MinIO {
	t.Helper()
	return startMinIO(t, domain, buckets)
}

func startMinIO(t testing.TB, domain string, buckets []string) *MinIO {
	t.Helper()
	port := freePort(t)
	m := &MinIO{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), AccessKey: "bcb-test-access", SecretKey: "bcb-test-secret-key",
		dir: t.TempDir(), port: port, console: freePort(t), logDir: t.TempDir(), domain: domain}
	m.Start(t)
	t.Cleanup(m.Kill)
	c, err := minio.New(fmt.Sprintf("127.0.0.1:%d", port), &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	m.Client = c
	for _, b := range buckets {
		if err := c.MakeBucket(context.Background(), b, minio.MakeBucketOptions{}); err != nil {
			t.Fatalf("make bucket %s: %v", b, err)
		}
	}
	return m
}

// Start starts the server (again, after Kill) on its port and data, and
// waits until it answers.
func (m *MinIO) Start(t testing.TB) {
	t.Helper()
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
}

func (m *MinIO) start() error {
	bin, err := minioPath()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "server", m.dir,
		"--address", fmt.Sprintf("127.0.0.1:%d", m.port), "--console-address", fmt.Sprintf("127.0.0.1:%d", m.console))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off",
		// A static KMS key, so server-side encryption (-e) can be tested.
		"MINIO_KMS_SECRET_KEY=bcb-test-key:MBVUbfQfCkbwfKDsWmtVBlZqxTqTPZUlMEz1cmvTJzY=", "MINIO_DOMAIN="+m.domain)
	logFile, err := os.OpenFile(filepath.Join(m.logDir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start minio: %v", err)
	}
	m.mu.Lock()
	m.cmd, m.log = cmd, logFile
	m.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio did not start: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill stops the server at once, as a crash would.
func (m *MinIO) Kill() {
	m.mu.Lock()
	cmd, logFile := m.cmd, m.log
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
	logFile.Close()
}

// Env is the environment AWS clients (ours and boto3) need for the server.
func (m *MinIO) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}
}

// RestrictedEnv is the environment of a user holding only policy: MinIO
// hands out temporary credentials limited by that session policy (STS
// AssumeRole with a Policy, MinIO's own STS). No region is set: a user
// allowed only a prefix must not need the bucket's location.
func (m *MinIO) RestrictedEnv(t testing.TB, policy string) []string {
	t.Helper()
	sts, err := credentials.NewSTSAssumeRole(m.Endpoint, credentials.STSAssumeRoleOptions{
		AccessKey: m.AccessKey, SecretKey: m.SecretKey, Policy: policy, DurationSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sts.GetWithContext(&credentials.CredContext{Client: http.DefaultClient})
	if err != nil {
		t.Fatalf("AssumeRole with a session policy: %v", err)
	}
	return []string{"AWS_ACCESS_KEY_ID=" + v.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + v.SecretAccessKey,
		"AWS_SESSION_TOKEN=" + v.SessionToken, "AWS_DEFAULT_REGION=", "AWS_REGION=", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"}
}

// Keys lists the object keys under prefix, sorted.
func (m *MinIO) Keys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for o := range m.Client.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, o.Err)
		}
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys
}

// Get reads one object.
func (m *MinIO) Get(t testing.TB, bucket, key string) []byte {
	t.Helper()
	o, err := m.Client.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read %s/%s: %v", bucket, key, err)
	}
	return b
}
