package tlsrpt

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strings"
	"time"
)

// FileName is the report's file name (RFC 8460 §5.1):
// receiver!policy-domain!begin-timestamp!end-timestamp.json.gz, with the
// timestamps in seconds since the epoch.
func FileName(submitter, domain string, r *Report) string {
	return fmt.Sprintf("%s!%s!%d!%d.json.gz", submitter, domain, r.begin.Unix(), r.end.Unix())
}

// Mail is the report as an RFC 8460 §5.3 message to rua address to:
// multipart/report; report-type="tlsrpt", a text part and the gzip JSON.
// It carries TLS-Required: No (RFC 8689): a report must be delivered even
// when the reporting domain's TLS is broken (§3), which is often why there
// is something to report.
func Mail(submitter, domain, to string, r *Report, gz []byte, now time.Time) ([]byte, error) {
	if strings.ContainsAny(submitter+domain+to+r.ReportID, "\r\n") {
		return nil, fmt.Errorf("tlsrpt: line break in a name or report ID")
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	text := make(textproto.MIMEHeader)
	text.Set("Content-Type", "text/plain; charset=utf-8")
	text.Set("Content-Transfer-Encoding", "7bit")
	pw, err := mw.CreatePart(text)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(pw, "This is an aggregate TLS report (RFC 8460) from %s\r\nfor %s, %s to %s.\r\n",
		submitter, domain, r.DateRange.Start, r.DateRange.End)
	name := FileName(submitter, domain, r)
	att := make(textproto.MIMEHeader)
	att.Set("Content-Type", `application/tlsrpt+gzip; name="`+name+`"`)
	att.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	att.Set("Content-Transfer-Encoding", "base64")
	if pw, err = mw.CreatePart(att); err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(gz)
	for len(enc) > 76 {
		fmt.Fprintf(pw, "%s\r\n", enc[:76])
		enc = enc[76:]
	}
	fmt.Fprintf(pw, "%s\r\n", enc)
	if err := mw.Close(); err != nil {
		return nil, err
	}
	from := "tlsrpt-noreply@" + submitter
	var msg bytes.Buffer
	h := [][2]string{
		{"From", from},
		{"To", to},
		{"Date", now.Format(time.RFC1123Z)},
		{"Subject", fmt.Sprintf("Report Domain: %s Submitter: %s Report-ID: <%s>", domain, submitter, r.ReportID)},
		{"Message-ID", "<" + r.ReportID + ">"},
		{ReportDomainHeader, domain},
		{"TLS-Report-Submitter", submitter},
		{"TLS-Required", "No"},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/report; report-type="tlsrpt"; boundary="` + mw.Boundary() + `"`},
	}
	for _, kv := range h {
		msg.WriteString(kv[0] + ": " + kv[1] + "\r\n")
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}
