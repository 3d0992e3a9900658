package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tlsmail/tlsmail/internal/testpeer"
	"github.com/tlsmail/tlsmail/smtpclient"
)

// TestBatchToPostfixWithAndWithoutChunking: smtpclient.SendBatch to a real
// Postfix, which offers CHUNKING (BDAT pipelined across messages), and to
// one told not to (DATA). In the batch one message's sender is refused at
// MAIL, one message's only recipient is refused (Postfix keeps the
// transaction open after refusing that BDAT or DATA: the next message must
// still go through), and one message has a refused and an accepted
// recipient. The results say exactly that, and Postfix delivers exactly
// the accepted messages.
func TestBatchToPostfixWithAndWithoutChunking(t *testing.T) {
	for _, chunking := range []bool{true, false} {
		t.Run(fmt.Sprintf("chunking=%v", chunking), func(t *testing.T) {
			settings := []string{
				"smtpd_delay_reject = no",
				"smtpd_sender_restrictions = check_sender_access inline:{refused@x.test=REJECT}",
				"smtpd_recipient_restrictions = check_recipient_access inline:{nobody@y.test=REJECT}, permit_mynetworks, reject",
				"relay_domains = y.test",
				"transport_maps = inline:{y.test=discard:}",
			}
			if !chunking {
				settings = append(settings, "smtpd_discard_ehlo_keywords = chunking")
			}
			pf := testpeer.StartPostfix(t, settings...)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := smtpclient.Dial(ctx, pf.Addr, smtpclient.Options{Mode: smtpclient.Plain})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, ok := c.Extensions()["CHUNKING"]; ok != chunking {
				t.Fatalf("Postfix offers CHUNKING: %v, want %v", ok, chunking)
			}
			var batch []smtpclient.Outgoing
			for i := range 8 {
				env := smtpclient.Envelope{From: "a@x.test", To: []string{"b@y.test"}}
				switch i {
				case 2:
					env.From = "refused@x.test"
				case 4:
					env.To = []string{"nobody@y.test"}
				case 5:
					env.To = []string{"nobody@y.test", "c@y.test"}
				}
				batch = append(batch, smtpclient.Outgoing{Envelope: env, Data: []byte(fmt.Sprintf("Subject: batch-%d\n\nline\n", i))})
			}
			results, err := c.SendBatch(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range results {
				delivered := r.Final != nil && r.Final.Code == 250
				want := i != 2 && i != 4
				if delivered != want || (r.Err == nil) != want || (r.Accepted > 0) != want || r.Chunking != chunking {
					t.Errorf("message %d: delivered %v, accepted %d, err %v, chunking %v; want delivered %v", i, delivered, r.Accepted, r.Err, r.Chunking, want)
				}
			}
			var re *smtpclient.ReplyError
			if !errors.As(results[2].Err, &re) || re.Stage != "MAIL" || re.Reply.Code != 554 {
				t.Errorf("refused sender: %v", results[2].Err)
			}
			if !errors.As(results[4].Err, &re) || re.Stage != "RCPT" {
				t.Errorf("refused recipient: %v", results[4].Err)
			}
			if rr := results[5].Recipients; len(rr) != 2 || rr[0].Accepted || !rr[1].Accepted {
				t.Errorf("message 5 recipients: %+v", rr)
			}
			_ = c.Quit()
			// Postfix hands each accepted message to discard: six of them.
			deadline := time.Now().Add(60 * time.Second)
			for strings.Count(pf.LogText(), "status=sent") < 6 && time.Now().Before(deadline) {
				waitABit()
			}
			log := pf.LogText()
			if n := strings.Count(log, "status=sent"); n != 6 {
				t.Errorf("Postfix delivered %d messages, want 6:\n%s", n, log)
			}
		})
	}
}
