package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// versionInfo is what `tlsmail version` prints.
type versionInfo struct {
	Module    string   `json:"module"`
	Version   string   `json:"version"`
	Commit    string   `json:"commit,omitempty"`
	Time      string   `json:"commit_time,omitempty"`
	Modified  bool     `json:"modified,omitempty"`
	Go        string   `json:"go"`
	Platform  string   `json:"platform"`
	TLSGroups []string `json:"tls_groups"`
}

func runVersion(env *cliEnv, args []string) int {
	fs := newFlags(env, "", "Print the module version, the VCS commit it was built from, the Go version\nand the TLS key-exchange groups tlsmail offers (as a client) and accepts (as a server).")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, done := parse(env, fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return usageError(env, "unexpected argument %q", fs.Arg(0))
	}
	v := buildVersion()
	groups, err := offeredGroups()
	if err != nil {
		return fail(env, "TLS groups: %v", err)
	}
	v.TLSGroups = groups
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return exitOK
	}
	fmt.Fprintf(env.stdout, "tlsmail %s\n", v.Version)
	if v.Commit != "" {
		mod := ""
		if v.Modified {
			mod = " (modified)"
		}
		fmt.Fprintf(env.stdout, "commit     %s %s%s\n", v.Commit, v.Time, mod)
	}
	fmt.Fprintf(env.stdout, "module     %s\n", v.Module)
	fmt.Fprintf(env.stdout, "go         %s %s\n", v.Go, v.Platform)
	fmt.Fprintf(env.stdout, "tls groups %s\n", strings.Join(v.TLSGroups, " "))
	return exitOK
}

// buildVersion reads the module version and VCS stamp the Go toolchain
// embedded in the binary (go build / go install from a git work tree).
func buildVersion() versionInfo {
	v := versionInfo{Module: "github.com/tlsmail/tlsmail", Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if info.Main.Path != "" {
		v.Module = info.Main.Path
	}
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// offeredGroups is the list of key-exchange groups in a ClientHello
// made with tlsmail's TLS settings (Go's defaults, which GODEBUG can
// change), read from a real handshake over an in-memory pipe rather than
// from a list kept by hand. Servers accept the same groups.
func offeredGroups() ([]string, error) {
	var got []tls.CurveID
	errSeen := errors.New("client hello seen")
	srv := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		got = h.SupportedCurves
		return nil, errSeen
	}}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(10 * time.Second)
	_ = a.SetDeadline(deadline)
	_ = b.SetDeadline(deadline)
	done := make(chan error, 1)
	go func() { done <- tls.Server(b, srv).Handshake() }()
	_ = tls.Client(a, &tls.Config{ServerName: "localhost"}).Handshake() // fails: the server stops after the hello
	b.Close()
	if err := <-done; !errors.Is(err, errSeen) {
		return nil, fmt.Errorf("no client hello: %v", err)
	}
	names := make([]string, len(got))
	for i, c := range got {
		names[i] = c.String()
	}
	return names, nil
}
