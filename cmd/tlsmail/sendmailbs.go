package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tlsmail/tlsmail/internal/smtpwire"
)

// sendmail -bs: SMTP on standard input and output, as Postfix's and
// Sendmail's sendmail speak it to a local program (Symfony Mailer's
// default transport runs "/usr/sbin/sendmail -bs"). No TLS and no AUTH:
// the peer is a process of the same user, on a pipe. Each message is
// handed on as sendmail hands on one (handOn: the account's server, all
// recipients or none, else the mail drop) before the reply to its final
// dot, and that reply says how it went: 250, or 451/554 with the error.

// maxStdioMessage bounds one message read in -bs mode (it is held in
// memory, as sendmail's stdin message is).
const maxStdioMessage = 64 << 20

// serveStdio runs the SMTP dialogue on in and out until QUIT or the end
// of input; it exits 0 unless out fails.
func (sm *sendmailer) serveStdio(env *cliEnv, in io.Reader, out io.Writer) int {
	sm.req.allOrNone = true // one reply per message: it must be true for every recipient
	// Only the error lines become replies: the -v transcript and a
	// password_command's own words go to the error stream as they are.
	sm.req.diag = env.stderr
	br := bufio.NewReader(in)
	bw := bufio.NewWriter(out)
	host, _ := os.Hostname()
	reply := func(code int, text string) {
		fmt.Fprintf(bw, "%d %s\r\n", code, text)
		if br.Buffered() == 0 { // PIPELINING: replies go out in batches
			bw.Flush()
		}
	}
	reply(220, host+" ESMTP tlsmail sendmail -bs")
	var from string
	var rcpts []string
	inMail := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			bw.Flush()
			return exitOK // the program went away; nothing was pending
		}
		verb, arg := smtpwire.SplitCommand(strings.TrimRight(line, "\r\n"))
		switch verb {
		case "EHLO":
			inMail, rcpts = false, nil
			fmt.Fprintf(bw, "250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE %d\r\n", host, maxStdioMessage)
			reply(250, "SMTPUTF8")
		case "HELO":
			inMail, rcpts = false, nil
			reply(250, host)
		case "MAIL":
			p, err := smtpwire.ParsePathArg(arg, "FROM")
			switch {
			case inMail:
				reply(503, "5.5.1 Error: nested MAIL command")
			case err != nil:
				reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
			default:
				from, rcpts, inMail = p.Addr, nil, true
				reply(250, "2.1.0 Ok")
			}
		case "RCPT":
			p, err := smtpwire.ParsePathArg(arg, "TO")
			if err != nil {
				// A bare name (RCPT TO:<root>), qualified as on the
				// command line (handOn).
				if name, ok := bareRcpt(arg); ok {
					p, err = smtpwire.PathArg{Addr: name}, nil
				}
			}
			switch {
			case !inMail:
				reply(503, "5.5.1 Error: need MAIL command")
			case err != nil || p.Addr == "":
				reply(501, "5.5.4 Syntax: RCPT TO:<address>")
			default:
				rcpts = append(rcpts, p.Addr)
				reply(250, "2.1.5 Ok")
			}
		case "DATA":
			if len(rcpts) == 0 {
				reply(503, "5.5.1 Error: need RCPT command")
				continue
			}
			reply(354, "End data with <CR><LF>.<CR><LF>")
			bw.Flush()
			msg, err := readStdioData(br)
			if err != nil {
				reply(552, "5.3.4 "+err.Error())
			} else {
				code, enh, lines := sm.handOnStdio(env, from, rcpts, msg)
				for _, l := range lines[:len(lines)-1] {
					fmt.Fprintf(bw, "%d-%s %s\r\n", code, enh, l)
				}
				reply(code, enh+" "+lines[len(lines)-1])
			}
			inMail, rcpts = false, nil
		case "RSET":
			inMail, rcpts = false, nil
			reply(250, "2.0.0 Ok")
		case "NOOP":
			reply(250, "2.0.0 Ok")
		case "VRFY":
			reply(252, "2.0.0 Send some mail, I'll try my best")
		case "QUIT":
			reply(221, "2.0.0 Bye")
			bw.Flush()
			return exitOK
		default:
			reply(502, "5.5.2 Error: command not recognized")
		}
	}
}

// readStdioData reads a message up to its "." line, undoing the dot
// stuffing; lines may end in CRLF or, from a local program, a bare LF
// (the peer is a process of the same user: there is no one to smuggle
// past).
func readStdioData(br *bufio.Reader) ([]byte, error) {
	var msg bytes.Buffer
	tooBig := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("the input ended inside the message")
		}
		body := strings.TrimRight(line, "\r\n")
		if body == "." {
			break
		}
		body = strings.TrimPrefix(body, ".") // dot stuffing
		if msg.Len()+len(body)+1 > maxStdioMessage {
			tooBig = true // read on to the end, so the dialogue stays in step
			continue
		}
		msg.WriteString(body)
		msg.WriteByte('\n')
	}
	if tooBig {
		return nil, fmt.Errorf("message exceeds the size limit of %d octets", maxStdioMessage)
	}
	return msg.Bytes(), nil
}

// handOnStdio hands one message on and says how it went as an SMTP reply:
// the error lines handOn would print, with a 4xx for a temporary failure
// (EX_TEMPFAIL) and a 5xx otherwise. The lines go to stderr too.
func (sm *sendmailer) handOnStdio(env *cliEnv, from string, rcpts []string, msg []byte) (code int, enhanced string, lines []string) {
	var errb bytes.Buffer
	one := *env
	one.stdin, one.stdout, one.stderr = strings.NewReader(""), io.Discard, &errb
	exit := sm.handOn(&one, from, true, rcpts, msg)
	env.stderr.Write(errb.Bytes())
	if exit == exitOK {
		return 250, "2.0.0", []string{"Ok: handed on"}
	}
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if l = strings.TrimPrefix(l, env.name+": "); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		lines = []string{fmt.Sprintf("not sent (exit %d)", exit)}
	}
	switch exit {
	case exUsage, exDataErr, exUnavailable, exNoPerm, 67, 68: // the message or its addresses: again, the same
		return 554, "5.3.0", lines
	}
	// A 4xx, the network, TLS, the disk, the configuration, a bug: it
	// may pass, and the client keeps the message.
	return 451, "4.3.0", lines
}

// bareRcpt is the bare local name of RCPT's argument "TO:<root>", which
// the path syntax refuses.
func bareRcpt(arg string) (string, bool) {
	if len(arg) < 3 || !strings.EqualFold(arg[:3], "TO:") {
		return "", false
	}
	v := strings.TrimSpace(arg[3:])
	if !strings.HasPrefix(v, "<") || !strings.HasSuffix(v, ">") {
		return "", false
	}
	name := v[1 : len(v)-1]
	return name, bareLocalName(name)
}
