package actors

import (
	"archive/tar"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// runWithin runs Run and fails the test if it does not return within a
// bound far above what the run needs: only a hang reaches it.
func runWithin(t *testing.T, src Source, opts Options) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), src, opts)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return: a wait ignores the run's end")
		return nil
	}
}

// Defect 1 of issue 21: under --max-bandwidth a part refused by the store
// left its object's completion waiting for ever on a part job that had
// lost its turn for tokens, and the backup stayed in backup mode. Every
// attempt must end, with the backup mode ended and backup.info FAILED.
func TestRefusedPartUnderBandwidthLimitEndsTheRun(t *testing.T) {
	for i := range 3 {
		store, root := newSmallStore(t, 4096, 40)
		store.failPart = 1
		src := smallFiles(t, 0)
		c, _ := tarball.CodecByName("", 0)
		err := runWithin(t, src, Options{Store: store, ServerName: "main", BackupID: "20261124T120000",
			Codec: c, MaxArchiveSize: 400 << 10, Jobs: 3, BlockSize: 16 << 10, MaxBandwidth: 100 << 10})
		var fe *FailedError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "part 1: AccessDenied") {
			t.Fatalf("run %d: err = %v, want the refused part as the cause", i, err)
		}
		if !src.aborted {
			t.Errorf("run %d: backup mode was not ended", i)
		}
		if s := statusOf(readFile(t, root, "main/base/20261124T120000/backup.info")); s != pg.StatusFailed {
			t.Errorf("run %d: backup.info says %q", i, s)
		}
	}
}

// Defect 2 of issue 21: a stop that failed closed the label channel, the
// sealer read that as "no label" and sealed the last volume without
// backup_label, and the manifest writer could store DONE before the
// failure cancelled the run. No run whose stop fails may ever send DONE.
func TestFailedStopNeverWritesDone(t *testing.T) {
	src := faultFiles(t, false)
	for i := range 50 {
		fs, err := uploaders.NewFileStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		// A fault store with no fault records every backup.info sent.
		store := &faultStore{FileStore: fs, limits: fs.Limits(), calls: map[string]int{}, stopped: &atomic.Bool{}}
		src.endErr = errors.New("stop backup: boom")
		c, _ := tarball.CodecByName("", 0)
		err = runWithin(t, src, Options{Store: store, ServerName: "main", BackupID: "20261124T120000",
			Codec: c, MaxArchiveSize: 1 << 30, Jobs: 3, BlockSize: 16 << 10})
		if err == nil || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("run %d: err = %v, want the stop's failure", i, err)
		}
		for _, b := range store.infos {
			if statusOf(b) == pg.StatusDone {
				t.Fatalf("run %d: a run whose stop failed stored backup.info DONE", i)
			}
		}
	}
}

// The sealer seals the last volume only with the stop's message: labels
// closed without it (the controller failed) is an error, and nothing
// tells the assembler the stream is complete.
func TestSealerNeedsTheStop(t *testing.T) {
	src := smallFiles(t, 0)
	layout, err := src.Begin(context.Background(), &pg.BackupInfo{})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := tarball.CodecByName("", 0)
	pl := newPlan()
	pl.publish(layout, 1<<20, uploaders.Limits{MinPartSize: 1, MaxParts: 10000, MaxObjectSize: 1 << 40})
	entries := make(chan tarball.Entry, 1)
	walked := make(chan struct{})
	entries <- tarball.Entry{Archive: "data", Header: &tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o700}}
	close(entries)
	close(walked)
	copied := make(chan struct{})
	labels := make(chan stopped)
	close(labels) // the controller failed: no stop message
	blocks := make(chan *blockJob, 64)
	ordered := make(chan *blockJob, 64)
	s := &sealer{codec: c, maxSize: 1 << 30, blockSize: 16 << 10, prefix: "p", bufs: newBuffers(8, 16<<10),
		progress: &Progress{}, plan: pl, info: &pg.BackupInfo{}, manifest: newBackupManifest(false)}
	err = s.run(context.Background(), entries, walked, copied, labels, blocks, ordered)
	if !errors.Is(err, errCutShort) {
		t.Fatalf("sealer without the stop's message: %v, want errCutShort", err)
	}
	for j := range ordered {
		if j.end {
			t.Fatal("the sealer ended its stream without the stop's label")
		}
	}
}

