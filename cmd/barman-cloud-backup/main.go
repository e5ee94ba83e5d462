// Command barman-cloud-backup takes a hot base backup of a local
// PostgreSQL instance and ships it to object storage in Barman's cloud
// format, as a drop-in replacement for Barman's tool of the same name.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
	"github.com/pgbackup/barman-cloud-backup/pg"
	"github.com/pgbackup/barman-cloud-backup/tarball"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// Barman's exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the backup failed
	exitNetwork = 2 // the cloud could not be reached
	exitInput   = 3 // bad command-line input
	exitGeneral = 4 // anything else
	// exitAbortStop tells Barman to stop retrying a post_backup_retry_script.
	exitAbortStop = 63
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, action, err := conf.Load(args)
	if err != nil {
		var ue *conf.UsageError
		if errors.As(err, &ue) && ue.Usage {
			fmt.Fprint(os.Stderr, conf.Usage())
			fmt.Fprintf(os.Stderr, "%s: error: %s\n", conf.Prog, ue.Msg)
			return exitInput
		}
		log := conf.NewLogger(&cfg, os.Stderr, "")
		log.Error().Msg(err.Error())
		return exitInput
	}
	switch action {
	case conf.ActionHelp:
		fmt.Print(conf.Help())
		return exitOK
	case conf.ActionVersion:
		fmt.Print(versionText())
		return exitOK
	}
	if cfg.PrintConfig {
		fmt.Print(cfg.TOML())
		return exitOK
	}
	hook, hookErr := hookMode()
	r := &runInfo{cfg: &cfg, id: newBackupID(hook), start: time.Now(), progress: &actors.Progress{},
		hook: hook, hookErr: hookErr}
	sink := conf.NewLogSink(os.Stderr)
	log := conf.NewLogger(&cfg, sink, r.id)
	signalled, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		// The first signal ends the run, which cleans up; a second one
		// ends the process at once. Handled here rather than by putting
		// the default action back, since a SIGINT ignored when we were
		// started (a job started with & by a script) would come back
		// ignored. finished ends this goroutine when run returns.
		select {
		case <-sigs:
			interrupt()
		case <-finished:
			return
		}
		select {
		case sig := <-sigs:
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-finished:
		}
	}()
	ctx := log.WithContext(signalled)
	if path := os.Getenv("BCB_CPUPROFILE"); path != "" {
		// For profiling the hot path (go tool pprof); not for production.
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	var endProgress func(ok bool)
	r.interactive = showProgress(&cfg, hook)
	if r.interactive {
		endProgress = startProgress(sink, r.progress)
	}
	res, err := backup(ctx, r)
	if endProgress != nil {
		endProgress(err == nil)
	}
	var failed *actors.FailedError
	if err != nil && !errors.As(err, &failed) {
		// Failed backups were logged by the engine with Barman's wording.
		log.Error().Msg(describe(err))
	}
	code := exitCode(err)
	if !cfg.Test {
		report(&log, r, res, err, code)
	}
	return code
}

// versionText is what -V prints. The first line is Barman's, naming the
// Barman release whose command line this implements, because clients
// (CloudNativePG among them) parse "barman-cloud-backup VERSION" to know
// which options they may pass; our own version follows.
func versionText() string {
	return fmt.Sprintf("%s %s\n%s (Go implementation) %s\n", conf.Prog, conf.BarmanVersion, conf.Prog, conf.Version)
}

// runInfo is what the parts of one run share.
type runInfo struct {
	cfg      *conf.Config
	id       string
	start    time.Time
	progress *actors.Progress
	// interactive is a person watching a terminal.
	interactive bool
	// hook is Barman running us as a hook; hookErr an unsupported one,
	// reported once the cloud has been checked, as Barman does.
	hook    bool
	hookErr error
}

// newBackupID is Barman's ID for the backup: the one Barman gave in hook
// mode, else the start time. Taken before anything is logged, so that
// every log line can carry it.
func newBackupID(hook bool) string {
	if id := os.Getenv("BARMAN_BACKUP_ID"); hook && id != "" {
		return id
	}
	return time.Now().Format("20060102T150405")
}

// report logs the summary line and writes the summary files asked for.
// A file that cannot be written is a warning: the backup itself is what
// the exit code is about.
func report(log *zerolog.Logger, r *runInfo, res *actors.Result, err error, code int) {
	s := newSummary(r, res, err, code)
	if err == nil {
		l := *log
		if r.interactive {
			// The person watching sees the outcome without -v.
			l = log.Level(min(log.GetLevel(), zerolog.InfoLevel))
		}
		l.Info().Msg(s.line())
	}
	if path := r.cfg.JSONSummary; path != "" {
		if werr := s.writeJSON(path); werr != nil {
			log.Warn().Msgf("writing the JSON summary: %v", werr)
		}
	}
	if path := r.cfg.PrometheusTextfile; path != "" {
		if werr := s.writePrometheus(path); werr != nil {
			log.Warn().Msgf("writing the Prometheus textfile: %v", werr)
		}
	}
}

// connectivityError is -t's answer that the cloud cannot be used.
type connectivityError struct{ err error }

