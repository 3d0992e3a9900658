package main

// manSendAccountKeys are the settings of an account in the accounts file,
// as tlsmail-send(1) documents them (TestManSendListsEveryAccountKey
// holds them to config.Account).
var manSendAccountKeys = [][2]string{
	{"server", "host[:port] of the submission server (port 587, or 465 with tls = \"implicit\")"},
	{"tls", "implicit, starttls, opportunistic or none (default: by port)"},
	{"user", "AUTH user name; without it no AUTH"},
	{"from", "the default sender (envelope and From header)"},
	{"password_file", "a file whose first line is the password"},
	{"password_command", "run with sh -c when no other source gave a password; its first line of output is the password, its standard error goes to yours"},
	{"cafile", "trust these CA certificates instead of the system's"},
	{"insecure", "true: do not verify the server certificate (says so loudly)"},
	{"auth", "the only AUTH mechanism to use: PLAIN, LOGIN, CRAM-MD5 or XOAUTH2"},
}

// manSendSections are tlsmail-send(1)'s sections after its -h text:
// the accounts file, environment, files and exit status.
func manSendSections(m *mdoc) {
	m.macro("Sh", "ACCOUNTS FILE")
	m.text(`A TOML file, msmtp style: default = "NAME" and one [account.NAME] table per account.
Command-line flags win over the account. Relative file names (cafile,
password_file) are relative to the accounts file's directory; ~/ is the home directory.`)
	m.tagList("Cm", manSendAccountKeys)
	m.macro("Pp")
	m.text("The password is taken from the first of: --password-file, $TLSMAIL_PASSWORD, the account's password_file, its password_command, a prompt on the terminal.")
	m.macro("Sh", "ENVIRONMENT")
	m.tagList("Ev", [][2]string{
		{"TLSMAIL_PASSWORD", "the AUTH password"},
		{"TLSMAIL_ACCOUNT", "the account sendmail uses (send takes --account)"},
		{"XDG_CONFIG_HOME", "where the accounts file is looked for (default ~/.config)"},
	})
	m.macro("Sh", "FILES")
	m.tagList("Pa", [][2]string{
		{"~/.config/tlsmail/send.toml", "the accounts file"},
		{"/etc/tlsmail/send.toml", "the accounts file when the user has none (cron jobs, daemons)"},
	})
	m.macro("Sh", "EXIT STATUS")
	m.text(`sysexits(3). A message goes to every recipient or to none: 0 means all have it;
any other status means none has it, so retrying after 75 duplicates nothing — except
when the connection broke after the whole message went out and before the server's
reply to it, when nobody can know.`)
	m.tagList("Sy", [][2]string{
		{"0", "sent to every recipient"},
		{"64", "usage error (EX_USAGE)"},
		{"65", "the message cannot be composed (EX_DATAERR)"},
		{"66", "an input file cannot be read (EX_NOINPUT)"},
		{"69", "refused by the server with a 5xx reply, or a recipient refused (EX_UNAVAILABLE)"},
		{"70", "internal error (EX_SOFTWARE)"},
		{"75", "temporary: a 4xx reply (454 to AUTH included), the network, --timeout (EX_TEMPFAIL)"},
		{"76", "no TLS as required: no STARTTLS, a failed handshake or certificate check (EX_PROTOCOL)"},
		{"77", "authentication refused, or credentials withheld without TLS (EX_NOPERM)"},
		{"78", "configuration: the accounts file, its password_command (EX_CONFIG)"},
	})
}
