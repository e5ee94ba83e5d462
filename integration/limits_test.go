//go:build integration

package integration

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The server's session limits, all shorter than each phase of a backup,
// do not end the backup's session: statement_timeout is shorter than the
// spread checkpoint pg_backup_start waits for (no --immediate-checkpoint)
// and than pg_backup_stop's wait for an archive_command that sleeps;
// idle_session_timeout is shorter than the copy, during which the session
// sits idle (the copy is held until the session has been seen idle for
// twice that long). Each is given back to the session after the backup:
// the server's, the role's, or the conninfo's own value.
func TestSessionLimits(t *testing.T) {
	m := StartMinIO(t, "backups")
	w := &world{store: minioBucket{m, "backups"}, env: m.Env(), cloud: []string{"--endpoint-url", m.Endpoint},
		dest: "s3://backups/limits", prefix: "limits", server: "main"}
	// A spread checkpoint takes checkpoint_completion_target ×
	// checkpoint_timeout: 3s. The long timeout keeps timed checkpoints,
	// which could write the backup's dirty pages first, out of the test.
	w.startSource(t, map[string]string{"checkpoint_timeout": "'300s'", "checkpoint_completion_target": "0.01",
		"log_checkpoints": "on"})
	w.src.Archive(t) // the fill's WAL, before archiving slows down
	archive := fmt.Sprintf("sleep 2 && barman-cloud-wal-archive %s %s %s %%p", strings.Join(w.cloud, " "), w.dest, w.server)
	w.src.Exec(t,
		"ALTER SYSTEM SET archive_command TO '"+archive+"'",
		fmt.Sprintf("ALTER SYSTEM SET statement_timeout TO '%dms'", statementTimeout.Milliseconds()),
		"ALTER SYSTEM SET lock_timeout TO '1s'",
		"ALTER SYSTEM SET idle_in_transaction_session_timeout TO '1s'",
		"ALTER SYSTEM SET idle_session_timeout TO '1s'",
		"SELECT pg_reload_conf()")

	t.Run("server", func(t *testing.T) {
		// Dirty pages, so the start's checkpoint is spread over about 3s
		// (checkpoint_completion_target × checkpoint_timeout).
		w.src.Exec(t, "UPDATE items SET v = v WHERE id <= 5000")
		summary := filepath.Join(t.TempDir(), "summary.json")
		gate := startUploadGate(t, m.Endpoint)
		waitNextSecond()
		// Uncompressed with one upload worker: the data archive is larger
		// than what the engine buffers, so the copy waits for the gate.
		b := startBackground(t, w.env, binary, "-vv", "-J", "1", "--endpoint-url", gate.Endpoint, "--json-summary", summary,
			"-h", "127.0.0.1", "-p", fmt.Sprint(w.src.Port), "-U", "postgres", w.dest, w.server)
		idle := backupSessionIdle(t, w.src, b, 2)
		gate.Open()
		stderr, code := b.wait(t)
		if code != 0 {
			t.Fatalf("backup exited %d:\n%s", code, stderr)
		}
		t.Logf("the backup's session was idle for %.1fs during the copy", idle)
		// The limit would have fired: the session's statements outlasted
		// it. A slower server only makes them longer.
		phases := summaryPhases(t, summary)
		for _, p := range []struct{ name, why string }{
			{"start_seconds", "pg_backup_start's spread checkpoint"},
			{"stop_seconds", "pg_backup_stop's wait for the archive_command"},
		} {
			if d := time.Duration(phases[p.name] * float64(time.Second)); d <= statementTimeout {
				t.Errorf("%s took %s, within statement_timeout (%s): the limit was not put to the test", p.why, d, statementTimeout)
			} else {
				t.Logf("%s took %s, longer than statement_timeout (%s)", p.why, d.Round(time.Millisecond), statementTimeout)
			}
		}
		// Only pg_backup_start without --immediate-checkpoint asks for
		// such a checkpoint (forced, waited for, not immediate).
		if !strings.Contains(w.src.Log(), "checkpoint starting: force wait\n") {
			t.Errorf("the backup's checkpoint was not a spread one:\n%s", w.src.Log())
		}
		for _, want := range []string{
			"Session limits off until the backup stops (they were idle_in_transaction_session_timeout=1s, idle_session_timeout=1s, statement_timeout=1s, lock_timeout=1s)",
			"Session limits reset to idle_in_transaction_session_timeout=1s, idle_session_timeout=1s",
			"Session limits reset to statement_timeout=1s, lock_timeout=1s",
			"Restore point 'barman_",
		} {
			if !strings.Contains(stderr, want) {
				t.Errorf("the log lacks %q:\n%s", want, stderr)
			}
		}
		ids := w.ids(t)
		if len(ids) != 1 {
			t.Fatalf("backups listed: %v", ids)
		}
		w.change(t, 1)
		w.checkRestored(t, w.restoreWithBarman(t, ids[0]))
	})

	// A role's own limit and one in the conninfo's options come back too,
	// for a role that is no superuser: it may not create the restore
	// point, which, as in Barman, does not fail the backup.
	t.Run("role-and-conninfo", func(t *testing.T) {
		w.src.Exec(t, "CREATE ROLE backup LOGIN",
			"GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean), pg_backup_stop(boolean) TO backup",
			"GRANT pg_read_all_settings TO backup",
			"ALTER ROLE backup SET idle_session_timeout TO '1500ms'")
		waitNextSecond()
		conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=backup dbname=postgres options='-c statement_timeout=1700'", w.src.Port)
		r := runCmd(t, w.env, binary, append(append([]string{}, w.cloud...), "-vv", "--immediate-checkpoint",
			"-d", conninfo, w.dest, w.server)...)
		if r.code != 0 {
			t.Fatalf("backup exited %d:\n%s", r.code, r.stderr)
		}
		for _, want := range []string{
			"(they were idle_in_transaction_session_timeout=1s, idle_session_timeout=1500ms, statement_timeout=1700ms, lock_timeout=1s)",
			"Session limits reset to idle_in_transaction_session_timeout=1s, idle_session_timeout=1500ms",
			"Session limits reset to statement_timeout=1700ms, lock_timeout=1s",
			"WARNING: creating restore point 'barman_",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("the log lacks %q:\n%s", want, r.stderr)
			}
		}
		if ids := w.ids(t); len(ids) != 2 {
			t.Fatalf("backups listed: %v", ids)
		}
	})
}

