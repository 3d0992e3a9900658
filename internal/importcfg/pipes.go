package importcfg

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// pipeTarget makes an imported "|command" alias target one tlsmail takes.
// Postfix's local(8) and qmail-local run the command through /bin/sh
// with a PATH, so "|procmail" and "|preline procmail" are usual there;
// tlsmail wants the program's absolute path, so the program is looked up
// here, on the machine being migrated. ok is false, with why, when it is
// not found: a shell built-in ("|exit 67") or a program not installed.
func pipeTarget(t string) (target, why string, ok bool) {
	cmd := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "|"))
	if len(cmd) >= 2 && cmd[0] == '"' && cmd[len(cmd)-1] == '"' {
		cmd = strings.TrimSpace(cmd[1 : len(cmd)-1]) // Postfix's |"command"
	}
	if strings.HasPrefix(cmd, "/") {
		return "|" + cmd, "", true
	}
	prog, rest, _ := strings.Cut(cmd, " ")
	path, err := exec.LookPath(prog)
	if err != nil || !filepath.IsAbs(path) {
		return "", fmt.Sprintf("%q is no program found here (a shell built-in, or not installed): tlsmail runs a command by its absolute path; write the alias with one", prog), false
	}
	return strings.TrimSpace("|" + path + " " + rest), "", true
}
