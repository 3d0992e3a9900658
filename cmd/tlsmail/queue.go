package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tlsmail/tlsmail/internal/queue"
	"github.com/tlsmail/tlsmail/internal/server"
)

const queueUsage = `usage: tlsmail queue <list|show ID|flush|retry ID|delete ID> [--config FILE | --data DIR] [--json]

  list        the queued messages: ID, age, size, sender, recipients pending, next try, last reply;
              then the messages set aside, never delivered (queue/corrupt/: failed their checks;
              queue/hold/: undeliverable double-bounce notices), with the reason
  show ID     one message's envelope and each recipient's state
  flush       try every queued message now (asks the running server)
  retry ID    try one message now (asks the running server)
  delete ID   remove a message without delivering or bouncing it, also one set aside (asks the running server)
  tlsrpt [DAY]  send the TLS-RPT (RFC 8460) reports of DAY (default today, so far) now`

func runQueue(env *cliEnv, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(env.stdout, queueUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub := args[0]
	env.name = "tlsmail queue " + sub
	fs := newFlags(env, "", "")
	cfgFile := fs.String("config", "", "the server's configuration file")
	data := fs.String("data", "tlsmail-data", "the data directory (dev default)")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, code, done := parseInterspersed(env, fs, args[1:])
	if done {
		return code
	}
	dataDir, _, err := serverFiles(env, fs, *cfgFile, *data)
	if err != nil {
		return configError(env, err)
	}
	spool := filepath.Join(dataDir, "queue")
	needID := func() (string, bool) {
		if len(pos) != 1 {
			return "", false
		}
		return pos[0], true
	}
	switch sub {
	case "list":
		items, err := queue.Inspect(spool)
		if err != nil {
			return fail(env, "%v", err)
		}
		if *asJSON {
			if items == nil {
				items = []queue.Item{}
			}
			return writeJSON(env, items)
		}
		printQueue(env, items)
		return exitOK
	case "show":
		id, ok := needID()
		if !ok {
			return usageError(env, "want one queue ID")
		}
		it, err := queue.InspectOne(spool, id)
		if err != nil {
			return fail(env, "%v", err)
		}
		if *asJSON {
			return writeJSON(env, it)
		}
		e := it.Envelope
		if a := it.Aside; a != nil {
			fmt.Fprintf(env.stdout, "SET ASIDE (%s), not delivered: %s\n", asideWhere(a), a.Reason)
		}
		fmt.Fprintf(env.stdout, "id:       %s\nreceived: %s (%s ago)\nfrom:     <%s>\nsize:     %d\nclient:   %s helo=%s user=%s\ntls:      %s\n",
			e.ID, e.Received.Format(time.RFC3339), time.Since(e.Received).Round(time.Second), e.From, e.Size, e.ClientIP, e.Helo, e.AuthUser, orDash(e.TLS))
		if e.RequireTLS {
			fmt.Fprintln(env.stdout, "requiretls: yes")
		}
		for i, r := range e.Recipients {
			var s queue.RcptState
			if i < len(it.State.Rcpts) {
				s = it.State.Rcpts[i]
			}
			fmt.Fprintf(env.stdout, "  <%s> %s attempts=%d", r.Addr, s.Status, s.Attempts)
			if !s.NextTry.IsZero() && s.Status == queue.Pending {
				fmt.Fprintf(env.stdout, " next=%s", s.NextTry.Format(time.RFC3339))
			}
			if l := s.Last; l != nil {
				fmt.Fprintf(env.stdout, "\n      last: %s", l.Reply())
				if s.Expired {
					fmt.Fprint(env.stdout, " (expired)")
				}
				if l.Detail != "" {
					fmt.Fprintf(env.stdout, "\n      detail: %s", l.Detail)
				}
				if l.TLS != nil {
					fmt.Fprintf(env.stdout, "\n      tls: %s", l.TLS.Summary())
				}
			}
			fmt.Fprintln(env.stdout)
		}
		return exitOK
	case "flush", "retry", "delete", "tlsrpt":
		cmd := []string{sub}
		if sub == "tlsrpt" {
			cmd = append(cmd, pos...)
		} else if sub != "flush" {
			id, ok := needID()
			if !ok {
				return usageError(env, "want one queue ID")
			}
			cmd = append(cmd, id)
		} else if sub == "flush" && len(pos) != 0 {
			return usageError(env, "flush takes no arguments")
		}
		r, err := server.Control(dataDir, cmd...)
		if err != nil {
			return fail(env, "%v", err)
		}
		if *asJSON {
			return writeJSON(env, r)
		}
		fmt.Fprintln(env.stdout, r.Text)
		return exitOK
	}
	env.name = "tlsmail queue"
	return usageError(env, "unknown subcommand %q", sub)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// asideWhere names where a set-aside message is, for people.
func asideWhere(a *queue.Aside) string {
	if a.Where == "msg" {
		return "corrupt, still in queue/msg/ until the server moves it"
	}
	return "queue/" + a.Where + "/"
}

func printQueue(env *cliEnv, all []queue.Item) {
	var items, aside []queue.Item
	for _, it := range all {
		if it.Aside != nil {
			aside = append(aside, it)
		} else {
			items = append(items, it)
		}
	}
	if len(aside) > 0 {
		defer printAside(env, aside)
	}
	if len(items) == 0 {
		fmt.Fprintln(env.stdout, "queue is empty")
		return
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAGE\tSIZE\tFROM\tPENDING\tNEXT TRY\tLAST REPLY")
	for _, it := range items {
		pending, next, last := 0, time.Time{}, ""
		for _, s := range it.State.Rcpts {
			if s.Status == queue.Pending {
				pending++
				if next.IsZero() || s.NextTry.Before(next) {
					next = s.NextTry
				}
			}
			if s.Last != nil {
				last = s.Last.Reply()
			}
		}
		nextS := "now"
		if d := time.Until(next); d > 0 {
			nextS = "in " + d.Round(time.Second).String()
		}
		if len(last) > 60 {
			last = last[:57] + "..."
		}
		from := it.Envelope.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d/%d\t%s\t%s\n", it.Envelope.ID, time.Since(it.Envelope.Received).Round(time.Second), it.Envelope.Size,
			from, pending, len(it.Envelope.Recipients), nextS, strings.ReplaceAll(last, "\t", " "))
	}
	tw.Flush()
}

// printAside lists the messages that are kept but not delivered.
func printAside(env *cliEnv, items []queue.Item) {
	fmt.Fprintf(env.stdout, "\n%d set aside, not delivered:\n", len(items))
	tw := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHERE\tSINCE\tFROM\tREASON")
	for _, it := range items {
		where := it.Aside.Where + "/"
		if it.Aside.Where == "msg" {
			where = "msg/ (not moved yet)"
		}
		since := "-"
		if !it.Aside.Since.IsZero() {
			since = it.Aside.Since.UTC().Format(time.RFC3339)
		}
		from := it.Envelope.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Envelope.ID, where, since, from, strings.ReplaceAll(it.Aside.Reason, "\t", " "))
	}
	tw.Flush()
}