// statementTimeout is the server's statement_timeout in TestSessionLimits.
const statementTimeout = time.Second

// backupSessionIdle waits until the backup's session (application_name
// barman_cloud_backup) has been idle for at least secs seconds, before
// the backup asks to stop, and returns how long it was. The test fails if
// the session goes away or the run ends first.
func backupSessionIdle(t *testing.T, c *Cluster, b *background, secs float64) float64 {
	t.Helper()
	seen := false
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if b.saw("Stopping backup") {
			t.Fatalf("the copy ended before the backup's session was idle for %.0fs:\n%s", secs, b.log())
		}
		if b.exited() {
			stderr, code := b.wait(t)
			t.Fatalf("backup exited %d before its session was idle for %.0fs:\n%s", code, secs, stderr)
		}
		state := c.Query(t, `SELECT coalesce((SELECT state || ' ' || extract(epoch FROM now() - state_change)::text
			FROM pg_stat_activity WHERE application_name = 'barman_cloud_backup'), 'gone')`)
		if state == "gone" {
			if seen {
				t.Fatalf("the backup's session is gone:\n%s\n%s", b.log(), c.Log())
			}
		} else {
			seen = true
			if s, ok := strings.CutPrefix(state, "idle "); ok {
				if idle, _ := strconv.ParseFloat(s, 64); idle >= secs {
					return idle
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the backup's session was never idle for %.0fs:\n%s", secs, b.log())
	return 0
}

// background is a command running while the test watches its stderr.
type background struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	buf  strings.Builder
	code int
}

func startBackground(t *testing.T, env []string, name string, args ...string) *background {
	t.Helper()
	b := &background{cmd: exec.Command(name, args...), done: make(chan struct{})}
	b.cmd.Env = append(os.Environ(), env...)
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			b.mu.Lock()
			b.buf.WriteString(lines.Text() + "\n")
			b.mu.Unlock()
		}
		err := b.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			b.code = ee.ExitCode()
		} else if err != nil {
			b.code = -1
		}
		close(b.done)
	}()
	t.Cleanup(func() {
		if !b.exited() {
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

func (b *background) log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *background) saw(s string) bool { return strings.Contains(b.log(), s) }

func (b *background) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// wait waits for the command to end and returns its stderr and exit code.
func (b *background) wait(t *testing.T) (string, int) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(5 * time.Minute):
		b.cmd.Process.Kill()
		<-b.done
		t.Fatalf("%s did not end:\n%s", b.cmd.Path, b.log())
	}
	return b.log(), b.code
}

// uploadGate proxies S3 requests to a server and holds back those that
// upload a backup's tar archives until it is opened. Requests keep the
// Host they were signed for.
type uploadGate struct {
	Endpoint string
	open     chan struct{}
	once     sync.Once
}

func startUploadGate(t *testing.T, target string) *uploadGate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &uploadGate{open: make(chan struct{})}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.Out.URL.Scheme, pr.Out.URL.Host = u.Scheme, u.Host },
		// Uploads cancelled by an interrupted run are expected.
		ErrorLog: log.New(io.Discard, "", 0)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Uploads only: aborting a multipart upload goes through.
		if (r.Method == http.MethodPut || r.Method == http.MethodPost) &&
			strings.Contains(r.URL.Path, "/base/") && strings.Contains(r.URL.Path, ".tar") {
			select {
			case <-g.open:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	g.Endpoint = srv.URL
	t.Cleanup(srv.Close)
	t.Cleanup(g.Open) // first: Close waits for the requests it holds
	return g
}

// Open lets every request through from now on.
func (g *uploadGate) Open() { g.once.Do(func() { close(g.open) }) }
