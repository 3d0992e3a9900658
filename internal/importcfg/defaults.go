package importcfg

import (
	"os"
	"path/filepath"
	"strings"
)

// defaultOf is the built-in default of a parameter the import reads
// (Postfix 3.7's, as `postconf -d` prints them on Debian), "" for others.
func (m *MainCF) defaultOf(name string) string { return m.defaults()[name] }

func (m *MainCF) defaults() map[string]string {
	if m.defs != nil {
		return m.defs
	}
	host, _ := os.Hostname()
	d := map[string]string{
		"myhostname":                    host,
		"mydomain":                      "", // below
		"myorigin":                      "$myhostname",
		"mydestination":                 "$myhostname, localhost.$mydomain, localhost",
		"mail_name":                     "Postfix",
		"config_directory":              filepath.Dir(m.File),
		"data_directory":                "/var/lib/postfix",
		"queue_directory":               "/var/spool/postfix",
		"daemon_directory":              "/usr/lib/postfix/sbin",
		"command_directory":             "/usr/sbin",
		"meta_directory":                "/etc/postfix",
		"shlib_directory":               "/usr/lib/postfix",
		"html_directory":                "no",
		"readme_directory":              "no",
		"mail_owner":                    "postfix",
		"default_database_type":         "hash",
		"alias_maps":                    "hash:/etc/aliases",
		"alias_database":                "hash:/etc/aliases",
		"inet_interfaces":               "all",
		"inet_protocols":                "all",
		"message_size_limit":            "10240000",
		"smtpd_sasl_auth_enable":        "no",
		"smtpd_tls_auth_only":           "no",
		"smtpd_tls_wrappermode":         "no",
		"smtpd_tls_ask_ccert":           "no",
		"smtpd_tls_req_ccert":           "no",
		"smtpd_use_tls":                 "no",
		"smtpd_enforce_tls":             "no",
		"smtpd_tls_chain_files":         "",
		"smtpd_tls_protocols":           "!SSLv2, !SSLv3",
		"smtpd_tls_mandatory_protocols": "!SSLv2, !SSLv3",
		"smtp_tls_security_level":       "",
		"smtpd_tls_security_level":      "",
		"smtp_dns_support_level":        "",
		"relay_clientcerts":             "",
		"mynetworks_style":              "host",
		"compatibility_level":           "0",
	}
	// As Postfix: a host name without a dot gets ".localdomain".
	if i := strings.IndexByte(host, '.'); i > 0 {
		d["mydomain"] = host[i+1:]
	} else {
		d["myhostname"] = host + ".localdomain"
		d["mydomain"] = "localdomain"
	}
	m.defs = d
	return d
}
