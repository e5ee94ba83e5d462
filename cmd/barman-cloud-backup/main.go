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
	"strings"
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
		log := newLogger(&cfg)
		log.Error().Msg(err.Error())
		return exitInput
	}
	switch action {
	case conf.ActionHelp:
		fmt.Print(conf.Help())
		return exitOK
	case conf.ActionVersion:
		fmt.Printf("%s %s\n", conf.Prog, conf.Version)
		return exitOK
	}
	if cfg.PrintConfig {
		fmt.Print(cfg.TOML())
		return exitOK
	}
	log := newLogger(&cfg)
	if os.Getenv("GOMEMLIMIT") == "" {
		// Without a limit the heap may grow to twice what is live before a
		// collection; the engine's memory is bounded, so tell the runtime.
		debug.SetMemoryLimit(actors.MemoryBudget(cfg.Jobs, 0))
	}
	signalled, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, the default action is back: a second
		// one ends the process at once. The deferred stop ends this
		// goroutine when run returns.
		<-signalled.Done()
		stop()
	}()
	ctx := log.WithContext(signalled)
	if path := os.Getenv("BCB_CPUPROFILE"); path != "" {
		// For profiling the hot path (go tool pprof); not for production.
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	err = backup(ctx, &cfg)
	var failed *actors.FailedError
	if err != nil && !errors.As(err, &failed) {
		// Failed backups were logged by the engine with Barman's wording.
		log.Error().Msg(describe(err))
	}
	return exitCode(err)
}

// exitCode classifies an error into Barman's exit codes, once, here.
func exitCode(err error) int {
	var ue *conf.UsageError
	var fe *conf.FileError
	var failed *actors.FailedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), errors.As(err, &fe):
		return exitInput
	case errors.As(err, &failed):
		// A backup that started fails with 1 whatever the cause, as in
		// Barman: 2 is only for a cloud unreachable from the start.
		return exitFailed
	case errors.Is(err, uploaders.ErrUnreachable):
		return exitNetwork
	case errors.Is(err, errUnrecoverable):
		return exitAbortStop
	case errors.Is(err, pg.ErrConnect), errors.Is(err, errCheck), errors.Is(err, actors.ErrClash),
		errors.Is(err, context.Canceled):
		return exitFailed
	}
	return exitGeneral
}

func describe(err error) string {
	switch {
	case errors.Is(err, uploaders.ErrUnreachable):
		return err.Error()
	case errors.Is(err, pg.ErrConnect):
		return "C" + err.Error()[1:]
	case errors.Is(err, context.Canceled):
		return "Barman cloud backup was interrupted by the user"
	case errors.Is(err, errUnrecoverable):
		return "Barman cloud backup exception: " + strings.TrimPrefix(err.Error(), errUnrecoverable.Error()+": ")
	}
	return "Barman cloud backup exception: " + err.Error()
}

var errCheck = errors.New("postgres cannot be backed up")

func backup(ctx context.Context, cfg *conf.Config) error {
	log := zerolog.Ctx(ctx)
	if err := cfg.Validate(); err != nil {
		return err
	}
	codec, err := tarball.CodecByName(cfg.Compression, cfg.CompressionLevel)
	if err != nil {
		return &conf.UsageError{Msg: "argument --compression-level: " + err.Error()}
	}
	store, err := uploaders.New(ctx, cfg.DestinationURL, uploaders.Options{
		Provider:        cfg.CloudProvider,
		EndpointURL:     cfg.EndpointURL,
		Profile:         cfg.Profile,
		ReadTimeout:     cfg.ReadTimeout,
		Encryption:      cfg.Encryption,
		Tags:            cfg.UniqueTags(),
		Jobs:            cfg.Jobs,
		Credential:      cfg.Credential,
		EncryptionScope: cfg.EncryptionScope,
	})
	if err != nil {
		return err
	}
	store = uploaders.WithRetry(store, uploaders.DefaultRetry)
	if err := store.Test(ctx); err != nil {
		return err
	}
	if cfg.Test {
		return nil
	}
	if err := store.EnsureBucket(ctx); err != nil {
		return err
	}
	if hook, err := hookMode(); err != nil {
		return err
	} else if hook {
		return uploadBarmanBackup(ctx, cfg, store, codec)
	}
	conn, err := pg.Connect(ctx, pg.ConnString(cfg.Host, cfg.Port, cfg.User, cfg.DBName))
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Check(ctx); err != nil {
		return fmt.Errorf("%w: %v", errCheck, err)
	}
	id := time.Now().Format("20060102T150405")
	res, err := actors.Run(ctx, &pg.LiveBackup{Conn: conn, Fast: cfg.ImmediateCheckpoint}, actors.Options{
		Store:          store,
		ServerName:     cfg.ServerName,
		BackupID:       id,
		BackupName:     cfg.BackupName,
		Codec:          codec,
		MaxArchiveSize: cfg.MaxArchiveSize,
		Jobs:           cfg.Jobs,
	})
	if err != nil {
		return err
	}
	log.Info().Msgf("Backup %s stored: %d objects, %d bytes", id, len(res.Objects), res.Bytes)
	return nil
}
