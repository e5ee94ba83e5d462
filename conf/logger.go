package conf

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// NewLogger logs to out in the format of Barman's Python logging,
// "2026-11-24 14:08:34,889 [12383] ERROR: message", or with --log-format
// json as one JSON object per line that carries the backup ID
// (none when backupID is empty).
func NewLogger(cfg *Config, out io.Writer, backupID string) zerolog.Logger {
	level := zerologLevel(cfg.LogLevel())
	pid := os.Getpid()
	if cfg.LogFormat == "json" {
		zerolog.TimeFieldFormat = time.RFC3339Nano
		ctx := zerolog.New(out).Level(level).With().Timestamp()
		if backupID != "" {
			ctx = ctx.Str("backup_id", backupID)
		}
		return ctx.Int("pid", pid).Logger()
	}
	zerolog.TimeFieldFormat = "2006-01-02 15:04:05.000"
	w := zerolog.ConsoleWriter{
		Out:        out,
		NoColor:    true,
		PartsOrder: []string{zerolog.TimestampFieldName, zerolog.LevelFieldName, zerolog.MessageFieldName},
		FormatTimestamp: func(i any) string {
			return strings.Replace(fmt.Sprint(i), ".", ",", 1)
		},
		FormatLevel: func(i any) string {
			return fmt.Sprintf("[%d] %s:", pid, pythonLevel(fmt.Sprint(i)))
		},
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

func pythonLevel(l string) string {
	switch l {
	case "debug":
		return "DEBUG"
	case "info":
		return "INFO"
	case "warn":
		return "WARNING"
	case "error":
		return "ERROR"
	}
	return "CRITICAL"
}

func zerologLevel(py int) zerolog.Level {
	switch {
	case py <= 10:
		return zerolog.DebugLevel
	case py <= 20:
		return zerolog.InfoLevel
	case py <= 30:
		return zerolog.WarnLevel
	case py <= 40:
		return zerolog.ErrorLevel
	case py <= 50:
		return zerolog.FatalLevel
	}
	return zerolog.Disabled
}

// LogSink is where log lines go: stderr, or a progress display while one
// runs, which prints them above its lines so the two never mix.
type LogSink struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogSink writes to w until Redirect says otherwise.
func NewLogSink(w io.Writer) *LogSink { return &LogSink{w: w} }

func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Redirect sends the lines to w from now on.
func (s *LogSink) Redirect(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}
