package config

import (
	"regexp"
	"strings"
)

// typeErrRe matches BurntSushi/toml's type-mismatch text, which names Go
// types ("TOML value has type int64; destination has type slice").
var typeErrRe = regexp.MustCompile(`^incompatible types: TOML value has type (\S+); destination has type (\S+)$`)

// mismatchRe matches its other form, for tables and lists ("type mismatch
// for config.MsgAuth: expected table but found int64").
var mismatchRe = regexp.MustCompile(`^type mismatch for \S+: expected (\S+) but found (\S+)$`)

// plainTypeError says a type mismatch in the config file's own words: what
// the file has and what the setting takes, with an example of the latter.
// Any other text is returned unchanged.
func plainTypeError(key, msg string) string {
	if m := typeErrRe.FindStringSubmatch(msg); m != nil {
		return "wrong type: " + tomlKind(m[1]) + " where the setting takes " + settingKind(key, m[2])
	}
	if m := mismatchRe.FindStringSubmatch(msg); m != nil {
		return "wrong type: " + tomlKind(m[2]) + " where the setting takes " + settingKind(key, m[1])
	}
	return msg
}

// stringExample is an example value of the string setting key: a size
// for a quota, else a domain.
func stringExample(key string) string {
	if strings.HasSuffix(key, "storage") {
		return `"5G"`
	}
	return `"example.org"`
}

func tomlKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a number"
	case strings.HasPrefix(goType, "float"):
		return "a decimal number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true/false"
	case strings.HasPrefix(goType, "[]map"):
		return "an array of tables"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map"):
		return "a table"
	case strings.Contains(goType, "Time"), strings.Contains(goType, "Local"):
		return "a date/time"
	}
	return "a value of TOML type " + goType
}

func settingKind(key, dest string) string {
	switch dest {
	case "string":
		return "a string in quotes (e.g. " + stringExample(key) + ")"
	case "slice", "array":
		return `a list in brackets (e.g. ["a", "b"])`
	case "integer", "int", "int64", "uint", "float":
		return "a number without quotes (e.g. 10)"
	case "bool":
		return "true or false (no quotes)"
	case "struct", "map", "table":
		return "a table ([section] or { key = value })"
	}
	return dest
}
