package actors

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// ErrClash is a backup ID another run has taken: the run stops before it
// touches anything, so nothing of the other backup is overwritten.
var ErrClash = errors.New("backup ID clash")

// ErrClaim is a backup ID that could not be locked: a clash, or the store
// refusing the lock. The run stops before it touches anything; Barman
// exits 1 for a backup the store refuses.
var ErrClaim = errors.New("cannot lock the backup ID")

// claim reserves the backup ID with a lock object beside the backup's
// folder (Barman's tools ignore files there), created only if absent,
// and refuses an ID whose folder already holds objects. release removes
// the lock once the run is over.
func claim(ctx context.Context, store uploaders.Store, prefix, id string, hook bool) (release func(), err error) {
	_ = hook
	lock := prefix + ".lock"
	host, _ := os.Hostname()
	// The nonce makes the note ours alone: a create whose answer was lost
	// is recognised by reading the note back (uploaders.WithRetry).
	var nonce [8]byte
	rand.Read(nonce[:])
	note := fmt.Sprintf("pid=%d host=%s started=%s nonce=%x\n", os.Getpid(), host, time.Now().Format(time.RFC3339), nonce)
	switch err := store.Create(ctx, lock, []byte(note)); {
	case errors.Is(err, uploaders.ErrExists):
		return nil, fmt.Errorf("%w: %w: another run is taking backup %s now (lock %s)", ErrClaim, ErrClash, id, lock)
	case err != nil:
		return nil, fmt.Errorf("%w %s: %w", ErrClaim, id, err)
	}
	release = func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
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
	if len(existing) > 0 {
		release()
		return nil, fmt.Errorf("%w: %w: backup %s already exists in the destination", ErrClaim, ErrClash, id)
	}
	return release, nil
}
