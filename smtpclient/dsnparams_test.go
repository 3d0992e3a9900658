package smtpclient

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
)

// TestSendAndSendBatchSendTheSameTransaction: the same envelope — SIZE,
// 8BITMIME, SMTPUTF8, RET, ENVID and each recipient's own NOTIFY and
// ORCPT — sent with Send, with SendBatch over BDAT and with SendBatch over
// DATA reaches a real Postfix (which logs every command it gets) as the
// same MAIL and RCPT commands, with NOTIFY=NEVER where the recipient
// asked for it.
func TestSendAndSendBatchSendTheSameTransaction(t *testing.T) {
	for _, chunking := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunking=%v", chunking), func(t *testing.T) {
			settings := []string{"debug_peer_list = 127.0.0.1", "smtputf8_enable = yes",
				"relay_domains = y.test", "transport_maps = inline:{y.test=discard:}"}
			if !chunking {
				settings = append(settings, "smtpd_discard_ehlo_keywords = chunking")
			}
			pf := testpeer.StartPostfix(t, settings...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			env := Envelope{From: "a@x.test", To: []string{"never@y.test", "orcpt@y.test", "both@y.test"}, Ret: "HDRS", EnvID: "env 1",
				RcptDSN: []RcptDSN{{Notify: "NEVER"}, {ORcpt: "rfc822;Orig@y.test"}, {Notify: "SUCCESS,DELAY", ORcpt: "rfc822;B+2Bx@y.test"}},
				Notify:  "FAILURE"}
			send := func(subject string, batch bool) {
				c, err := Dial(ctx, pf.Addr, Options{Mode: Plain, LocalName: "client.test"})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				e := env
				e.From = subject + "@x.test"
				msg := []byte("Subject: " + subject + " é\r\n\r\nbody\r\n")
				if batch {
					res, err := c.SendBatch(ctx, []Outgoing{{Envelope: e, Data: msg}})
					if err != nil || res[0].Err != nil || res[0].Chunking != chunking {
						t.Fatalf("batch: %v %+v", err, res[0])
					}
				} else if _, err := c.SendBytes(ctx, e, msg); err != nil {
					t.Fatal(err)
				}
				_ = c.Quit()
			}
			send("alone", false)
			send("batch", true) // the same length as "alone": SIZE is the same
			log := pf.LogText()
			cmds := func(sender string) []string {
				re := regexp.MustCompile(`< localhost\[127\.0\.0\.1\]: ((?:MAIL FROM:<` + sender + `@x\.test>|RCPT TO:).*)`)
				var out []string
				on := false
				for _, l := range strings.Split(log, "\n") {
					m := re.FindStringSubmatch(l)
					switch {
					case m == nil:
					case strings.HasPrefix(m[1], "MAIL"):
						on = true
						out = append(out, strings.Replace(m[1], sender, "SENDER", 1))
					case on && len(out) < 4:
						out = append(out, m[1])
					}
				}
				return out
			}
			single, batch := cmds("alone"), cmds("batch")
			want := []string{
				"RCPT TO:<never@y.test> NOTIFY=NEVER",
				"RCPT TO:<orcpt@y.test> NOTIFY=FAILURE ORCPT=rfc822;Orig@y.test",
				"RCPT TO:<both@y.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;B+2Bx@y.test",
			}
			if len(single) != 4 || strings.Join(single[1:], "\n") != strings.Join(want, "\n") ||
				!strings.Contains(single[0], " SIZE=") || !strings.Contains(single[0], " BODY=8BITMIME") || !strings.Contains(single[0], " RET=HDRS ENVID=env+201") {
				t.Errorf("Send's commands:\n%s", strings.Join(single, "\n"))
			}
			if strings.Join(single, "\n") != strings.Join(batch, "\n") {
				t.Errorf("SendBatch's commands differ from Send's:\n%s\nSend:\n%s", strings.Join(batch, "\n"), strings.Join(single, "\n"))
			}
		})
	}
}
