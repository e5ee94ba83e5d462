package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
)

// showProgress is true when a person is watching: stderr is a terminal
// and the run is neither quiet nor a connectivity test.
func showProgress(rc *conf.RestoreConfig, stderr io.Writer) bool {
	f, ok := stderr.(*os.File)
	return ok && !rc.Test && rc.Quiet == 0 && isatty.IsTerminal(f.Fd())
}

// phaseWidth fits the longest phase name, so the lines' figures align.
const phaseWidth = len("download")

// startProgress draws one live line per phase on stderr: download (the
// stored bytes fetched of the backup's total, rate and time left),
// extract (the tar bytes and files written), sync (files and directories
// synced, then pg_control); log lines are printed above them meanwhile.
func startProgress(sink *conf.LogSink, p *actors.RestoreProgress) (end func(ok bool)) {
	container := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(24), mpb.WithRefreshRate(150*time.Millisecond))
	sink.Redirect(container)
	bar := func(name string, figures func() string) *mpb.Bar {
		return container.New(0, mpb.BarStyle(),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-*s", phaseWidth, name))),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return figures() })))
	}
	var download, extract, sync *mpb.Bar
	var downloadEnd, syncEnd time.Time
	rate := func(n int64, since, until time.Time) string {
		if until.IsZero() {
			until = time.Now()
		}
		secs := until.Sub(since).Seconds()
		if secs < 0.5 {
			return ""
		}
		return fmt.Sprintf(", %s/s", conf.PrettySize(int64(float64(n)/secs)))
	}
	update := func() {
		phase := p.Phase()
		if phase >= actors.RestoreDownload && download == nil {
			since := p.Since(actors.RestoreDownload)
			download = bar("download", func() string {
				done, total := p.Downloaded.Load(), p.Total.Load()
				s := fmt.Sprintf("%s / %s", conf.PrettySize(done), conf.PrettySize(total)) + rate(done, since, downloadEnd)
				if secs := time.Since(since).Seconds(); downloadEnd.IsZero() && secs > 1 && done > 0 && total > done {
					left := time.Duration(float64(total-done) / (float64(done) / secs) * float64(time.Second))
					s += ", ETA " + left.Round(time.Second).String()
				}
				return s
			})
			extract = bar("extract", func() string {
				n := p.Extracted.Load()
				return fmt.Sprintf("%s of tar, %d files written", conf.PrettySize(n), p.Files.Load()) + rate(n, since, downloadEnd)
			})
		}
		if download != nil && downloadEnd.IsZero() {
			total := max(p.Total.Load(), 1)
			download.SetTotal(total, false)
			download.SetCurrent(min(p.Downloaded.Load(), total))
			extract.SetTotal(total, false)
			extract.SetCurrent(min(p.Downloaded.Load(), total))
		}
		if phase >= actors.RestoreSync && sync == nil {
			downloadEnd = p.Since(actors.RestoreSync)
			download.SetTotal(-1, true)
			extract.SetTotal(-1, true)
			sync = bar("sync", func() string {
				return fmt.Sprintf("%d of %d files and directories synced", p.Synced.Load(), p.SyncTotal.Load())
			})
		}
		if sync != nil && syncEnd.IsZero() {
			sync.SetTotal(max(p.SyncTotal.Load(), 1), false)
			sync.SetCurrent(p.Synced.Load())
		}
	}
	stop, done := make(chan bool), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case ok := <-stop:
				update()
				for _, b := range []*mpb.Bar{download, extract, sync} {
					switch {
					case b == nil:
					case ok:
						b.SetTotal(-1, true)
					default:
						b.Abort(false)
					}
				}
				return
			case <-tick.C:
				update()
			}
		}
	}()
	return func(ok bool) {
		stop <- ok
		<-done
		// The container draws the lines' last state at its next refresh.
		time.Sleep(200 * time.Millisecond)
		container.Wait()
		sink.Redirect(os.Stderr)
	}
}
