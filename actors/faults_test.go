package actors

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// A fault is what goes wrong in one run of the matrix: the nth call of
// one kind fails (permanently, or once and transiently, which the retry
// decorator must ride out), or the run is interrupted at a phase.
type fault struct {
	name string
	// kind is a store call (Put, Create, Get, Delete, List, NewMultipart,
	// Upload, Complete, Abort), Begin or End of the source, or a phase
	// at which the run is cancelled (cancel:start, cancel:copy,
	// cancel:stop, cancel:tail, cancel:manifest).
	kind      string
	nth       int
	transient bool
	// also is a second fault of the same run: a cleanup call failing
	// after a first failure.
	also *fault
}

// faultStore is a real file store that injects faults and records what a
// run asked of it: every backup.info it was sent, and how every
// multipart upload ended.
type faultStore struct {
	*uploaders.FileStore
	limits  uploaders.Limits
	faults  []fault
	cancel  context.CancelFunc
	stopped *atomic.Bool // set by the source once the backup is stopped

	mu      sync.Mutex
	calls   map[string]int
	fired   []string
	infos   [][]byte
	uploads []*faultMultipart
	// tail is set once a call was made after the stop.
	tail bool
}

func (s *faultStore) Limits() uploaders.Limits { return s.limits }

// hit counts a call of kind and returns the error to inject, if any;
// ctx is the call's, which a cancelling fault has ended by then.
func (s *faultStore) hit(ctx context.Context, kind string) error {
	// A network store fails a call whose context is done; the file
	// store would not, and a clean-up on the run's cancelled context
	// would pass unseen.
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.calls[kind]++
	n := s.calls[kind]
	afterStop := false
	if (kind == "Upload" || kind == "Put" || kind == "Complete") && s.stopped.Load() && !s.tail {
		s.tail, afterStop = true, true
	}
	s.mu.Unlock()
	for _, f := range s.faults {
		switch {
		case f.kind == "cancel:copy" && kind == "Upload" && n == 1,
			f.kind == "cancel:tail" && afterStop:
			s.note(f.name)
			s.cancel()
			return ctx.Err()
		case f.kind == kind && f.nth == n:
			s.note(f.name)
			if f.transient {
				return fmt.Errorf("injected %s call %d: %w", kind, n, syscall.ECONNRESET)
			}
			return fmt.Errorf("injected %s call %d: AccessDenied", kind, n)
		}
	}
	return nil
}

func (s *faultStore) note(name string) {
	s.mu.Lock()
	s.fired = append(s.fired, name)
	s.mu.Unlock()
}

func (s *faultStore) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasSuffix(key, "/backup.info") {
		for _, f := range s.faults {
			if f.kind == "cancel:manifest" && bytes.Contains(data, []byte("status=DONE")) {
				s.note(f.name)
				s.cancel()
				return ctx.Err()
			}
		}
	}
	if err := s.hit(ctx, "Put"); err != nil {
		return err
	}
	if err := s.FileStore.Put(ctx, key, data); err != nil {
		return err
	}
	if strings.HasSuffix(key, "/backup.info") {
		s.mu.Lock()
		s.infos = append(s.infos, append([]byte(nil), data...))
		s.mu.Unlock()
	}
	return nil
}

func (s *faultStore) Create(ctx context.Context, key string, data []byte) error {
	if err := s.hit(ctx, "Create"); err != nil {
		return err
	}
	return s.FileStore.Create(ctx, key, data)
}

func (s *faultStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.hit(ctx, "Get"); err != nil {
		return nil, err
	}
	return s.FileStore.Get(ctx, key)
}

func (s *faultStore) Delete(ctx context.Context, key string) error {
	if err := s.hit(ctx, "Delete"); err != nil {
		return err
	}
	return s.FileStore.Delete(ctx, key)
}

func (s *faultStore) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.hit(ctx, "List"); err != nil {
		return nil, err
	}
	return s.FileStore.List(ctx, prefix)
}

// ListDir is the catalogue's listing (the read-back): a List too.
func (s *faultStore) ListDir(ctx context.Context, prefix, delimiter string) (uploaders.Listing, error) {
	if err := s.hit(ctx, "List"); err != nil {
		return uploaders.Listing{}, err
	}
	return s.FileStore.ListDir(ctx, prefix, delimiter)
}

func (s *faultStore) NewMultipart(ctx context.Context, key string) (uploaders.Multipart, error) {
	if err := s.hit(ctx, "NewMultipart"); err != nil {
		return nil, err
	}
	mp, err := s.FileStore.NewMultipart(ctx, key)
	if err != nil {
		return nil, err
	}
	m := &faultMultipart{Multipart: mp, store: s, key: key}
	s.mu.Lock()
	s.uploads = append(s.uploads, m)
	s.mu.Unlock()
	return m, nil
}

