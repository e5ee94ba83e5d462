// Command barman-cloud-restore restores a backup made by
// barman-cloud-backup (ours or Barman's) from the cloud, as Barman's
// barman-cloud-restore does and with its command line:
//
//	barman-cloud-restore [OPTIONS] SOURCE_URL SERVER_NAME BACKUP_ID RECOVERY_DIR
//
// The archives are downloaded in parallel ranged reads and extracted as
// they stream in; every file is checked against the backup's
// backup_manifest as it is written, everything is synced at the end, and
// global/pg_control is written last. Exit codes are Barman's
// (barman/clients/cloud_cli.py): 0 restored, 1 the restore failed, 2 the
// cloud is unreachable, 3 bad input, 4 other errors.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// Exit codes: Barman's (barman/clients/cloud_cli.py).
const (
	exitOK        = 0
	exitOperation = 1
	exitNetwork   = 2
	exitInput     = 3
	exitGeneral   = 4
)

func main() {
	ctx, interrupt := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops the restore, which then says what it
		// left; a second one ends the process at once.
		<-sigs
		interrupt()
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "%s: interrupted again: exiting at once; RECOVERY_DIR is unfinished, without global/pg_control\n", conf.RestoreProg)
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	stopProfile := startProfile()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	interrupt()
	os.Exit(code)
}

// startProfile writes a CPU profile to $BCB_CPUPROFILE, for profiling
// the hot path with go tool pprof; not for production.
func startProfile() (stop func()) {
	path := os.Getenv("BCB_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	pprof.StartCPUProfile(f)
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	rc, action, err := conf.LoadRestore(args)
	if err != nil {
		var ue *conf.UsageError
		if errors.As(err, &ue) && ue.Usage {
			fmt.Fprint(stderr, conf.RestoreUsage())
			fmt.Fprintf(stderr, "%s: error: %s\n", conf.RestoreProg, ue.Msg)
			return exitInput
		}
		log := conf.NewLogger(&rc.Config, stderr, "")
		log.Error().Msg(err.Error())
		return exitCode(err)
	}
	switch action {
	case conf.ActionHelp:
		fmt.Fprint(stdout, conf.RestoreHelp())
		return exitOK
	case conf.ActionVersion:
		fmt.Fprintf(stdout, "%s %s\n%s (Go implementation) %s\n", conf.RestoreProg, conf.BarmanVersion, conf.RestoreProg, conf.Version)
		return exitOK
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(actors.RestoreMemoryLimit(rc.Jobs))
	}
	sink := conf.NewLogSink(stderr)
	log := conf.NewLogger(&rc.Config, sink, "")
	ctx = log.WithContext(ctx)
	start := time.Now()
	progress := &actors.RestoreProgress{}
	interactive := showProgress(&rc, stderr)
	var endProgress func(ok bool)
	if interactive {
		endProgress = startProgress(sink, progress)
	}
	rep, err := restore(ctx, &rc, progress)
	if endProgress != nil {
		endProgress(err == nil)
	}
	if err != nil {
		log.Error().Msg(describe(err))
	}
	code := exitCode(err)
	if rc.Test || (rep == nil && err == nil) {
		return code
	}
	s := newSummary(&rc, rep, progress, start, err, code)
	if err == nil {
		l := log
		if interactive {
			// The person watching sees the outcome without -v.
			l = log.Level(min(log.GetLevel(), zerolog.InfoLevel))
		}
		l.Info().Msg(s.line())
	}
	if rc.JSONSummary != "" {
		if werr := s.writeJSON(rc.JSONSummary); werr != nil {
			log.Warn().Msgf("writing the JSON summary: %v", werr)
		}
	}
	return code
}

// connectivityError is the cloud failing the first request.
type connectivityError struct{ err error }

func (e *connectivityError) Error() string { return e.err.Error() }
func (e *connectivityError) Unwrap() error { return e.err }

// generalError is a failure before the restore starts that Barman's
// catch-all turns into exit 4 (a malformed URL, say).
type generalError struct{ err error }

func (e *generalError) Error() string { return e.err.Error() }
func (e *generalError) Unwrap() error { return e.err }

// restore checks the options and the cloud as Barman's main does, then
// restores; with -t it stops after the check.
func restore(ctx context.Context, rc *conf.RestoreConfig, progress *actors.RestoreProgress) (*actors.RestoreReport, error) {
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	store, err := uploaders.New(ctx, rc.DestinationURL, rc.StoreOptions())
	if err != nil {
		// Barman's get_cloud_interface raising: main's catch-all, exit 4.
		return nil, &generalError{err}
	}
	defer store.Close()
	store = uploaders.WithRetry(store, uploaders.DefaultRetry)
	if err := store.Test(ctx); err != nil {
		return nil, &connectivityError{err}
	}
	if rc.Test {
		return nil, nil
	}
	reader, err := uploaders.ReaderOf(store)
	if err != nil {
		return nil, err
	}
	return actors.Restore(ctx, actors.RestoreOptions{Store: store, Reader: reader, Server: rc.ServerName,
		Backup: rc.BackupID, Target: actors.RecoveryTarget{TLI: rc.TargetTLI, LSN: rc.TargetLSN, Time: rc.TargetTime},
		Jobs: rc.Jobs, RecoveryDir: rc.RecoveryDir, Tablespaces: rc.Tablespaces, NoVerify: rc.NoVerify,
		Progress: progress})
}

// exitCode classifies an error into Barman's exit codes, once, here.
func exitCode(err error) int {
	var ue *conf.UsageError
	var fe *conf.FileError
	var ie *conf.InputError
	var nb *actors.NoBackupError
	var ce *connectivityError
	var ge *generalError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.As(err, &fe):
		return exitInput
	case errors.As(err, &ie), errors.As(err, &ge):
		return exitGeneral
	case errors.As(err, &nb) && nb.Unknown:
		// Barman's parse_backup_id raises ValueError, and main's
		// catch-all exits 4.
		return exitGeneral
	case errors.Is(err, uploaders.ErrBucketMissing):
		return exitOperation
	case errors.As(err, &ce):
		// Barman's test_connectivity failing: NetworkErrorExit.
		return exitNetwork
	}
	// What the restore met once started: damage, a missing volume or
	// backup, a store failing mid-way, a full disk, an interruption.
	return exitOperation
}

