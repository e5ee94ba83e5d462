package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pgbackup/barman-cloud-backup/conf"
)

// newLogger logs to stderr in the format of Barman's Python logging:
// "2026-11-24 14:08:34,889 [12383] ERROR: message".
func newLogger(cfg *conf.Config) zerolog.Logger {
	zerolog.TimeFieldFormat = "2006-01-02 15:04:05.000"
	pid := os.Getpid()
	w := zerolog.ConsoleWriter{
		Out:        os.Stderr,
		NoColor:    true,
		PartsOrder: []string{zerolog.TimestampFieldName, zerolog.LevelFieldName, zerolog.MessageFieldName},
		FormatTimestamp: func(i any) string {
			return strings.Replace(fmt.Sprint(i), ".", ",", 1)
		},
		FormatLevel: func(i any) string {
			return fmt.Sprintf("[%d] %s:", pid, pythonLevel(fmt.Sprint(i)))
		},
	}
	return zerolog.New(w).Level(zerologLevel(cfg.LogLevel())).With().Timestamp().Logger()
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
