package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Setting is one effective setting for `tlsmail config`: its dotted key
// (`limits.message_size`, `outbound.policy."example.org"`), its value in
// TOML syntax, and whether it is the built-in default.
type Setting struct {
	Key     string
	Value   string
	Default bool
}

// Effective lists the configuration's settings as they apply (defaults
// filled in), sorted by key, and its listeners as tables. Settings equal
// to the built-in default are marked; empty ones with no default (an
// unset optional file, say) are left out.
func (c *Config) Effective() (settings []Setting, listeners map[string][][]Setting, err error) {
	var def Config
	def.Defaults()
	cur, err := flatten(c)
	if err != nil {
		return nil, nil, err
	}
	dflt, err := flatten(&def)
	if err != nil {
		return nil, nil, err
	}
	listeners = map[string][][]Setting{}
	for _, k := range sortedKeys(cur) {
		v := cur[k]
		if tables, ok := v.([]map[string]any); ok {
			for _, t := range tables {
				var row []Setting
				for _, tk := range sortedKeys(t) {
					if s := render(t[tk]); s != `""` && s != "false" {
						row = append(row, Setting{Key: quoteKey(tk), Value: s})
					}
				}
				listeners[k] = append(listeners[k], row)
			}
			continue
		}
		s, d := render(v), render(dflt[k])
		if _, ok := dflt[k]; !ok {
			d = ""
		}
		if isSecret(k) && s != `""` {
			// Output people paste into bug reports: a secret is never
			// printed (it does not load back; the config file has it).
			settings = append(settings, Setting{Key: k, Value: `"(secret, not shown)"`})
			continue
		}
		if s == d || (d == "" && (s == `""` || s == "[]" || s == "0")) {
			if d == "" {
				continue // unset, no default
			}
			settings = append(settings, Setting{Key: k, Value: s, Default: true})
			continue
		}
		settings = append(settings, Setting{Key: k, Value: s})
	}
	return settings, listeners, nil
}

// isSecret says whether a setting holds a secret that `tlsmail config`
// must not print: a MAC key, a password, a token.
func isSecret(key string) bool {
	k := key[strings.LastIndexByte(key, '.')+1:]
	for _, suffix := range []string{"mac_key", "password", "secret", "token"} {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// flatten encodes c as TOML and reads it back as dotted keys; arrays of
// tables ([[listener]], [[tls.sni]]) stay whole.
func flatten(c *Config) (map[string]any, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return nil, err
	}
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := prefix + quoteKey(k)
			switch x := v.(type) {
			case map[string]any:
				if len(x) == 0 {
					continue
				}
				walk(key+".", x)
			case []map[string]any:
				out[key] = x // an array of tables ([[listener]], [[tls.sni]]), printed as such
			default:
				out[key] = v
			}
		}
	}
	walk("", m)
	return out, nil
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func quoteKey(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return fmt.Sprintf("%q", k)
}

// render writes one value in TOML syntax.
func render(v any) string {
	if v == nil {
		return ""
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.Len() == 0 {
		return "[]"
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(map[string]any{"v": v}); err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSpace(buf.String())
	if _, after, ok := strings.Cut(s, "= "); ok && !strings.Contains(s, "\n") {
		return after
	}
	return fmt.Sprintf("%v", v) // a table inside an array: shown as Go prints it
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
