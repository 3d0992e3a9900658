package queue

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tlsmail/tlsmail/internal/dstatus"
)

// UnmarshalJSON reads a recipient's state, also as versions before the
// typed status wrote it: "last_reply" was the status flattened to one
// string ("550 5.1.1 text", "4.4.1 text", "expired after D; last reply:
// …") and "tls" the connection's summary. Such a file is read into Last
// once, here, so that a message deferred by an older version is still
// delivered, bounced and listed correctly; the next write is in the new
// form. Nothing else reads a status from a string.
func (r *RcptState) UnmarshalJSON(b []byte) error {
	type plain RcptState // without this method
	var v struct {
		plain
		LastReply string `json:"last_reply"`
		TLS       string `json:"tls"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = RcptState(v.plain)
	if r.Last == nil && v.LastReply != "" {
		st, expired := legacyStatus(v.LastReply, r.Status)
		if v.TLS != "" {
			st.Detail = "connection " + v.TLS
		}
		r.Last, r.Expired = &st, expired
	}
	return nil
}

// legacyStatus reads an old last_reply string. Whether the failure was
// permanent comes from the recipient's state, not the text.
func legacyStatus(s string, state Status) (dstatus.Status, bool) {
	const expiredPrefix = "expired after "
	expired := false
	if rest, ok := strings.CutPrefix(s, expiredPrefix); ok {
		expired = true
		if _, last, ok := strings.Cut(rest, "; last reply: "); ok {
			s = last
		}
	}
	st := dstatus.Status{Text: s}
	f := strings.SplitN(s, " ", 2)
	if n, err := strconv.Atoi(f[0]); err == nil && len(f[0]) == 3 && n >= 200 && n < 600 {
		st.Code, st.Remote = n, true // only a server's reply began with its code
		st.Text = ""
		if len(f) == 2 {
			st.Text = f[1]
		}
		f = strings.SplitN(st.Text, " ", 2)
	}
	if e := f[0]; len(e) >= 5 && e[1] == '.' && strings.Count(e, ".") == 2 && strings.ContainsRune("245", rune(e[0])) {
		st.Enhanced = e
		st.Text = ""
		if len(f) == 2 {
			st.Text = f[1]
		}
	}
	switch {
	case state == Delivered:
		st.Temporary = false
		if st.Code == 0 {
			st.Code = 250
		}
	case state == Failed && !expired:
		st.Temporary = false
		if st.Code == 0 {
			st.Code = 554
		}
	default:
		st.Temporary = true
		if st.Code == 0 {
			st.Code = 451
		}
	}
	return st, expired
}
