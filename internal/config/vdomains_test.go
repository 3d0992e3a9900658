package config

import (
	"strings"
	"testing"
)

// The README's "Several domains and quotas" settings load and mean what it
// says; bad values are refused with their line.
func TestMailboxSettings(t *testing.T) {
	c, err := Load(write(t, `sender_login = "enforce"
`+good+`
[sender_login_maps]
"alice@example.org" = ["boss@example.org", "@lists.example.org"]

[quota]
storage = "1G"
messages = 0
[quota.user]
"Alice@example.org" = { storage = "5G", messages = 100000 }
"postmaster" = { storage = "0" }
"bob" = { messages = -1 }
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.SenderLogin != SenderLoginEnforce || strings.Join(c.SenderLoginExtra("ALICE@example.org"), ",") != "boss@example.org,@lists.example.org" {
		t.Errorf("sender_login = %q, maps %v", c.SenderLogin, c.SenderLoginExtra("alice@example.org"))
	}
	for user, want := range map[string][2]int64{
		"alice@example.org": {5 << 30, 100000}, "postmaster": {0, 0}, "carol": {1 << 30, 0}, "bob": {1 << 30, 0},
	} {
		if s, m := c.QuotaFor(user); s != want[0] || m != want[1] {
			t.Errorf("QuotaFor(%s) = %d, %d; want %d, %d", user, s, m, want[0], want[1])
		}
	}
	d, _ := Load(write(t, good))
	if d.SenderLogin != SenderLoginOff {
		t.Errorf("default sender_login %q, want off", d.SenderLogin)
	}
	if s, m := d.QuotaFor("alice"); s != 0 || m != 0 {
		t.Error("no quota by default")
	}
	for bad, want := range map[string]string{
		`sender_login = "strict"` + "\n" + good:                `sender_login "strict"`,
		good + "\n[quota]\nstorage = \"lots\"\n":               "quota.storage",
		good + "\n[quota.user]\n\"a b\" = { messages = 1 }\n":  "not a user name",
		good + "\n[sender_login_maps]\nalice = [\"nobody\"]\n": "not an address",
	} {
		if _, err := Load(write(t, bad)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error with %q, got %v", want, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "512": 512, "1K": 1024, "10M": 10 << 20, "2G": 2 << 30, "1T": 1 << 40, "5MB": 5 << 20, "3GiB": 3 << 30, " 7 k ": 7 << 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "1X", "G", "1.5G", "99999999999T"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}
