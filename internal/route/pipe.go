package route

import "strings"

// splitPipe splits an alias value into its address targets and its
// "|command" target, which takes the rest of the value (a command may
// hold commas; config checks that it starts a target). The command is
// only ever read from the configuration: an address a client gives is
// looked up as an alias key or a user, never run.
func splitPipe(value string) (addrs, cmd string, ok bool) {
	i := strings.IndexByte(value, '|')
	if i < 0 {
		return value, "", false
	}
	return value[:i], strings.TrimSpace(value[i+1:]), true
}

// IsPipeCommand reports whether cmd is the command of a "|command" alias
// target in this configuration: the delivery side checks a queued pipe
// recipient against it, so a queue entry alone never names a command to
// run.
func (r *Router) IsPipeCommand(cmd string) bool { return r.pipes[cmd] }
