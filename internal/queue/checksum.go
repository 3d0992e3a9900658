package queue

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Envelopes and state files carry a SHA-256 of their JSON, written as
// "sha256:<64 hex> " in front of it, so that a changed byte — a flipped
// bit on disk, a hand edit of the sender — is detected on load and the
// message is moved to corrupt/ instead of being delivered. It is a
// checksum, not a signature: whoever can write the spool can recompute it.
const sumPrefix = "sha256:"

// seal puts the checksum in front of js.
func seal(js []byte) []byte {
	sum := sha256.Sum256(js)
	out := make([]byte, 0, len(sumPrefix)+2*len(sum)+1+len(js))
	out = append(out, sumPrefix...)
	out = hex.AppendEncode(out, sum[:])
	out = append(out, ' ')
	return append(out, js...)
}

// unseal checks and strips the checksum. Data that starts with "{" was
// written before checksums existed (tlsmail up to the version that added
// them): it is accepted unchecked, so an admin who upgrades with mail in
// the queue loses none of it.
func unseal(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] == '{' {
		return b, nil // written by an older version: no checksum to check
	}
	n := len(sumPrefix) + 2*sha256.Size
	if len(b) <= n || !bytes.HasPrefix(b, []byte(sumPrefix)) || b[n] != ' ' {
		return nil, fmt.Errorf("no checksum")
	}
	js := b[n+1:]
	sum := sha256.Sum256(js)
	if got := hex.EncodeToString(sum[:]); got != string(b[len(sumPrefix):n]) {
		return js, fmt.Errorf("checksum mismatch (stored %.12s…, computed %.12s…)", b[len(sumPrefix):n], got)
	}
	return js, nil
}
