package main

import (
	"strings"
	"testing"
)

// JSON output keeps SMTP replies readable: "<nobody@localhost>", not
// "\u003cnobody@localhost\u003e".
func TestJSONOutputDoesNotEscapeAngleBrackets(t *testing.T) {
	var b strings.Builder
	if err := jsonEncoder(&b).Encode(map[string]string{"reply": "550 5.1.1 <nobody@localhost>: User unknown & gone"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"550 5.1.1 <nobody@localhost>: User unknown & gone"`) {
		t.Errorf("got %s", b.String())
	}
}
