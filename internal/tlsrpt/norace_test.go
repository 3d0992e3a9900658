//go:build !race

package tlsrpt

const raceEnabled = false
