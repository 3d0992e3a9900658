// Command gocat copies its standard input to its standard output: the Go
// counterpart of cat(1) that bench/sslbench runs behind each TLS wrapper,
// so the cost of starting a Go child is measured too.
package main

import (
	"io"
	"os"
)

func main() {
	if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
		os.Exit(111)
	}
}
