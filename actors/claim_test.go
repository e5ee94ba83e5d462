package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

const claimPrefix = "pg/base/20260101T000000"

func newClaimStore(t *testing.T, objects map[string]string) *uploaders.FileStore {
	t.Helper()
	store, err := uploaders.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range objects {
		if err := store.Put(context.Background(), k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

func keys(t *testing.T, store uploaders.Store) []string {
	t.Helper()
	k, err := store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A hook attempt that failed part-way leaves completed objects and no
// backup.info; Barman reruns the hook with the same ID until it exits 0,
// so the rerun empties the folder and uploads again. A live backup never
// does: its ID clashing means another backup is there.
func TestClaimLeftoversOfAFailedHook(t *testing.T) {
	leftovers := map[string]string{claimPrefix + "/16384.tar": "old", claimPrefix + "/data_0000.tar": "old"}
	t.Run("hook", func(t *testing.T) {
		store := newClaimStore(t, leftovers)
		release, err := claim(context.Background(), store, claimPrefix, "20260101T000000", true)
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		if got := keys(t, store); !slices.Equal(got, []string{claimPrefix + ".lock"}) {
			t.Errorf("after the claim: %v, want only the lock", got)
		}
		release()
		if got := keys(t, store); len(got) != 0 {
			t.Errorf("after the release: %v", got)
		}
	})
	t.Run("live", func(t *testing.T) {
		store := newClaimStore(t, leftovers)
		_, err := claim(context.Background(), store, claimPrefix, "20260101T000000", false)
		if !errors.Is(err, ErrClash) || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("claim: %v, want a clash", err)
		}
		if got := keys(t, store); len(got) != 2 {
			t.Errorf("the other backup was touched: %v", got)
		}
	})
}

// backup.info says what an earlier hook attempt achieved: DONE is the
// backup stored, left alone; FAILED (or unreadable) is removed with the
// rest, as no Barman tool restores it.
func TestClaimHookWithBackupInfo(t *testing.T) {
	done := string((&pg.BackupInfo{ID: "20260101T000000", Status: pg.StatusDone, Version: pg.Int64(150018)}).Marshal())
	failed := string((&pg.BackupInfo{ID: "20260101T000000", Status: pg.StatusFailed, Error: "failure uploading data (x)"}).Marshal())
	for _, c := range []struct {
		name, info string
		stored     bool
	}{{"done", done, true}, {"failed", failed, false}, {"unreadable", "not a backup.info", false}} {
		t.Run(c.name, func(t *testing.T) {
			store := newClaimStore(t, map[string]string{claimPrefix + "/data.tar": "x", claimPrefix + "/backup.info": c.info})
			release, err := claim(context.Background(), store, claimPrefix, "20260101T000000", true)
			if c.stored {
				if !errors.Is(err, ErrAlreadyStored) || errors.Is(err, ErrClaim) {
					t.Fatalf("claim: %v, want ErrAlreadyStored alone", err)
				}
				if got := keys(t, store); len(got) != 2 {
					t.Errorf("the stored backup was touched, or the lock left: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("claim: %v", err)
			}
			defer release()
			if got := keys(t, store); !slices.Equal(got, []string{claimPrefix + ".lock"}) {
				t.Errorf("after the claim: %v, want only the lock", got)
			}
		})
	}
	// Outside hook mode even a DONE backup is another backup: a clash.
	store := newClaimStore(t, map[string]string{claimPrefix + "/backup.info": done})
	if _, err := claim(context.Background(), store, claimPrefix, "20260101T000000", false); !errors.Is(err, ErrClash) {
		t.Errorf("live claim of a stored ID: %v, want a clash", err)
	}
}

// deadPID is the PID of a process of this host that has ended.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func lockNoteOf(pid int, host string, started time.Time) string {
	return fmt.Sprintf("pid=%d host=%s started=%s nonce=0123456789abcdef\n", pid, host, started.Format(time.RFC3339))
}

// A run killed with SIGKILL leaves its lock. Its note names a process of
// this host that no longer runs: the lock is taken over, hook or not. Any
// other lock is a run that may still be going on: a clash.
func TestClaimStaleLock(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // where a takeover's host lock goes
	host, _ := os.Hostname()
	hourAgo := time.Now().Add(-time.Hour)
	for _, c := range []struct {
		name     string
		note     string
		takeOver bool
	}{
		{"dead-pid-this-host", lockNoteOf(deadPID(t), host, hourAgo), true},
		// An earlier process given our PID (a restarted container).
		{"our-pid-before-we-started", lockNoteOf(os.Getpid(), host, hourAgo), true},
		{"live-pid", lockNoteOf(os.Getppid(), host, hourAgo), false},
		{"another-run-of-this-process", lockNoteOf(os.Getpid(), host, time.Now()), false},
		{"another-host", lockNoteOf(deadPID(t), host+"-other", hourAgo), false},
		{"not-a-note", "x", false},
	} {
		for _, hook := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/hook=%v", c.name, hook), func(t *testing.T) {
				store := newClaimStore(t, map[string]string{claimPrefix + ".lock": c.note})
				release, err := claim(context.Background(), store, claimPrefix, "20260101T000000", hook)
				note, _ := store.Get(context.Background(), claimPrefix+".lock")
				if !c.takeOver {
					if !errors.Is(err, ErrClash) || !strings.Contains(err.Error(), "another run is taking backup") {
						t.Fatalf("claim: %v, want a clash", err)
					}
					if string(note) != c.note {
						t.Errorf("the lock was changed: %q", note)
					}
					return
				}
				if err != nil {
					t.Fatalf("claim: %v", err)
				}
				if !strings.HasPrefix(string(note), fmt.Sprintf("pid=%d host=%s ", os.Getpid(), host)) || string(note) == c.note {
					t.Errorf("lock note after the takeover: %q", note)
				}
				release()
				if got := keys(t, store); len(got) != 0 {
					t.Errorf("after the release: %v", got)
				}
			})
		}
	}
}

// Two runs of this host taking over the same stale lock would each delete
// it and create their own: while one holds the host's lock for the
// takeover, the other backs off.
func TestClaimTakeoverIsExclusive(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	host, _ := os.Hostname()
	note := lockNoteOf(deadPID(t), host, time.Now().Add(-time.Hour))
	store := newClaimStore(t, map[string]string{claimPrefix + ".lock": note})
	unlock, ok, err := hostMutex(store.String() + "\x00" + claimPrefix + ".lock")
	if err != nil || !ok {
		t.Fatalf("host lock: %v %v", ok, err)
	}
	if _, err := claim(context.Background(), store, claimPrefix, "20260101T000000", true); !errors.Is(err, ErrClash) {
		t.Errorf("claim during another takeover: %v, want a clash", err)
	}
	unlock()
	release, err := claim(context.Background(), store, claimPrefix, "20260101T000000", true)
	if err != nil {
		t.Fatalf("claim after it: %v", err)
	}
	release()
}
