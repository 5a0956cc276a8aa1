package cluster

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// slogHCLog lets hashicorp/raft log through our slog.Logger, so that its
// messages are structured like ours and filtered at their own level (Raft
// is chatty at info).
type slogHCLog struct {
	l       *slog.Logger
	name    string
	level   hclog.Level
	implied []any
}

func newSlogHCLog(l *slog.Logger, name string, level slog.Level) *slogHCLog {
	return &slogHCLog{l: l, name: name, level: toHCLevel(level)}
}

func toHCLevel(l slog.Level) hclog.Level {
	switch {
	case l < slog.LevelDebug:
		return hclog.Trace
	case l < slog.LevelInfo:
		return hclog.Debug
	case l < slog.LevelWarn:
		return hclog.Info
	case l < slog.LevelError:
		return hclog.Warn
	}
	return hclog.Error
}

func toSlogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (a *slogHCLog) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < a.level {
		return
	}
	attrs := make([]any, 0, 2+len(a.implied)+len(args))
	attrs = append(attrs, "component", a.name)
	attrs = append(attrs, a.implied...)
	attrs = append(attrs, args...)
	a.l.Log(context.Background(), toSlogLevel(level), msg, attrs...)
}

func (a *slogHCLog) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *slogHCLog) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *slogHCLog) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *slogHCLog) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *slogHCLog) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *slogHCLog) IsTrace() bool { return a.level <= hclog.Trace }
func (a *slogHCLog) IsDebug() bool { return a.level <= hclog.Debug }
func (a *slogHCLog) IsInfo() bool  { return a.level <= hclog.Info }
func (a *slogHCLog) IsWarn() bool  { return a.level <= hclog.Warn }
func (a *slogHCLog) IsError() bool { return a.level <= hclog.Error }

func (a *slogHCLog) ImpliedArgs() []any { return a.implied }

func (a *slogHCLog) With(args ...any) hclog.Logger {
	c := *a
	c.implied = append(append([]any(nil), a.implied...), args...)
	return &c
}

func (a *slogHCLog) Name() string { return a.name }

func (a *slogHCLog) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.ResetNamed(name)
}

func (a *slogHCLog) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

func (a *slogHCLog) SetLevel(level hclog.Level) { a.level = level }
func (a *slogHCLog) GetLevel() hclog.Level      { return a.level }

func (a *slogHCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *slogHCLog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &lineWriter{log: a, level: hclog.Info}
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		w.level = opts.ForceLevel
	}
	return w
}

// lineWriter logs each written line through log, at the level its
// "[LEVEL]" tag names (as hclog text output and Go's log package users
// write them), else at level.
type lineWriter struct {
	log   *slogHCLog
	level hclog.Level
}

// levelTag finds the first "[LEVEL]" tag in s and returns its level and
// the text after it.
func levelTag(s string) (hclog.Level, string, bool) {
	tags := [...]struct {
		tag   string
		level hclog.Level
	}{
		{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn}, {"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error},
	}
	for _, t := range tags {
		if i := strings.Index(s, t.tag); i >= 0 {
			return t.level, strings.TrimSpace(s[i+len(t.tag):]), true
		}
	}
	return hclog.NoLevel, s, false
}

func (w *lineWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		level, msg, ok := levelTag(s)
		if !ok {
			level = w.level
		}
		w.log.Log(level, msg)
	}
	return len(p), nil
}
