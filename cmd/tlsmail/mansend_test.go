package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tlsmail/tlsmail/internal/config"
)

// TestManSendListsEveryAccountKey: tlsmail-send(1) documents every key an
// accounts file may have, and no other.
func TestManSendListsEveryAccountKey(t *testing.T) {
	documented := map[string]bool{}
	for _, k := range manSendAccountKeys {
		documented[k[0]] = true
	}
	typ := reflect.TypeFor[config.Account]()
	for i := range typ.NumField() {
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
		if !documented[key] {
			t.Errorf("account key %q is not in tlsmail-send(1)", key)
		}
		delete(documented, key)
	}
	for k := range documented {
		t.Errorf("tlsmail-send(1) documents %q, which config.Account does not have", k)
	}
}
