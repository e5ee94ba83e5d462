package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/pgbackup/barman-cloud-backup/actors"
	"github.com/pgbackup/barman-cloud-backup/conf"
)

// showProgress is true when a person is watching: stderr is a terminal,
// the run is not quiet, and it is not a hook or a connectivity test.
func showProgress(cfg *conf.Config, hook bool) bool {
	return !hook && !cfg.Test && cfg.Quiet == 0 && isatty.IsTerminal(os.Stderr.Fd())
}

// startProgress draws one live line per phase on stderr (checkpoint,
// copying, waiting for WAL archiving, finishing) from p, until end is called; log lines are printed
// above them meanwhile. end(ok) leaves the lines as they are, the current
// one complete when ok, stopped otherwise.
func startProgress(sink *conf.LogSink, p *actors.Progress) (end func(ok bool)) {
	container := mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(24), mpb.WithRefreshRate(150*time.Millisecond))
	sink.Redirect(container)
	d := &display{p: p, container: container}
	stop, done := make(chan bool), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case ok := <-stop:
				d.update()
				d.end(ok)
				return
			case <-tick.C:
				d.update()
			}
		}
	}()
	return func(ok bool) {
		stop <- ok
		<-done
		// The container draws the lines' last state at its next refresh;
		// give it that refresh before it shuts down.
		time.Sleep(200 * time.Millisecond)
		container.Wait()
		sink.Redirect(os.Stderr)
	}
}

// display turns the engine's counters into the phase lines.
type display struct {
	p         *actors.Progress
	container *mpb.Progress

	checkpoint, copying, stopping, finishing *phaseBar
}

// nameWidth fits the longest phase name, so the lines' figures align.
const nameWidth = len(stopName)

// stopName is the stop phase as a DBA knows it: pg_backup_stop returns
// once the archive_command has shipped the backup's last WAL segment.
const stopName = "waiting for WAL archiving"

// phaseBar is one phase's line; its figures freeze when the phase ends,
// as the container keeps drawing finished lines.
type phaseBar struct {
	*mpb.Bar
	start time.Time
	end   atomic.Int64 // unix nanoseconds; 0 while running
}

func (b *phaseBar) elapsed() time.Duration {
	if end := b.end.Load(); end != 0 {
		return time.Unix(0, end).Sub(b.start)
	}
	return time.Since(b.start)
}

// finish ends the line: complete, or stopped where it was.
func (b *phaseBar) finish(ok bool) {
	if b == nil || b.end.Load() != 0 {
		return
	}
	b.end.Store(time.Now().UnixNano())
	if ok {
		b.SetTotal(-1, true)
	} else {
		b.Abort(false)
	}
}

// spinner starts a phase's line that shows its elapsed time, and after
// it what more, if anything, extra says.
func (d *display) spinner(name string, extra func() string) *phaseBar {
	b := &phaseBar{start: time.Now()}
	b.Bar = d.container.New(0, mpb.SpinnerStyle(), mpb.BarFillerOnComplete("done"),
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-*s", nameWidth, name))),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			s := b.elapsed().Round(100 * time.Millisecond).String()
			if extra != nil {
				s += extra()
			}
			return s
		})))
	return b
}

// stopNotice is PostgreSQL's latest notice since the stop was asked for
// ("still waiting for all required WAL segments to be archived (60
// seconds elapsed)"), so the person watching knows why it waits.
func (d *display) stopNotice() string {
	n := d.p.LastNotice()
	if n == nil || d.stopping == nil || n.Time.Before(d.stopping.start) {
		return ""
	}
	return fmt.Sprintf(" (PostgreSQL %s: %s)", n.Severity, n.Message)
}

func (d *display) update() {
	phase := d.p.Phase()
	if d.checkpoint == nil {
		d.checkpoint = d.spinner("checkpoint", nil)
	}
	if phase >= actors.PhaseCopy && d.copying == nil {
		d.checkpoint.finish(true)
		b := &phaseBar{start: time.Now()}
		b.Bar = d.container.New(0, mpb.BarStyle(),
			mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-*s", nameWidth, "copying"))),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return d.copyLine(b) })))
		d.copying = b
	}
	if d.copying != nil && d.copying.end.Load() == 0 {
		read := d.p.Read.Load()
		d.copying.SetTotal(max(d.p.Estimated.Load(), read, 1), false)
		d.copying.SetCurrent(read)
	}
	if phase >= actors.PhaseStop && phase < actors.PhaseDone && d.stopping == nil {
		d.copying.finish(true)
		d.stopping = d.spinner(stopName, d.stopNotice)
	}
	if phase >= actors.PhaseFinish && phase < actors.PhaseDone && d.finishing == nil {
		d.stopping.finish(true)
		d.finishing = d.spinner("finishing", nil)
	}
}

// copyLine is the copy's figures: read of the estimate, stored, ratio,
// throughput and time left.
func (d *display) copyLine(b *phaseBar) string {
	read, stored, est := d.p.Read.Load(), d.p.Stored.Load(), d.p.Estimated.Load()
	if b.end.Load() != 0 {
		est = read
	}
	line := fmt.Sprintf("%s / %s read, %s stored", conf.PrettySize(read), conf.PrettySize(max(est, read)), conf.PrettySize(stored))
	if stored > 0 {
		line += fmt.Sprintf(", ratio %.2f", float64(read)/float64(stored))
	}
	if secs := b.elapsed().Seconds(); secs > 0.5 {
		speed := float64(read) / secs
		line += fmt.Sprintf(", %s/s", conf.PrettySize(int64(speed)))
		if b.end.Load() == 0 && d.p.EstimateDone.Load() && speed > 0 && est > read {
			line += ", ETA " + time.Duration(float64(est-read)/speed*float64(time.Second)).Round(time.Second).String()
		}
	} else if b.end.Load() != 0 {
		line += fmt.Sprintf(" in %s", b.elapsed().Round(100*time.Millisecond))
	}
	return line
}

func (d *display) end(ok bool) {
	for _, b := range []*phaseBar{d.checkpoint, d.copying, d.stopping, d.finishing} {
		b.finish(ok)
	}
}