func (e *connectivityError) Error() string { return e.err.Error() }
func (e *connectivityError) Unwrap() error { return e.err }

// storeError is a backup the cloud cannot take, found before PostgreSQL
// is touched: Barman 3.16 finds it at the first upload and exits 1.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// exitCode classifies an error into Barman's exit codes, once, here.
func exitCode(err error) int {
	var ce *connectivityError
	var se *storeError
	var unrecoverable *unrecoverableError
	var ue *conf.UsageError
	var fe *conf.FileError
	var failed *actors.FailedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.As(err, &fe):
		return exitInput
	case errors.As(err, &failed), errors.As(err, &se), errors.Is(err, uploaders.ErrBucketMissing), errors.Is(err, actors.ErrClaim):
		// A backup that started fails with 1 whatever the cause, as in
		// Barman; so does a missing bucket, -t included (Barman 3.16).
		return exitFailed
	case errors.As(err, &ce) && errors.Is(err, uploaders.ErrUnreachable):
		// Only -t answers 2 (Barman 3.16).
		return exitNetwork
	case errors.Is(err, uploaders.ErrUnreachable):
		return exitFailed
	case errors.As(err, &unrecoverable):
		return exitAbortStop
	case errors.Is(err, pg.ErrConnect), errors.Is(err, errCheck), errors.Is(err, actors.ErrClash),
		errors.Is(err, context.Canceled):
		return exitFailed
	}
	return exitGeneral
}

func describe(err error) string {
	var missing *uploaders.BucketMissingError
	switch {
	case errors.As(err, &missing):
		return missing.Error()
	case errors.Is(err, uploaders.ErrUnreachable):
		return err.Error()
	case errors.Is(err, pg.ErrConnect):
		return err.Error() // Barman's "Cannot connect to postgres: ..."
	case errors.Is(err, context.Canceled):
		return "Barman cloud backup was interrupted by the user"
	}
	return "Barman cloud backup exception: " + err.Error()
}

var errCheck = errors.New("postgres cannot be backed up")

func backup(ctx context.Context, r *runInfo) (*actors.Result, error) {
	cfg := r.cfg
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := tarball.CodecByName(cfg.Compression, cfg.CompressionLevel)
	if err != nil {
		return nil, &conf.UsageError{Msg: "argument --compression-level: " + err.Error()}
	}
	store, err := uploaders.New(ctx, cfg.DestinationURL, cfg.StoreOptions())
	if err != nil {
		return nil, err
	}
	defer store.Close()
	store = uploaders.WithRetry(store, uploaders.DefaultRetry)
	// The same check for -t and before a backup, so that an endpoint
	// typo or a missing bucket is one line before PostgreSQL is touched.
	// Since Barman 3.16 only -t answers 2: a backup fails with 1.
	if err := store.Test(ctx); err != nil {
		if cfg.Test {
			return nil, &connectivityError{err}
		}
		return nil, &storeError{err}
	}
	if cfg.Test {
		return nil, nil
	}
	if r.hookErr != nil {
		return nil, r.hookErr
	} else if r.hook {
		return uploadBarmanBackup(ctx, r, store, codec)
	}
	conn, err := pg.Connect(ctx, pg.ConnString(cfg.Host, cfg.Port, cfg.User, cfg.DBName))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.OnNotice(r.progress.Notify)
	if err := conn.Check(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", errCheck, err)
	}
	opts := r.engineOptions(ctx, store, codec)
	opts.BackupName = cfg.BackupName
	return actors.Run(ctx, &pg.LiveBackup{Conn: conn, Fast: cfg.ImmediateCheckpoint}, opts)
}

// pagePolicies are --page-checksums' choices.
var pagePolicies = map[string]actors.PagePolicy{"warn": actors.WarnPages, "fail": actors.FailPages, "off": actors.SkipPages}

// engineOptions are the engine's settings for a live backup and a hook
// alike.
func (r *runInfo) engineOptions(ctx context.Context, store uploaders.Store, codec tarball.Codec) actors.Options {
	maxSize := r.cfg.MaxArchiveSize
	if l := store.Limits(); maxSize >= l.MaxObjectSize {
		// Barman's warning, words and doubled "to" included (cloud.py).
		zerolog.Ctx(ctx).Warn().Msgf("max-archive-size too big. Capping it to to %s", conf.PrettySize(l.MaxObjectSize))
		maxSize = l.MaxObjectSize
	}
	opts := actors.Options{
		Store:          store,
		ServerName:     r.cfg.ServerName,
		BackupID:       r.id,
		Codec:          codec,
		MaxArchiveSize: maxSize,
		MinChunkSize:   r.cfg.MinChunkSize,
		MaxBandwidth:   r.cfg.MaxBandwidth,
		Jobs:           r.cfg.Jobs,
		Progress:       r.progress,
		Pages:          pagePolicies[r.cfg.PageChecksums],
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// Without a limit the heap may grow to twice what is live before
		// a collection; the engine's memory is bounded, so tell the
		// runtime once the part size is known.
		opts.MemoryLimit = func(n int64) { debug.SetMemoryLimit(n) }
	}
	return opts
}
