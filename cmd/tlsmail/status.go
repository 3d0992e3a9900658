package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/tlsmail/tlsmail/internal/server"
)

// statusCertDays: a certificate with fewer days left makes `tlsmail
// status` exit 2 (the server logs an error from then on, certhealth.go).
const statusCertDays = 7

func runStatus(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Ask the running server how it is: version, uptime, listeners, certificates\n"+
		"in use with the days they have left, the queue and the TLS record store.\n"+
		"Exit 1 when no server answers, 2 when a certificate has less than 7 days left.\n"+
		"--json prints one object either way: \"running\": true and the status, or\n"+
		"\"running\": false (null: the control socket is not ours to open) and \"error\".")
	cfgFile := fs.String("config", "", "the server's configuration file")
	data := fs.String("data", "tlsmail-data", "the data directory (dev default)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return usageError(env, "unexpected argument %q", fs.Arg(0))
	}
	dataDir, _, err := serverFiles(env, fs, *cfgFile, *data)
	if err != nil {
		return configError(env, err)
	}
	r, err := server.Control(dataDir, "status")
	var why string
	var running *bool // null in JSON: we cannot tell
	switch {
	case errors.Is(err, os.ErrPermission):
		// A server started as root keeps its socket 0600: not "not running".
		why = fmt.Sprintf("the control socket in %s is not ours to open (run as the server's user or root): %v", dataDir, err)
	case err != nil || r.Status == nil:
		why = fmt.Sprintf("no server is running with data directory %s (its control socket does not answer)", dataDir)
		running = new(bool)
	}
	if why != "" {
		if *asJSON {
			// A script reads one JSON object whatever happened.
			writeJSON(env, statusJSON{Running: running, Error: why, DataDir: dataDir})
		}
		return fail(env, "%s", why)
	}
	st := r.Status
	if *asJSON {
		yes := true
		writeJSON(env, statusJSON{Running: &yes, Status: st})
	} else {
		printStatus(env.stdout, st)
	}
	for _, c := range st.Certificates {
		if c.DaysLeft < statusCertDays {
			return exitUsage
		}
	}
	return exitOK
}

// statusJSON is what `status --json` prints: running true and the
// server's status, or running false (null when it cannot be told: the
// control socket is not ours to open) and the error, with exit 1.
type statusJSON struct {
	Running *bool  `json:"running"`
	Error   string `json:"error,omitempty"`
	DataDir string `json:"data_dir,omitempty"`
	*server.Status
}

// printStatus writes st for a person.
func printStatus(w io.Writer, st *server.Status) {
	up := time.Duration(st.UptimeSeconds) * time.Second
	fmt.Fprintf(w, "tlsmail %s, pid %d, up %s (since %s)\n", st.Version, st.PID, up, st.Started.UTC().Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nlisteners:")
	for _, l := range st.Listeners {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", l.Name, l.Address, l.Service, l.Mode)
	}
	if len(st.Listeners) == 0 {
		fmt.Fprintln(tw, "  none")
	}
	fmt.Fprintln(tw, "\ncertificates:")
	for _, c := range st.Certificates {
		warn := ""
		switch {
		case c.DaysLeft <= 0:
			warn = "\tEXPIRED"
		case c.DaysLeft < statusCertDays:
			warn = "\tEXPIRES SOON"
		}
		src := c.Source
		if c.File != "" {
			src += " " + c.File
		}
		fmt.Fprintf(tw, "  %s\t%.0f days left\t(until %s)\t%s%s\n", c.Name, c.DaysLeft, c.NotAfter.UTC().Format("2006-01-02"), src, warn)
	}
	if len(st.Certificates) == 0 {
		fmt.Fprintln(tw, "  none")
	}
	tw.Flush()
	q := st.Queue
	fmt.Fprintf(w, "\nqueue: %d active, %d deferred, %d held, %d corrupt", q.Active, q.Deferred, q.Held, q.Corrupt)
	if !q.Oldest.IsZero() {
		fmt.Fprintf(w, "; oldest %s old", time.Duration(q.OldestAgeSeconds)*time.Second)
	}
	if q.Err != "" {
		fmt.Fprintf(w, " (error: %s)", q.Err)
	}
	fmt.Fprintln(w)
	if r := st.Records; r.Enabled {
		fmt.Fprintf(w, "records: on, %s (%d written, %d dropped since start)\n", r.File, r.Written, r.Dropped)
	} else {
		fmt.Fprintln(w, "records: off")
	}
}
