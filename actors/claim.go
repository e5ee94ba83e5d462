package actors

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// ErrClash is a backup ID another run has taken: the run stops before it
// touches anything, so nothing of the other backup is overwritten.
var ErrClash = errors.New("backup ID clash")

// ErrClaim is a backup ID that could not be locked: a clash, or the store
// refusing the lock. The run stops before it touches anything; Barman
// exits 1 for a backup the store refuses.
var ErrClaim = errors.New("cannot lock the backup ID")

// ErrAlreadyStored is a hook run for a backup the destination already
// holds with a DONE backup.info: nothing is uploaded, and the hook is to
// succeed, since Barman reruns a post_backup_retry_script until it exits
// 0, 62 or 63 (barman/hooks.py, RetryHookScriptRunner).
var ErrAlreadyStored = errors.New("backup already stored")

// processStart tells a lock note written by this process from one written
// by an earlier process that had the same PID.
var processStart = time.Now()

// claim reserves the backup ID with a lock object beside the backup's
// folder (Barman's tools ignore files there), created only if absent; a
// lock left by a process of this host that no longer runs is taken over.
// Outside hook mode it refuses an ID whose folder already holds objects.
//
// In hook mode the ID is Barman's, and a folder without a DONE backup.info
// is what an earlier attempt at the same upload left: Barman's own hook
// (barman/cloud.py, CloudBackupUploaderBarman.backup) uploads over it
// without looking, and so its retry loop converges; here the folder is
// emptied first, so that no object of the earlier attempt outlives it.
// A DONE backup.info is ErrAlreadyStored. release removes the lock once the
// run is over.
func claim(ctx context.Context, store uploaders.Store, prefix, id string, hook bool) (release func(), err error) {
	lock := prefix + ".lock"
	if err := takeLock(ctx, store, lock, id); err != nil {
		return nil, err
	}
	release = func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBudget(ctx, 30*time.Second, 10*time.Second))
		defer cancel()
		if err := store.Delete(cleanup, lock); err != nil {
			zerolog.Ctx(ctx).Warn().Msgf("removing %s: %v", lock, err)
		}
	}
	existing, err := store.List(ctx, prefix+"/")
	if err != nil {
		release()
		return nil, fmt.Errorf("%w %s: %w", ErrClaim, id, err)
	}
	if len(existing) == 0 {
		return release, nil
	}
	if !hook {
		// A live backup's ID is its start time: objects there are another
		// backup, never to be overwritten.
		release()
		return nil, fmt.Errorf("%w: %w: backup %s already exists in the destination", ErrClaim, ErrClash, id)
	}
	if err := clearEarlierAttempt(ctx, store, prefix, id, existing); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// clearEarlierAttempt empties the folder of a hook upload that did not
// end DONE, the lock held. A FAILED or unreadable backup.info is removed
// too: no Barman tool restores such a backup, and Barman's own hook would
// overwrite it. Multipart uploads a killed run left open cannot be
// aborted here (uploaders.Store lists none): the store's lifecycle rule
// for incomplete uploads removes them.
func clearEarlierAttempt(ctx context.Context, store uploaders.Store, prefix, id string, existing []string) error {
	info := prefix + "/backup.info"
	if slices.Contains(existing, info) {
		raw, err := store.Get(ctx, info)
		if err != nil {
			return fmt.Errorf("%w %s: %w", ErrClaim, id, err)
		}
		if f, err := pg.ReadInfo(raw); err == nil && f.Status == pg.StatusDone {
			return fmt.Errorf("%w: backup %s is in the destination with status DONE", ErrAlreadyStored, id)
		}
	}
	zerolog.Ctx(ctx).Info().Msgf("Removing %d objects of an earlier upload of backup %s that did not finish", len(existing), id)
	// backup.info goes last: a cleanup cut short still reads as a failed
	// backup to Barman's tools.
	keys := slices.DeleteFunc(slices.Clone(existing), func(k string) bool { return k == info })
	if len(keys) < len(existing) {
		keys = append(keys, info)
	}
	for _, key := range keys {
		if err := store.Delete(ctx, key); err != nil {
			return fmt.Errorf("%w %s: removing what an earlier upload left: %w", ErrClaim, id, err)
		}
	}
	return nil
}

