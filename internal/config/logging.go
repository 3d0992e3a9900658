package config

import "fmt"

// Log formats and outputs (log_format, log_output).
const (
	LogText     = "text"     // log/slog key=value lines
	LogJSON     = "json"     // one JSON object per line
	LogStderr   = "stderr"   // standard error (systemd's journal picks it up as plain lines)
	LogSyslog   = "syslog"   // RFC 3164 datagrams to /dev/log, facility mail
	LogJournald = "journald" // systemd's native protocol, with a field per log attribute
)

// Logging says how and where the server logs; it is part of Config
// (log_format, log_output next to log_level).
type Logging struct {
	LogFormat string `toml:"log_format"` // text (default) or json
	LogOutput string `toml:"log_output"` // stderr (default), syslog or journald
}

func (l *Logging) defaults() {
	if l.LogFormat == "" {
		l.LogFormat = LogText
	}
	if l.LogOutput == "" {
		l.LogOutput = LogStderr
	}
}

func (l *Logging) validate() error {
	switch l.LogFormat {
	case LogText, LogJSON:
	default:
		return bad(fmt.Sprintf("log_format %q: want text or json", l.LogFormat), "log_format")
	}
	switch l.LogOutput {
	case LogStderr, LogSyslog, LogJournald:
	default:
		return bad(fmt.Sprintf("log_output %q: want stderr, syslog or journald", l.LogOutput), "log_output")
	}
	return nil
}
