//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is our barman-cloud-backup, and restoreBinary our
// barman-cloud-restore, built once for the run. Barman's own
// barman-cloud-restore is on PATH: ours is always called by this path.
var binary, restoreBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bcb-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "barman-cloud-backup")
	restoreBinary = filepath.Join(dir, "barman-cloud-restore")
	for out, pkg := range map[string]string{binary: "../cmd/barman-cloud-backup", restoreBinary: "../cmd/barman-cloud-restore"} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build:", err)
			os.Exit(1)
		}
	}
	// Other builds under test, an older commit say, to show a test
	// catches what it was written for.
	if other := os.Getenv("BCB_TEST_BINARY"); other != "" {
		binary = other
	}
	if other := os.Getenv("BCB_TEST_RESTORE_BINARY"); other != "" {
		restoreBinary = other
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a command did.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs name with args and extra environment, and never fails the
// test itself: callers assert on the result.
func runCmd(t testing.TB, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

// mustRun runs a command that has to succeed.
func mustRun(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	r := runCmd(t, env, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %q exited %d\nstdout: %s\nstderr: %s", name, args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}
