package maildir

import "testing"

// Names as Dovecot 2.3 writes them on disk (checked against a private
// Dovecot in imapd's TestFolderNamesSharedWithDovecot) and RFC 3501's
// example.
var mutf7Pairs = []struct{ name, enc string }{
	{"", ""},
	{"Sent", "Sent"},
	{"Entwürfe", "Entw&APw-rfe"},
	{"Ärger", "&AMQ-rger"},
	{"Über.Straße", "&ANw-ber.Stra&AN8-e"},
	{"AT&T", "AT&-T"},
	{"&", "&-"},
	{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
	{"a\x19b", "a&ABk-b"},
	{"😀 x", "&2D3eAA- x"},
	{"äö", "&AOQA9g-"},
}

func TestEncodeDecodeMUTF7(t *testing.T) {
	for _, p := range mutf7Pairs {
		if got := EncodeMUTF7(p.name); got != p.enc {
			t.Errorf("EncodeMUTF7(%q) = %q, want %q", p.name, got, p.enc)
		}
		if got, err := DecodeMUTF7(p.enc); err != nil || got != p.name {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want %q", p.enc, got, err, p.name)
		}
	}
	if got := EncodeMUTF7("a\xffb"); got != "a&,,0-b" {
		t.Errorf("an invalid UTF-8 byte: %q, want U+FFFD", got)
	}
}

// TestDecodeMUTF7RefusesWhatImapserverRefuses: the cases go-imap's
// decoder (internal/utf7) refuses are refused here too, and raw UTF-8
// passes as it does there.
func TestDecodeMUTF7RefusesWhatImapserverRefuses(t *testing.T) {
	for _, bad := range []string{
		"\x00", "abc\n", "abc\x7fxyz", "\xc3\x28", // controls, DEL, invalid UTF-8
		"&/+8-", "&*-", "&ZeVnLIqe -", "&ZeVnLIqe\r\n-", "&ZeVn\r\nLIqe-", // outside the alphabet
		"&AAAAHw=-", "&2A-", "&AAAAHwB,A-", "&A-", // padding, octets short
		"&", "&Jjo", "abc&Jjo", "&Jjo!", // no '-'
		"&AGE-&Jjo-", "&U,BTFw-&ZeVnLIqe-", // a run right after a run
		"&AGE-", "&ACY-", "&JjoAIQ-", // ASCII in base64
		"&2AA-", "&3AA-", "&2AAAQQ-", "&3ADYAA-", // lone surrogates
	} {
		if got, err := DecodeMUTF7(bad); err == nil {
			t.Errorf("DecodeMUTF7(%q) = %q, want an error", bad, got)
		}
	}
	for in, want := range map[string]string{
		"Entwürfe": "Entwürfe", "&AOQ-ä&AOQ-": "äää", "&U,BTFw-&-&ZeVnLIqe-": "台北&日本語", "&AOQ-a&AOQ-": "äaä",
	} {
		if got, err := DecodeMUTF7(in); err != nil || got != want {
			t.Errorf("DecodeMUTF7(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// FuzzMUTF7: every string survives the round trip (an invalid UTF-8
// byte as U+FFFD), and what the encoder writes is printable ASCII.
func FuzzMUTF7(f *testing.F) {
	for _, p := range mutf7Pairs {
		f.Add(p.name)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeMUTF7(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] < 0x20 || enc[i] > 0x7e {
				t.Fatalf("EncodeMUTF7(%q) = %q: not printable ASCII", s, enc)
			}
		}
		want := string([]rune(s)) // an invalid byte is U+FFFD
		if got, err := DecodeMUTF7(enc); err != nil || got != want {
			t.Fatalf("DecodeMUTF7(EncodeMUTF7(%q)) = %q, %v", s, got, err)
		}
	})
}