// faultMultipart records how an upload ended: completed, aborted, or
// only asked to abort (the abort itself refused).
type faultMultipart struct {
	uploaders.Multipart
	store *faultStore
	key   string
	mu    sync.Mutex
	state string // "", "completed", "abort refused", "aborted"
}

func (m *faultMultipart) set(state string) {
	m.mu.Lock()
	m.state = state
	m.mu.Unlock()
}

func (m *faultMultipart) Upload(ctx context.Context, p uploaders.Part) error {
	if err := m.store.hit(ctx, "Upload"); err != nil {
		return err
	}
	return m.Multipart.Upload(ctx, p)
}

func (m *faultMultipart) Complete(ctx context.Context) error {
	if err := m.store.hit(ctx, "Complete"); err != nil {
		return err
	}
	if err := m.Multipart.Complete(ctx); err != nil {
		return err
	}
	m.set("completed")
	return nil
}

func (m *faultMultipart) Abort(ctx context.Context) error {
	if err := m.store.hit(ctx, "Abort"); err != nil {
		m.set("abort refused")
		return err
	}
	if err := m.Multipart.Abort(ctx); err != nil {
		return err
	}
	m.set("aborted")
	return nil
}

// faultSource stands in for the server's backup API and counts how often
// backup mode was ended: by the stop, or by Abort while it was open.
type faultSource struct {
	*dirSource
	hook    bool
	faults  []fault
	cancel  context.CancelFunc
	stopped atomic.Bool

	mu      sync.Mutex
	begun   bool
	open    bool
	endings int
}

func (f *faultSource) has(kind string) bool {
	for _, x := range f.faults {
		if x.kind == kind {
			return true
		}
	}
	return false
}

