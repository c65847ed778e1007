// Package config reads relbot's settings (through a lookup of environment
// variables) and the apps it manages from apps.yaml, and refuses anything
// malformed with one line per problem that names the setting, or the file,
// line and field at fault: every setting's problem at once, apps.yaml's
// first.
package config

import (
	"fmt"
	"strings"
)

// Error is a configuration problem. It renders as one line,
// "FILE:LINE: FIELD: PROBLEM", leaving out the parts that are unknown, so an
// operator can jump to the place in apps.yaml or fix the named variable.
// Problems never quote a DSN, URL or secret: those may hold passwords.
type Error struct {
	File    string // apps.yaml path; empty for settings and for ParseApps
	Line    int    // 1-based line in the YAML; 0 when unknown
	Field   string // e.g. apps.crm.environments[0].database, or RELBOT_SECRET_KEY
	Problem string
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Problem)
	return oneLine(b.String())
}

// oneLine folds text from libraries (which may span lines) into the single
// line the product promises.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