// A stream closed without its end message is never read as complete: the
// assembler and the uploader pool say so instead of succeeding.
func TestStreamsClosedWithoutEndAreNotComplete(t *testing.T) {
	ctx := context.Background()
	pl := newPlan()
	pl.publish(&pg.Layout{}, 1<<20, uploaders.Limits{MinPartSize: 1, MaxParts: 10000, MaxObjectSize: 1 << 40})
	fs, _ := uploaders.NewFileStore(t.TempDir())
	tr := newTracker(fs, &Progress{})
	c, _ := tarball.CodecByName("", 0)

	ordered := make(chan *blockJob)
	close(ordered)
	chunks := make(chan *uploadJob, 1)
	err := assembler(ctx, tr, c, pl, newBuffers(1, 16), newBuffers(1, 0), ordered, chunks)
	if !errors.Is(err, errCutShort) {
		t.Errorf("assembler on a closed stream: %v, want errCutShort", err)
	}
	if j, ok := <-chunks; ok {
		t.Errorf("the assembler passed on %+v", j)
	}

	jobs := make(chan *uploadJob)
	close(jobs)
	if err := uploaderPool(ctx, tr, 3, 0, pl, newBuffers(4, 0), jobs); !errors.Is(err, errCutShort) {
		t.Errorf("uploader pool on a closed stream: %v, want errCutShort", err)
	}
}

// An object is completed only when every part was stored: a part that
// failed, or never got its turn, makes the completion refuse rather than
// wait or store an object with a hole.
func TestCompletionWaitsForEveryPartAndTheRun(t *testing.T) {
	o := &object{key: "k", idle: make(chan struct{}, 1)}
	o.queued()
	o.queued()
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() { waited <- o.await(ctx) }()
	o.settle(nil)
	cancel() // one part still pending: only the run's end releases it
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("await with a part pending and the run ended: %v", err)
	}
	o.settle(errors.New("AccessDenied"))
	if err := o.await(context.Background()); !errors.Is(err, errPartFailed) {
		t.Fatalf("await after a failed part: %v, want errPartFailed", err)
	}
	ok := &object{key: "k", idle: make(chan struct{}, 1)}
	ok.queued()
	go ok.settle(nil)
	if err := ok.await(context.Background()); err != nil {
		t.Fatalf("await with every part stored: %v", err)
	}
}

// --max-bandwidth holds the upload back: the bucket starts empty, so n
// bytes at r bytes a second take at least n/r seconds. Only a lower bound
// is asserted (a slower machine only takes longer).
func TestUploaderKeepsToMaxBandwidth(t *testing.T) {
	store, _ := newSmallStore(t, 4096, 40)
	c, _ := tarball.CodecByName("", 0)
	const rate = 2 << 20
	start := time.Now()
	res, err := Run(context.Background(), smallFiles(t, 0), Options{Store: store, ServerName: "main",
		BackupID: "20261124T120000", Codec: c, MaxArchiveSize: 400 << 10, Jobs: 3, BlockSize: 16 << 10,
		MaxBandwidth: rate})
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	// res.Bytes counts the volumes, which go through the bucket.
	min := time.Duration(float64(res.Bytes) / rate * float64(time.Second) * 0.9)
	if elapsed < min {
		t.Errorf("%d bytes at --max-bandwidth %d B/s took %s, less than %s", res.Bytes, rate, elapsed, min)
	}
}

func readFile(t *testing.T, root, key string) []byte {
	t.Helper()
	fs, _ := uploaders.NewFileStore(root)
	b, err := fs.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return b
}
