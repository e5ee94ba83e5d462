//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// A backup interrupted while its data archive is half uploaded must end
// backup mode, abort the multipart upload and leave a FAILED backup.info,
// on SIGTERM (a service stopping) as on SIGINT (Ctrl-C). A second signal
// ends the process at once. With --max-bandwidth, upload workers wait for
// tokens when the signal comes: that wait, and an object's completion
// waiting for its parts, once outlived the run (issue 21).
func TestInterruptedBackupCleansUp(t *testing.T) {
	for _, c := range []struct {
		name    string
		signals []os.Signal
		// args are more options; split volumes stored whole before the
		// signal stay, as with Barman.
		args  []string
		split bool
	}{
		{name: "SIGTERM", signals: []os.Signal{syscall.SIGTERM}},
		{name: "SIGINT", signals: []os.Signal{os.Interrupt}},
		{name: "twice", signals: []os.Signal{os.Interrupt, syscall.SIGTERM}},
		{name: "SIGINT-bandwidth", signals: []os.Signal{os.Interrupt},
			args: []string{"-J", "3", "-S", "6MB", "--max-bandwidth", "4MB"}, split: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := StartMinIO(t, "interrupted")
			// WAL is never archived, so pg_backup_stop waits for ever: the
			// data archive stays open, with parts already uploaded, until
			// we signal.
			src := StartPostgres(t, map[string]string{"archive_mode": "on", "archive_command": "'false'"}, nil)
			src.Exec(t, "CREATE TABLE filler AS SELECT g, md5(g::text) || md5((g+1)::text) AS v FROM generate_series(1, 400000) g")
			args := append([]string{"-v", "--immediate-checkpoint", "--endpoint-url", m.Endpoint,
				"-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "postgres"}, c.args...)
			cmd := exec.Command(binary, append(args, "s3://interrupted/pfx", "main")...)
			cmd.Env = append(os.Environ(), m.Env()...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// stderr is read to its end before cmd.Wait, which closes it
			// (os/exec): so the last lines are never lost.
			log := &lockedLog{}
			stopping, eof := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(eof)
				r, seen := bufio.NewReader(stderr), false
				for {
					line, err := r.ReadString('\n')
					log.add(line)
					if !seen && strings.Contains(line, "Stopping backup") {
						seen = true
						close(stopping)
					}
					if err != nil {
						return
					}
				}
			}()
			ended := func() error {
				select {
				case <-eof:
				case <-time.After(2 * time.Minute):
					cmd.Process.Kill()
					<-eof
					cmd.Wait()
					t.Fatalf("the backup did not end:\n%s", log)
				}
				return cmd.Wait()
			}
			t.Cleanup(func() {
				if cmd.ProcessState == nil { // a check failed before the end
					cmd.Process.Kill()
					ended()
				}
			})
			select {
			case <-stopping:
			case <-eof:
				t.Fatalf("the backup ended (%v) before its stop:\n%s", ended(), log)
			}
			// Wait until a part of the open data archive is stored.
			deadline := time.Now().Add(60 * time.Second)
			for len(incomplete(t, m, "interrupted")) == 0 {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					ended()
					t.Fatalf("no multipart upload in progress:\n%s", log)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if n := src.Query(t, "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'barman_cloud_backup'"); n != "1" {
				t.Fatalf("backup session not found (%s)", n)
			}

			start := time.Now()
			for _, sig := range c.signals {
				cmd.Process.Signal(sig)
			}
			err = ended()
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %s to stop after %v", d, c.signals)
			}
			// Either way PostgreSQL's backup mode has ended: a new backup
			// can start at once.
			src.Exec(t, "SELECT pg_backup_start('probe', true)", "SELECT pg_backup_stop(false)")
			// After one signal the session is gone. Killed by a second
			// one, the process cannot cancel the stop it asked for: the
			// server ends backup mode first, then waits for the WAL
			// archive (do_pg_backup_stop) without looking at the client,
			// so the session may stay in that wait, and only there.
			lingering := "SELECT count(*)::text FROM pg_stat_activity WHERE application_name = 'barman_cloud_backup'"
			if len(c.signals) > 1 {
				lingering += " AND wait_event IS DISTINCT FROM 'BackupWaitWalArchive'"
			}
			if n := src.Query(t, lingering); n != "0" {
				t.Errorf("backup session still open")
			}
			if len(c.signals) > 1 {
				// Killed by the second signal: no clean-up was promised.
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
					t.Fatalf("exit: %v, want a failure", err)
				}
				return
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want code 1\n%s", err, log.String())
			}
			// Barman too reports an interrupted upload as a failed one.
			if !strings.Contains(log.String(), "ERROR: Backup failed uploading data (interrupted") {
				t.Errorf("no interruption message:\n%s", log.String())
			}
			if left := incomplete(t, m, "interrupted"); len(left) > 0 {
				t.Errorf("multipart uploads left open: %v", left)
			}
			keys := m.Keys(t, "interrupted", "pfx/main/base/")
			var infoKey string
			for _, k := range keys {
				switch {
				case strings.HasSuffix(k, "/backup.info"):
					infoKey = k
				case strings.HasSuffix(k, ".lock"):
					t.Errorf("the lock %s is left", k)
				case !c.split:
					t.Errorf("object %s after the failure (want backup.info only)", k)
				}
			}
			if infoKey == "" {
				t.Fatalf("no backup.info after the failure: %v", keys)
			}
			info := string(m.Get(t, "interrupted", infoKey))
			if !strings.Contains(info, "status=FAILED\n") || !strings.Contains(info, "error=failure uploading data (interrupted") {
				t.Errorf("backup.info:\n%s", info)
			}
		})
	}
}