// takeLock creates the lock object, or takes over one whose note names a
// process of this host that no longer runs (a run killed with SIGKILL
// leaves its lock): that process cannot come back, in hook mode or not.
// A lock of another host, or of a live process, is a clash.
func takeLock(ctx context.Context, store uploaders.Store, lock, id string) error {
	host, _ := os.Hostname()
	// The nonce makes the note ours alone: a create whose answer was lost
	// is recognised by reading the note back (uploaders.WithRetry).
	var nonce [8]byte
	rand.Read(nonce[:])
	note := fmt.Sprintf("pid=%d host=%s started=%s nonce=%x\n", os.Getpid(), host, time.Now().Format(time.RFC3339), nonce)
	err := store.Create(ctx, lock, []byte(note))
	if err == nil {
		return nil
	} else if !errors.Is(err, uploaders.ErrExists) {
		return fmt.Errorf("%w %s: %w", ErrClaim, id, err)
	}
	clash := func(why string) error {
		return fmt.Errorf("%w: %w: another run is taking backup %s now (lock %s: %s)", ErrClaim, ErrClash, id, lock, why)
	}
	held, err := store.Get(ctx, lock)
	if err != nil {
		return clash(err.Error())
	}
	holder, ok := parseNote(held)
	if !ok || !holder.goneFrom(host) {
		return clash(noteLine(held))
	}
	// Two runs of this host finding the same stale lock would each delete
	// it and create their own, one over the other's: the host's kernel
	// lets one take over at a time, and the lock is read again under it.
	unlock, ok, err := hostMutex(store.String() + "\x00" + lock)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrClaim, id, err)
	} else if !ok {
		return clash("another run of this host is taking it over")
	}
	defer unlock()
	if again, err := store.Get(ctx, lock); err != nil || !bytes.Equal(again, held) {
		return clash("taken over by another run")
	}
	if err := store.Delete(ctx, lock); err != nil {
		return fmt.Errorf("%w %s: %w", ErrClaim, id, err)
	}
	switch err := store.Create(ctx, lock, []byte(note)); {
	case errors.Is(err, uploaders.ErrExists):
		return clash("taken by another run")
	case err != nil:
		return fmt.Errorf("%w %s: %w", ErrClaim, id, err)
	}
	zerolog.Ctx(ctx).Warn().Msgf("Took over lock %s of process %d, which no longer runs on this host", lock, holder.pid)
	return nil
}

// lockNote is what a lock object says of the run that holds it.
type lockNote struct {
	pid     int
	host    string
	started time.Time
}

// parseNote reads a note as takeLock writes it; ok is false for anything
// else, whose lock is then never taken over.
func parseNote(b []byte) (n lockNote, ok bool) {
	for _, field := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "pid":
			n.pid, _ = strconv.Atoi(v)
		case "host":
			n.host = v
		case "started":
			n.started, _ = time.Parse(time.RFC3339, v)
		}
	}
	return n, n.pid > 0 && n.host != ""
}

// goneFrom tells whether the note's process was of this host and no
// longer runs. A PID of another host says nothing here, and a PID reused
// by a new process still looks alive: both stay clashes.
func (n lockNote) goneFrom(host string) bool {
	if host == "" || n.host != host {
		return false
	}
	if n.pid == os.Getpid() {
		// Our own PID: an earlier process had it (a container restarted)
		// if the note predates us; else it is another run of this process.
		return !n.started.IsZero() && n.started.Before(processStart.Truncate(time.Second))
	}
	return errors.Is(syscall.Kill(n.pid, 0), syscall.ESRCH)
}

// noteLine is a lock's note for an error message: one line, short.
func noteLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strconv.QuoteToGraphic(s)
}

// hostMutex takes, without waiting, an exclusive lock of this host named
// by key: ok is false when another process holds it. The kernel drops it
// when its process dies, so unlike a lock object it never goes stale.
func hostMutex(key string) (unlock func(), ok bool, err error) {
	sum := sha256.Sum256([]byte(key))
	path := filepath.Join(os.TempDir(), fmt.Sprintf("barman-cloud-backup-%x.lock", sum[:8]))
	// Opened without O_CREAT when it exists: in a sticky /tmp, Linux's
	// protected_regular refuses O_CREAT on another user's file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	}
	if err != nil {
		return nil, false, fmt.Errorf("host lock for the takeover: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("host lock %s: %w", path, err)
	}
	return func() { f.Close() }, true, nil
}