// describe is the error's one line, in Barman's words where it has them,
// with what the recovery directory holds after a failure.
func describe(err error) string {
	var missing *uploaders.BucketMissingError
	var damage *actors.DamageError
	switch {
	case errors.As(err, &missing):
		return missing.Error()
	case errors.Is(err, context.Canceled):
		return "Barman cloud restore was interrupted by the user" + leftover(err)
	case errors.Is(err, actors.ErrNoBackup), errors.Is(err, actors.ErrNotEmpty):
		var nb *actors.NoBackupError
		if errors.As(err, &nb) && nb.Unknown {
			// Barman raises these and its catch-all words them.
			return "Barman cloud restore exception: " + err.Error()
		}
		return err.Error()
	case errors.As(err, &damage):
		return "Restore failed: " + err.Error() + leftover(err)
	}
	var ce *connectivityError
	if errors.As(err, &ce) {
		// Barman's words, once: the store's error may carry ours.
		return "Can't connect to cloud provider: " + strings.Replace(err.Error(), uploaders.ErrUnreachable.Error()+": ", "", 1)
	}
	return "Barman cloud restore exception: " + err.Error() + leftover(err)
}

// leftover tells what a failed restore left behind, if anything.
func leftover(err error) string {
	var inc *actors.IncompleteError
	if !errors.As(err, &inc) || len(inc.Dirs) == 0 {
		return ""
	}
	return fmt.Sprintf("; unfinished restore left in %s, without global/pg_control, which PostgreSQL refuses to start: empty it before trying again",
		strings.Join(inc.Dirs, " and "))
}
