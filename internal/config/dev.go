package config

// Dev is the configuration `tlsmail serve` runs with when given no
// --config: everything on 127.0.0.1, local domain localhost, the dev CA's
// server certificate, and three listeners — MX with STARTTLS on 2525,
// SMTPS on 2465, submission (STARTTLS, AUTH required) on 2587, and POP3
// with STLS on 2110 and POP3S on 2995.
func Dev(dataDir string) *Config {
	c := &Config{
		Hostname:     "localhost",
		DataDir:      dataDir,
		LocalDomains: []string{"localhost"},
		Metrics:      "127.0.0.1:2925",
		UsersFile:    "users",
		Aliases:      map[string]string{"postmaster": "demo", "abuse": "demo"},
		TLS:          TLS{Cert: "tls/server.pem", Key: "tls/server.key", MinVersion: "TLSv1.2"},
		Listeners: []Listener{
			{Name: "mx", Address: "127.0.0.1:2525", Mode: ModeSTARTTLS, Auth: AuthOptional},
			{Name: "smtps", Address: "127.0.0.1:2465", Mode: ModeImplicit, Auth: AuthOptional},
			{Name: "submission", Address: "127.0.0.1:2587", Mode: ModeSTARTTLS, Auth: AuthRequired},
		},
		POP3: []POP3Listener{
			{Name: "pop3", Address: "127.0.0.1:2110", Mode: ModeSTARTTLS},
			{Name: "pop3s", Address: "127.0.0.1:2995", Mode: ModeImplicit},
		},
	}
	c.Defaults()
	return c
}