// lockedLog is a command's output as one goroutine reads it and another
// looks at it.
type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.WriteString(s)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// incomplete lists the multipart uploads left open in bucket, but those of
// WAL files, which Barman's barman-cloud-wal-archive may be uploading.
func incomplete(t *testing.T, m *MinIO, bucket string) []string {
	var keys []string
	for u := range m.Client.ListIncompleteUploads(context.Background(), bucket, "", true) {
		if strings.Contains(u.Key, "/wals/") {
			continue
		}
		if u.Err != nil {
			if minio.ToErrorResponse(u.Err).Code == "NoSuchBucket" {
				return nil
			}
			t.Fatal(u.Err)
		}
		keys = append(keys, u.Key)
	}
	return keys
}

// -P reads credentials from the shared file; -e asks for server-side
// encryption of every object.
func TestProfileAndEncryption(t *testing.T) {
	m := StartMinIO(t, "secure")
	src := StartPostgres(t, nil, nil)
	creds := filepath.Join(t.TempDir(), "credentials")
	os.WriteFile(creds, []byte(fmt.Sprintf("[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[backup]\naws_access_key_id = %s\naws_secret_access_key = %s\n", m.AccessKey, m.SecretKey)), 0o600)
	env := []string{"AWS_SHARED_CREDENTIALS_FILE=" + creds, "AWS_EC2_METADATA_DISABLED=true", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}
	r := runCmd(t, env, binary, "-P", "backup", "-e", "AES256", "--endpoint-url", m.Endpoint, "--immediate-checkpoint",
		"-h", "127.0.0.1", "-p", fmt.Sprint(src.Port), "-U", "postgres", "s3://secure/pfx", "main")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	keys := m.Keys(t, "secure", "pfx/")
	if len(keys) != 2 {
		t.Fatalf("objects %v", keys)
	}
	for _, k := range keys {
		st, err := m.Client.StatObject(context.Background(), "secure", k, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Metadata.Get("X-Amz-Server-Side-Encryption"); got != "AES256" {
			t.Errorf("%s: server-side encryption %q, want AES256", k, got)
		}
	}
	// The default profile's credentials are wrong: the store refuses
	// them, which Barman reports with exit code 4.
	r = runCmd(t, env, binary, "-t", "--endpoint-url", m.Endpoint, "s3://secure/pfx", "main")
	if r.code != 4 || !strings.Contains(r.stderr, "Access Key Id you provided does not exist") {
		t.Errorf("wrong credentials: exit %d, want 4:\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "wrong") {
		t.Errorf("a credential leaked into the log:\n%s", r.stderr)
	}
}
