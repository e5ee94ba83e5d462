// Command barman-cloud-backup-verify reads a backup made by
// barman-cloud-backup back from the cloud and checks it end to end:
//
//	barman-cloud-backup-verify [OPTIONS] SOURCE_URL SERVER_NAME BACKUP_ID
//
// It takes the provider options and credentials of barman-cloud-backup,
// shaped as Barman's barman-cloud-backup-show, and exits 0 when the backup
// is sound, 1 when damage is found (or the backup does not exist), and
// Barman's 2 (the cloud is unreachable), 3 (bad input) and 4 (any other
// error) otherwise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
	"github.com/pgbackup/barman-cloud-backup/uploaders"
)

// Exit codes: Barman's (barman/clients/cloud_cli.py), 1 also for damage.
const (
	exitOK      = 0
	exitDamaged = 1
	exitNetwork = 2
	exitInput   = 3
	exitGeneral = 4
)

func main() {
	signalled, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(signalled, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	vc, action, err := conf.ParseVerify(args)
	if err != nil {
		var ue *conf.UsageError
		if errors.As(err, &ue) && ue.Usage {
			fmt.Fprint(stderr, conf.VerifyUsage())
			fmt.Fprintf(stderr, "%s: error: %s\n", conf.VerifyProg, ue.Msg)
			return exitInput
		}
		log := conf.NewLogger(&vc.Config, stderr, "")
		log.Error().Msg(err.Error())
		return exitInput
	}
	switch action {
	case conf.ActionHelp:
		fmt.Fprint(stdout, conf.VerifyHelp())
		return exitOK
	case conf.ActionVersion:
		fmt.Fprintf(stdout, "%s %s\n%s (Go implementation) %s\n", conf.VerifyProg, conf.BarmanVersion, conf.VerifyProg, conf.Version)
		return exitOK
	}
	log := conf.NewLogger(&vc.Config, stderr, "")
	ctx = log.WithContext(ctx)
	rep, err := check(ctx, &vc)
	if err != nil {
		log.Error().Msg(describe(err))
		return exitCode(err)
	}
	if rep == nil { // -t
		return exitOK
	}
	if vc.JSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(rep); err != nil {
			log.Error().Msgf("writing the report: %v", err)
			return exitGeneral
		}
	} else {
		writeReport(stdout, rep)
	}
	if !rep.Sound {
		return exitDamaged
	}
	return exitOK
}

// connectivityError is the cloud failing the check before anything is
// read.
type connectivityError struct{ err error }

func (e *connectivityError) Error() string { return e.err.Error() }
func (e *connectivityError) Unwrap() error { return e.err }

// check builds the store as barman-cloud-backup does, checks that it
// answers, and verifies the backup; with -t it stops after the check.
func check(ctx context.Context, vc *conf.VerifyConfig) (*actors.RestoreReport, error) {
	if err := vc.Validate(); err != nil {
		return nil, err
	}
	store, err := uploaders.New(ctx, vc.DestinationURL, vc.StoreOptions())
	if err != nil {
		return nil, err
	}
	defer store.Close()
	store = uploaders.WithRetry(store, uploaders.DefaultRetry)
	if err := store.Test(ctx); err != nil {
		return nil, &connectivityError{err}
	}
	if vc.Test {
		return nil, nil
	}
	reader, err := uploaders.ReaderOf(store)
	if err != nil {
		return nil, err
	}
	return verifyBackup(ctx, Options{Store: store, Reader: reader, Server: vc.ServerName,
		Backup: vc.BackupID, Jobs: vc.Jobs, CheckWAL: vc.CheckWAL})
}

// exitCode classifies an error into Barman's exit codes, once, here.
func exitCode(err error) int {
	var ue *conf.UsageError
	switch {
	case errors.As(err, &ue):
		return exitInput
	case errors.Is(err, actors.ErrNoBackup), errors.Is(err, uploaders.ErrBucketMissing), errors.Is(err, context.Canceled):
		return exitDamaged
	case errors.Is(err, uploaders.ErrUnreachable):
		return exitNetwork
	}
	var ce *connectivityError
	if errors.As(err, &ce) {
		// As Barman's connectivity check: any refusal there means the
		// cloud cannot be used.
		return exitNetwork
	}
	return exitGeneral
}

func describe(err error) string {
	var missing *uploaders.BucketMissingError
	switch {
	case errors.As(err, &missing):
		return missing.Error()
	case errors.Is(err, context.Canceled):
		return "Barman cloud backup verify was interrupted by the user"
	case errors.Is(err, actors.ErrNoBackup):
		return err.Error()
	}
	return "Barman cloud backup verify exception: " + err.Error()
}

// writeReport prints one line per problem, the notes, then the summary.
func writeReport(w io.Writer, rep *actors.RestoreReport) {
	for _, p := range rep.Problems {
		fmt.Fprintln(w, p.String())
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
	fmt.Fprintln(w, summary(rep))
}

// summary is the last line: the verdict, then what was read.
func summary(rep *actors.RestoreReport) string {
	verdict := "SOUND"
	if !rep.Sound {
		verdict = fmt.Sprintf("DAMAGED (%s)", plural(len(rep.Problems), "problem"))
	}
	name := ""
	if rep.BackupName != "" {
		name = " (" + rep.BackupName + ")"
	}
	s := fmt.Sprintf("%s: backup %s%s of server %s: %s, %s stored, %s of tar read in %.1fs (%s/s)",
		verdict, rep.BackupID, name, rep.Server, plural(len(rep.Objects), "object"), conf.PrettySize(rep.StoredBytes), conf.PrettySize(rep.TarBytes),
		rep.Seconds, conf.PrettySize(int64(float64(rep.TarBytes)/max(rep.Seconds, 0.001))))
	switch rep.Manifest {
	case "checked":
		s += fmt.Sprintf(", %d of %d files of backup_manifest checked", rep.FilesChecked, rep.ManifestFiles)
	default:
		s += fmt.Sprintf(", %s, backup_manifest %s", plural(rep.Files, "file"), rep.Manifest)
	}
	if rep.PageChecksums == "checked" {
		s += fmt.Sprintf(", %d pages checked (%d failed)", rep.PagesChecked, rep.PageFailures)
	}
	if rep.WALChecked {
		s += fmt.Sprintf(", %s archived", plural(rep.WALSegments, "WAL segment"))
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