func (f *faultSource) Begin(ctx context.Context, info *pg.BackupInfo) (*pg.Layout, error) {
	f.mu.Lock()
	f.begun, f.open = true, true // as if pg_backup_start had run
	f.mu.Unlock()
	switch {
	case f.has("Begin"):
		return nil, errors.New("injected Begin: could not connect")
	case f.has("cancel:start"):
		f.cancel() // an interrupt during the checkpoint
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.dirSource.Begin(ctx, info)
}

func (f *faultSource) End(ctx context.Context, info *pg.BackupInfo) ([]byte, error) {
	switch {
	case f.has("End"):
		return nil, errors.New("injected End: the WAL archive is broken")
	case f.has("cancel:stop"):
		f.cancel() // an interrupt while pg_backup_stop waits for the archive
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	if f.open {
		f.open = false
		f.endings++
	}
	f.mu.Unlock()
	f.stopped.Store(true)
	if f.hook {
		return nil, nil // Barman's backup_label is in data/ already
	}
	return f.dirSource.End(ctx, info)
}

func (f *faultSource) Abort(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open {
		f.open = false
		f.endings++
	}
}

// faultFiles is a small PGDATA: 20 files of 24 KiB and a tablespace, so
// that every object goes up in several parts.
func faultFiles(t *testing.T, hook bool) *dirSource {
	dir := t.TempDir()
	d := &dirSource{pgdata: filepath.Join(dir, "data"), tbs: filepath.Join(dir, "tbs")}
	write(t, filepath.Join(d.pgdata, "PG_VERSION"), 3, 1)
	write(t, filepath.Join(d.pgdata, "global", "pg_control"), 8192, 2)
	for i := range 20 {
		write(t, filepath.Join(d.pgdata, "base", "5", fmt.Sprint(16000+i)), 24<<10, int64(10+i))
	}
	if hook {
		if err := os.WriteFile(filepath.Join(d.pgdata, "backup_label"), []byte("LABEL: barman\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(d.tbs, "PG_15_202209061", "5", "16500"), 40<<10, 6)
	return d
}

type matrixConfig struct {
	jobs      int
	bandwidth int64
	codec     string
	split     bool
	hook      bool
}

func (c matrixConfig) String() string {
	s := fmt.Sprintf("J%d", c.jobs)
	if c.bandwidth > 0 {
		s += "/bw"
	}
	if c.codec != "" {
		s += "/" + c.codec
	}
	if c.split {
		s += "/split"
	}
	if c.hook {
		s += "/hook"
	}
	return s
}

func matrixFaults() []fault {
	var fs []fault
	add := func(kind string, nths ...int) {
		for _, n := range nths {
			fs = append(fs, fault{name: fmt.Sprintf("%s#%d", kind, n), kind: kind, nth: n})
		}
	}
	add("Put", 1, 2)
	add("Create", 1)
	add("List", 1, 2)
	add("NewMultipart", 1, 3)
	add("Upload", 1, 5)
	add("Complete", 1, 2)
	// A refused part leaves uploads open: their aborts fail once (the
	// retry must get through) or for good (the run must still end, and
	// have tried).
	fs = append(fs,
		fault{name: "Upload#2+Abort#1~", kind: "Upload", nth: 2, also: &fault{kind: "Abort", nth: 1, transient: true}},
		fault{name: "Upload#2+Abort#1", kind: "Upload", nth: 2, also: &fault{kind: "Abort", nth: 1}},
		fault{name: "Delete#1~", kind: "Delete", nth: 1, transient: true},
		fault{name: "Upload#3~", kind: "Upload", nth: 3, transient: true},
	)
	for _, k := range []string{"Begin", "End", "cancel:start", "cancel:copy", "cancel:stop", "cancel:tail", "cancel:manifest"} {
		fs = append(fs, fault{name: k, kind: k})
	}
	return fs
}

// The fault-injection matrix (issue 21): every kind of store call failing
// at several points, the source failing to start or stop, and the run
// interrupted at each phase, crossed with -J 1/3, with and without
// --max-bandwidth, compressed or not, one volume or split, and hook mode.
// Whatever happens, Run returns; backup mode is ended exactly once; no
// backup.info says DONE unless the run succeeded, and then it is the last
// object stored; every multipart upload is completed or aborted; the
// lock is gone.
func TestFaultMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the matrix takes minutes")
	}
	var configs []matrixConfig
	for _, jobs := range []int{1, 3} {
		for _, bw := range []int64{0, 16 << 20} {
			for _, codec := range []string{"", "gz"} {
				for _, split := range []bool{false, true} {
					configs = append(configs, matrixConfig{jobs: jobs, bandwidth: bw, codec: codec, split: split})
				}
			}
		}
	}
	// Hook mode differs in what a failure leaves (no backup.info at all):
	// crossed with -J and splitting.
	for _, jobs := range []int{1, 3} {
		for _, split := range []bool{false, true} {
			configs = append(configs, matrixConfig{jobs: jobs, codec: "gz", split: split, hook: true})
		}
	}
	faults := matrixFaults()
	// The runs only read their PGDATA: one each for live and hook mode.
	trees := map[bool]*dirSource{false: faultFiles(t, false), true: faultFiles(t, true)}
	var ran, failed atomic.Int64
	start := time.Now()
	// The runs are independent: both cores share them.
	t.Run("runs", func(t *testing.T) {
		for _, cfg := range configs {
			for _, f := range faults {
				t.Run(cfg.String()+"/"+f.name, func(t *testing.T) {
					t.Parallel()
					if checkFaultRun(t, cfg, f, trees[cfg.hook]) != nil {
						failed.Add(1)
					}
					ran.Add(1)
				})
			}
		}
	})
	t.Logf("fault matrix: %d combinations (%d configurations × %d faults), %d runs failed as injected, in %s",
		ran.Load(), len(configs), len(faults), failed.Load(), time.Since(start).Round(time.Second))
}

// checkFaultRun runs one combination and checks every invariant; it
// returns the run's error.
func checkFaultRun(t *testing.T, cfg matrixConfig, f fault, tree *dirSource) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	faults := []fault{f}
	if f.also != nil {
		faults = append(faults, *f.also)
	}
	copyOf := *tree
	src := &faultSource{dirSource: &copyOf, hook: cfg.hook, faults: faults, cancel: cancel}
	root := t.TempDir()
	fs, err := uploaders.NewFileStore(root)
	if err != nil {
		t.Fatal(err)
	}
	// 40 parts per object: 200 KiB parts for one 4 MiB volume, or the
	// 8 KiB minimum for 128 KiB volumes.
	store := &faultStore{FileStore: fs, faults: faults, cancel: cancel, stopped: &src.stopped,
		calls:  map[string]int{},
		limits: uploaders.Limits{MinPartSize: 8 << 10, MaxParts: 40, MaxObjectSize: 1 << 40}}
	codec, err := tarball.CodecByName(cfg.codec, 0)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Store: uploaders.WithRetry(store, uploaders.Retry{Attempts: 3, Base: time.Millisecond, Cap: 2 * time.Millisecond}),
		ServerName: "main", BackupID: "20261206T120000", Codec: codec, MaxArchiveSize: 4 << 20,
		Jobs: cfg.jobs, Compressors: 2, BlockSize: 16 << 10, MaxBandwidth: cfg.bandwidth}
	if cfg.split {
		opts.MaxArchiveSize = 128 << 10
	}
	barmanInfo := []byte("backup_label=None\nstatus=DONE\nserver_name=main\n")
	if cfg.hook {
		opts.Manifest = barmanInfo
	}

	done := make(chan error, 1)
	var res *Result
	go func() {
		var err error
		res, err = Run(ctx, src, opts)
		done <- err
	}()
	// A bound far above any run here (a fraction of a second), so that
	// only a hang reaches it, however busy the machine.
	select {
	case err = <-done:
	case <-time.After(90 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("Run did not return (a hang); fired %v; goroutines:\n%s", store.fired, buf)
	}

	fired := len(store.fired) > 0 || f.kind == "Begin" || f.kind == "End" || strings.HasPrefix(f.kind, "cancel:")
	prefix := "main/base/20261206T120000"

	// Backup mode ended exactly once, whatever happened.
	src.mu.Lock()
	begun, open, endings := src.begun, src.open, src.endings
	src.mu.Unlock()
	if begun && (open || endings != 1) {
		t.Errorf("backup mode: still open %v, ended %d times; want ended once", open, endings)
	}
	// The lock is gone.
	if _, serr := os.Stat(filepath.Join(root, prefix+".lock")); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the lock %s.lock is still there (%v)", prefix, serr)
	}
	// Every multipart upload was completed or aborted (or, the abort
	// refused for good, at least asked to abort).
	permanentAbort := f.also != nil && f.also.kind == "Abort" && !f.also.transient
	for _, m := range store.uploads {
		m.mu.Lock()
		st := m.state
		m.mu.Unlock()
		switch {
		case st == "completed" || st == "aborted":
		case st == "abort refused" && permanentAbort:
		default:
			t.Errorf("multipart upload of %s left %q: neither completed nor aborted", m.key, st)
		}
	}
	var infos []string
	for _, b := range store.infos {
		infos = append(infos, statusOf(b))
	}

	if err != nil {
		if !fired {
			t.Fatalf("the run failed with no fault injected: %v", err)
		}
		var fe *FailedError
		if !errors.As(err, &fe) && !errors.Is(err, ErrClaim) {
			t.Errorf("a failed run returned %T %v, want FailedError or ErrClaim", err, err)
		}
		if strings.Contains(err.Error(), errCutShort.Error()) || strings.Contains(err.Error(), errPartFailed.Error()) {
			t.Errorf("the error reported is a consequence, not the cause: %v", err)
		}
		// No backup.info with status DONE was ever written.
		for i, s := range infos {
			if s == pg.StatusDone {
				t.Errorf("backup.info #%d of a failed run says DONE (all: %v)", i+1, infos)
			}
		}
		switch {
		case cfg.hook && len(infos) > 0:
			t.Errorf("hook mode: a failed run stored backup.info %v; Barman's hook stores none", infos)
		case !cfg.hook && errors.As(err, &fe):
			// What the catalogue keeps is FAILED, unless that Put was the
			// one refused.
			b, rerr := os.ReadFile(filepath.Join(root, prefix, "backup.info"))
			if rerr == nil && statusOf(b) != pg.StatusFailed {
				t.Errorf("backup.info left by a failed run says %q", statusOf(b))
			}
			if rerr != nil && !(f.kind == "Put" || strings.HasPrefix(f.kind, "cancel:manifest")) {
				t.Errorf("no FAILED backup.info: %v", rerr)
			}
		}
		return err
	}

	// The run succeeded: then the fault was one it may survive.
	if fired && !f.transient && f.also == nil && f.kind != "Delete" && f.kind != "cancel:manifest" {
		t.Errorf("fault %s fired and the run still succeeded", f.name)
	}
	if len(infos) != 1 || infos[0] != pg.StatusDone {
		t.Errorf("a successful run stored backup.info %v, want one DONE", infos)
	}
	if last := res.Objects[len(res.Objects)-1]; last.Key != prefix+"/backup.info" {
		t.Errorf("the last object stored is %s, not backup.info", last.Key)
	}
	keys, _ := fs.List(context.Background(), prefix+"/")
	sort.Strings(keys)
	// The stop's label is "backup_label"; Barman's, in hook mode, a
	// root file like any other.
	if members := readArchive(t, root, keys, "data", codec.Ext()); members["backup_label"] == 0 && members["./backup_label"] == 0 {
		t.Errorf("the data archive of a successful run has no backup_label (members %d)", len(members))
	}
	return nil
}

// statusOf is backup.info's status line.
func statusOf(b []byte) string {
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(line, "status="); ok {
			return s
		}
	}
	return ""
}
