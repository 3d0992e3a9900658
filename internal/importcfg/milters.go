package importcfg

import (
	"strings"
	"time"

	"github.com/tlsmail/tlsmail/internal/milter"
)

// Milter is one [[milter]] of the result.
type Milter struct {
	Address, DefaultAction, ConnectTimeout, CommandTimeout string
}

// milters maps smtpd_milters to [[milter]] tables, in order, with
// milter_default_action and the milter timeouts. Postfix's per-milter
// settings in "{ … }" are left to the admin; non_smtpd_milters has no
// equivalent (tlsmail's milters see mail received over SMTP only).
func (p *pfImport) milters() error {
	if p.m.Set("non_smtpd_milters") && strings.TrimSpace(p.get("non_smtpd_milters")) != "" {
		p.notMapped("non_smtpd_milters", "[[milter]] filters mail received over SMTP only; mail from sendmail/pickup is not filtered")
	}
	if !p.m.Set("smtpd_milters") {
		return nil
	}
	raw := p.get("smtpd_milters")
	if strings.Contains(raw, "{") {
		p.notMapped("smtpd_milters", "per-milter settings in { } are not read: write one [[milter]] table per milter by hand")
		return nil
	}
	def := "tempfail"
	if p.m.Set("milter_default_action") {
		switch v := strings.ToLower(strings.TrimSpace(p.get("milter_default_action"))); v {
		case "tempfail", "accept":
			def = v
		default:
			p.r.caveat("milter_default_action", v, "tlsmail's default_action is tempfail or accept: mapped to tempfail")
		}
	}
	timeout := func(name string) string {
		if !p.m.Set(name) {
			return ""
		}
		v := strings.TrimSpace(p.get(name))
		if v != "" && strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
			v += "s" // Postfix's unit is the second
		}
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			p.notMapped(name, "not a duration tlsmail reads: set connect_timeout/command_timeout in [[milter]] by hand")
			return ""
		}
		return v
	}
	connect, command := timeout("milter_connect_timeout"), timeout("milter_command_timeout")
	for _, a := range list(raw) {
		if _, _, err := milter.ParseAddress(a); err != nil {
			p.r.notMapped("smtpd_milters", a, err.Error())
			continue
		}
		p.r.Milters = append(p.r.Milters, Milter{Address: a, DefaultAction: def, ConnectTimeout: connect, CommandTimeout: command})
	}
	return nil
}
