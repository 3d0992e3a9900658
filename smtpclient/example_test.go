package smtpclient_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/smtpclient"
)

// Compose a message with an attachment and send it through a submission
// server on port 587 with STARTTLS (which must succeed: the client never
// goes on in plaintext) and AUTH. The envelope comes from the message, so
// the Cc and Bcc recipients are not forgotten.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	report, err := os.ReadFile("report.pdf")
	if err != nil {
		log.Fatal(err)
	}
	m := smtpclient.Message{
		From:        "Zoë Müller <zoe@example.org>",
		To:          []string{"Bob <bob@example.net>"},
		Cc:          []string{"carol@example.net"},
		Bcc:         []string{"archive@example.org"}, // never written into the message
		Subject:     "Quarterly report",
		Text:        "Hello Bob,\n\nthe report is attached.\n",
		Attachments: []smtpclient.Attachment{{Name: "report.pdf", Data: report}},
		Headers:     [][2]string{{"X-Mailer", "example"}},
	}
	msg, err := smtpclient.Compose(m)
	if err != nil {
		log.Fatal(err)
	}
	c, err := smtpclient.Dial(ctx, "smtp.example.org:587", smtpclient.Options{
		Mode: smtpclient.STARTTLS, // the default for any port but 465
		Auth: &smtpclient.Auth{Username: "zoe@example.org", Password: os.Getenv("SMTP_PASSWORD")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	res, err := c.SendBytes(ctx, smtpclient.Envelope{From: "zoe@example.org", To: m.Recipients()}, msg)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Recipients {
		if !r.Accepted {
			fmt.Println("refused:", r.Addr, r.Reply)
		}
	}
	fmt.Println(res.TLS.Summary())
	_ = c.Quit()
}

// Send over implicit TLS (SMTPS, port 465): TLS from the first byte.
func ExampleDial_implicitTLS() {
	ctx := context.Background()
	c, err := smtpclient.Dial(ctx, "smtp.example.org:465", smtpclient.Options{
		Auth: &smtpclient.Auth{Username: "me@example.org", Password: os.Getenv("SMTP_PASSWORD")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msg, err := smtpclient.Compose(smtpclient.Message{
		From: "me@example.org", To: []string{"you@example.net"}, Subject: "Hi", Text: "Hello\n",
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.SendBytes(ctx, smtpclient.Envelope{From: "me@example.org", To: []string{"you@example.net"}}, msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Accepted, "accepted;", res.TLS.Summary())
	_ = c.Quit()
}

// Recipients lists To, Cc and Bcc once each, as addresses for the
// envelope; Compose writes no Bcc field.
func ExampleMessage_Recipients() {
	m := smtpclient.Message{
		From: "me@example.org",
		To:   []string{"Bob <bob@example.net>"},
		Cc:   []string{"carol@example.net", "bob@example.net"},
		Bcc:  []string{"Archive <archive@example.org>"},
	}
	fmt.Println(m.Recipients())
	// Output: [bob@example.net carol@example.net archive@example.org]
}

// An extra header named as one Compose writes replaces it; address
// fields given this way are parsed, so only the display name is encoded.
func ExampleCompose_headers() {
	msg, err := smtpclient.Compose(smtpclient.Message{
		From:    "me@example.org",
		To:      []string{"you@example.net"},
		Subject: "replaced",
		Text:    "Hello\n",
		Date:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Headers: [][2]string{
			{"Subject", "Hello again"},
			{"Reply-To", "Jörg <joerg@example.org>"},
			{"Message-ID", "<1@example.org>"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(strings.ReplaceAll(string(msg), "\r\n", "\n")) // lines end in CRLF
	// Output:
	// Date: Fri, 02 Jan 2026 03:04:05 +0000
	// From: <me@example.org>
	// To: <you@example.net>
	// Reply-To: =?utf-8?b?SsO2cmc=?= <joerg@example.org>
	// Subject: Hello again
	// Message-ID: <1@example.org>
	// MIME-Version: 1.0
	// Content-Type: text/plain; charset=us-ascii
	// Content-Transfer-Encoding: 7bit
	//
	// Hello
}
