package config

import "testing"

// Every description names a setting that exists; the schema comes from
// the Config type.
func TestSettingDocsNameRealSettings(t *testing.T) {
	known := map[string]bool{}
	undocumented := 0
	for _, s := range Schema() {
		known[s.Key] = true
		if s.Doc == "" {
			undocumented++
			t.Logf("undocumented setting %s", s.Key)
		}
	}
	for k := range adminDocs {
		if !known[k] {
			t.Errorf("adminDocs describes %q, which is not a setting", k)
		}
	}
	for k := range settingDocs() {
		if !known[k] {
			t.Errorf("settingDocs describes %q, which is not a setting", k)
		}
	}
	for _, k := range []string{"hostname", "limits.message_size", "listener.mode", "tls.sni.cert", "log_output", "outbound.policy"} {
		if !known[k] {
			t.Errorf("Schema lacks %s", k)
		}
	}
}

// Every setting is described in tlsmail.toml(5): a new setting without a
// line in settingDocs fails here.
func TestEverySettingIsDescribed(t *testing.T) {
	for _, s := range Schema() {
		if s.Doc == "" {
			t.Errorf("setting %s (%s) has no description in settingDocs", s.Key, s.Kind)
		}
	}
}
