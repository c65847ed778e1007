package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	pathpkg "path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/relbot/relbot/release"
)

// Presets of built-in tables that `builtin:` may name.
const PresetNocoBase = "nocobase"

// Presets lists the names `builtin:` accepts.
var Presets = []string{PresetNocoBase}

// Defaults applied where apps.yaml says nothing.
const (
	DefaultHookTimeout  = 5 * time.Minute
	DefaultCheckTimeout = 30 * time.Second
	DefaultCheckExpect  = 200
)

// presetStorageExclude is left out of backups unless storage_exclude says
// otherwise: NocoBase's logs are not worth keeping and gateway.sock is a
// socket, which cannot be copied.
var presetStorageExclude = map[string][]string{
	PresetNocoBase: {"logs/**", "gateway.sock"},
}

// nocobaseVariablesTable never carries values between environments.
const nocobaseVariablesTable = "environmentVariables"

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

const nameRule = "must match ^[a-z][a-z0-9_-]*$ (lowercase letter first, then lowercase letters, digits, - or _)"

// AppsFile is what apps.yaml holds.
type AppsFile struct {
	Apps []*release.App
	// TerminalUsers maps OS user names to the Slack IDs they act as in a
	// terminal (terminal_users); nil when apps.yaml maps nobody.
	TerminalUsers map[string]string
}

// LoadApps reads and validates apps.yaml and returns its apps.
func LoadApps(file string, getenv func(string) string) ([]*release.App, error) {
	f, err := LoadAppsFile(file, getenv)
	if err != nil {
		return nil, err
	}
	return f.Apps, nil
}

// LoadAppsFile reads and validates apps.yaml, the file RELBOT_APPS_FILE
// names. getenv resolves ${NAME} references; nil means os.Getenv. Errors
// are *Error, with File set once the file is read.
func LoadAppsFile(file string, getenv func(string) string) (*AppsFile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		// The path tried, made absolute: a relative RELBOT_APPS_FILE is
		// read from the working directory, which is often the surprise.
		tried := file
		if abs, aerr := filepath.Abs(file); aerr == nil {
			tried = abs
		}
		return nil, &Error{Problem: fmt.Sprintf("apps.yaml: cannot read %s (%s): %s", tried, EnvAppsFile, err)}
	}
	f, err := ParseAppsFile(data, getenv)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = file
		}
		return nil, err
	}
	return f, nil
}

// ParseApps decodes and validates the content of apps.yaml, returning the
// apps in file order.
func ParseApps(data []byte, getenv func(string) string) ([]*release.App, error) {
	f, err := ParseAppsFile(data, getenv)
	if err != nil {
		return nil, err
	}
	return f.Apps, nil
}

// ParseAppsFile decodes and validates the content of apps.yaml. getenv
// resolves ${NAME} references and supplies RELBOT_TIME_ZONE, the zone used
// when apps.yaml names none; nil means os.Getenv. The first problem found
// is returned as an *Error.
func ParseAppsFile(data []byte, getenv func(string) string) (*AppsFile, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var raw fileRaw
	ix, derr := decodeDocument(data, &raw)
	if derr != nil {
		return nil, derr
	}
	c := &checker{getenv: getenv, ix: ix}
	out := &AppsFile{}
	out.Apps, out.TerminalUsers = c.file(&raw)
	if c.err != nil {
		return nil, c.err
	}
	return out, nil
}

func (c *checker) file(f *fileRaw) ([]*release.App, map[string]string) {
	var terminalUsers map[string]string
	if f.TerminalUsers != nil {
		terminalUsers = c.terminalUsers(f.TerminalUsers, path{"terminal_users"})
	}
	loc := time.UTC
	if f.TimeZone.given() {
		loc = c.location(f.TimeZone, path{"time_zone"})
	} else if tz := c.getenv(EnvTimeZone); tz != "" && !c.failed() {
		l, err := time.LoadLocation(tz)
		if err != nil {
			c.err = &Error{Field: EnvTimeZone, Problem: fmt.Sprintf("unknown time zone %q", tz)}
		}
		loc = l
	}
	at := path{"apps"}
	if len(f.Apps) == 0 {
		c.failf(at, "no apps defined")
		return nil, nil
	}
	var apps []*release.App
	for _, name := range order(c.ix, at, f.Apps) {
		if c.failed() {
			break
		}
		apps = append(apps, c.app(name, f.Apps[name], at.key(name), loc))
	}
	return apps, terminalUsers
}

func (c *checker) location(s scalar, p path) *time.Location {
	name := c.str(s, p)
	if c.failed() {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" {
		c.failf(p, "unknown time zone %q (use an IANA name such as Europe/Paris)", name)
		return time.UTC
	}
	return loc
}

func (c *checker) app(name string, f *appRaw, p path, loc *time.Location) *release.App {
	app := &release.App{Name: name, Rules: map[string]release.Rule{}}
	if !namePattern.MatchString(name) {
		c.failf(p, "app name %s", nameRule)
		return app
	}
	if !c.present(f != nil, p) {
		return app
	}
	if f.TimeZone.given() {
		loc = c.location(f.TimeZone, p.key("time_zone"))
	}
	if f.Channel.given() {
		app.Channel = strings.TrimSpace(c.str(f.Channel, p.key("channel")))
	}
	if f.Builtin.given() {
		c.builtin(app, f.Builtin, p.key("builtin"))
	}
	rp := p.key("rules")
	for _, table := range checkKeys(c, rp, f.Rules, nil) {
		at := rp.key(table)
		if strings.TrimSpace(table) == "" {
			c.failf(at, "table name must not be empty")
			continue
		}
		rule := release.Rule(c.str(f.Rules[table], at))
		switch {
		case c.failed():
		case !rule.Valid():
			c.failf(at, "unknown rule %q (want overwrite, upsert, insert-ignore, schema-only or skip)", string(rule))
		case app.Builtin == PresetNocoBase && table == nocobaseVariablesTable && rule.CarriesRows():
			c.failf(at, "the variables table never carries values between environments (use schema-only or skip)")
		}
		app.Rules[table] = rule
	}
	if f.VersionTables != nil {
		app.VersionTables = c.tableList(*f.VersionTables, p.key("version_tables"))
	}
	if f.Versions != nil && f.Versions.Keep.given() {
		kp := p.key("versions").key("keep")
		app.VersionKeep = c.integer(f.Versions.Keep, kp)
		if app.VersionKeep < 1 && !c.failed() {
			c.failf(kp, "must be 1 or more")
		}
	}
	// The app's nocobase: is every environment's, unless one states its own.
	var layout *release.Layout
	if f.NocoBase != nil {
		layout = c.layout(f.NocoBase, p.key("nocobase"))
	}
	ep := p.key("environments")
	if f.Environments == nil {
		c.failf(ep, "required: the chain of environments, source first")
		return app
	}
	envs := *f.Environments
	if !c.failed() && len(envs) < 2 {
		c.failf(ep, "need at least 2 environments (a source and a target), got %d", len(envs))
	}
	seen := map[string]int{}
	for i, e := range envs {
		if c.failed() {
			break
		}
		at := ep.index(i)
		var fields *EnvFields
		var name scalar
		if c.present(e != nil, at) {
			fields, name = &e.EnvFields, e.Name
		}
		env := c.environment(app, layout, fields, &name, at, loc, i == len(envs)-1)
		if j, dup := seen[env.Name]; dup && !c.failed() {
			c.failf(at.key("name"), "%q is already the name of environments[%d]", env.Name, j)
		}
		seen[env.Name] = i
		app.Environments = append(app.Environments, env)
	}
	if f.Recovery != nil && !c.failed() {
		app.Recovery = c.environment(app, layout, &f.Recovery.EnvFields, nil, p.key("recovery"), loc, false)
	}
	if f.Roles != nil && !c.failed() {
		app.Roles = c.roles(f.Roles, p.key("roles"))
	}
	return app
}

func (c *checker) builtin(app *release.App, b builtinRaw, p path) {
	if b.tables != nil {
		app.BuiltinTables = c.tableList(*b.tables, p)
		return
	}
	name := c.str(b.preset, p)
	if !c.failed() && !slices.Contains(Presets, name) {
		c.failf(p, "unknown preset %q (known: %s; or give a list of tables)", name, strings.Join(Presets, ", "))
	}
	app.Builtin = name
}

func (c *checker) tableList(list []scalar, p path) []string {
	seen := map[string]bool{}
	var out []string
	for i, it := range list {
		at := p.index(i)
		t := strings.TrimSpace(c.str(it, at))
		switch {
		case c.failed():
			return out
		case t == "":
			c.failf(at, "table name must not be empty")
		case seen[t]:
			c.failf(at, "table %q is listed twice", t)
		}
		seen[t] = true
		out = append(out, t)
	}
	return out
}

// environment validates one environment of the chain, or the recovery
// environment (name nil: its name is fixed). f nil is an environment
// written as null, already refused.
func (c *checker) environment(app *release.App, layout *release.Layout, f *EnvFields, name *scalar, p path, loc *time.Location, last bool) *release.Environment {
	env := &release.Environment{Hooks: map[string]release.Hook{}, Layout: layout}
	if name == nil {
		env.Name = release.RecoveryEnv
	}
	if f == nil || c.failed() {
		return env
	}
	if name != nil {
		np := p.key("name")
		if !name.given() {
			c.failf(np, "required")
			return env
		}
		env.Name = c.str(*name, np)
		switch {
		case c.failed():
			return env
		case env.Name == release.RecoveryEnv:
			c.failf(np, "%q is reserved for the app's recovery environment", release.RecoveryEnv)
		case !namePattern.MatchString(env.Name):
			c.failf(np, "environment name %s", nameRule)
		}
	}

	dp := p.key("database")
	if !f.Database.given() {
		c.failf(dp, "required: a postgres:// URL or key=value DSN")
	} else if env.Database = c.str(f.Database, dp); !c.failed() {
		if problem := checkDSN(env.Database); problem != "" {
			c.failf(dp, "%s", problem) // never the value: it may hold a password
		}
	}

	if f.Storage.given() {
		sp := p.key("storage")
		s := c.str(f.Storage, sp)
		if !c.failed() && !filepath.IsAbs(s) {
			c.failf(sp, "must be an absolute path")
		}
		env.Storage = filepath.Clean(s)
	}
	if f.NocoBase != nil {
		env.Layout = c.layout(f.NocoBase, p.key("nocobase"))
	}
	if f.StorageExclude != nil {
		env.StorageExclude = c.globs(*f.StorageExclude, p.key("storage_exclude"))
	} else if def, ok := presetStorageExclude[app.Builtin]; ok {
		env.StorageExclude = append([]string(nil), def...)
	} else if env.Layout != nil {
		// A stated NocoBase layout says the app is NocoBase whatever form
		// builtin takes: its storage directory is NocoBase's.
		env.StorageExclude = append([]string(nil), presetStorageExclude[PresetNocoBase]...)
	}

	env.Approvals = c.approvals(f.Approvals, p.key("approvals"), last)
	if f.Roles != nil && !c.failed() {
		rp := p.key("roles")
		env.Roles = c.roles(f.Roles, rp)
		if _, ok := env.Roles[release.RoleApprove]; ok && len(env.Approvals.Approvers) > 0 && !c.failed() {
			c.failf(rp.key(string(release.RoleApprove)), "approvals.approvers already says who may approve here: give them in one place")
		}
	}
	if f.Checks != nil && !c.failed() {
		env.Checks = c.checks(*f.Checks, p.key("checks"))
	}
	if f.Freeze != nil {
		fp := p.key("freeze")
		for i, item := range *f.Freeze {
			text := c.str(item, fp.index(i))
			if c.failed() {
				break
			}
			w, err := ParseFreezeWindow(text, loc)
			if err != nil {
				c.failf(fp.index(i), "%s", err)
				break
			}
			env.Freeze = append(env.Freeze, w)
		}
	}
	if f.Notice.given() {
		np := p.key("notice")
		env.Notice = c.duration(f.Notice, np)
		if env.Notice < 0 && !c.failed() {
			c.failf(np, "must not be negative")
		}
	}
	if f.Backup != nil {
		env.Backup = c.backup(f.Backup, p.key("backup"), loc)
	}
	hp := p.key("hooks")
	for _, name := range checkKeys(c, hp, f.Hooks, release.HookNames) {
		if c.failed() {
			break
		}
		env.Hooks[name] = c.hook(f.Hooks[name], hp.key(name))
	}
	return env
}

var schemaPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// layout decodes nocobase: {schema, table_prefix, underscored,
// collection_schema}, the values NocoBase was installed with (DB_SCHEMA,
// DB_TABLE_PREFIX, DB_UNDERSCORED, COLLECTION_MANAGER_SCHEMA).
// sub_app_schemas (USE_DB_SCHEMA_IN_SUBAPP) is known only to be refused:
// relbot handles the main app's tables only.
func (c *checker) layout(f *layoutRaw, p path) *release.Layout {
	l := &release.Layout{}
	if c.failed() {
		return l
	}
	if !f.Schema.given() && !f.TablePrefix.given() && !f.Underscored.given() && !f.CollectionSchema.given() && !f.SubAppSchemas.given() {
		c.failf(p, "states no layout: give schema, table_prefix, underscored and/or collection_schema (as DB_SCHEMA, DB_TABLE_PREFIX, DB_UNDERSCORED and COLLECTION_MANAGER_SCHEMA of the install), or leave nocobase: out to detect it")
		return l
	}
	if f.Schema.given() {
		sp := p.key("schema")
		name := c.str(f.Schema, sp)
		if !c.failed() && !schemaPattern.MatchString(name) {
			c.failf(sp, "%q is not a schema name (DB_SCHEMA: letters, digits, _ and $, not starting with a digit)", name)
		}
		if name != "public" {
			l.Schema = name
		}
	}
	if f.TablePrefix.given() {
		pp := p.key("table_prefix")
		l.TablePrefix = c.str(f.TablePrefix, pp)
		if !c.failed() && l.TablePrefix != "" && !schemaPattern.MatchString(l.TablePrefix) {
			c.failf(pp, "%q is not a table prefix (DB_TABLE_PREFIX: letters, digits, _ and $, such as nb_)", l.TablePrefix)
		}
	}
	if f.Underscored.given() {
		l.Underscored = c.boolean(f.Underscored, p.key("underscored"))
	}
	if f.CollectionSchema.given() {
		cp := p.key("collection_schema")
		name := c.str(f.CollectionSchema, cp)
		if !c.failed() && !schemaPattern.MatchString(name) {
			c.failf(cp, "%q is not a schema name (COLLECTION_MANAGER_SCHEMA: letters, digits, _ and $, not starting with a digit)", name)
		}
		// The same schema as the system tables is NocoBase's default.
		if name != l.SchemaName() {
			l.CollectionSchema = name
		}
	}
	if f.SubAppSchemas.given() {
		sp := p.key("sub_app_schemas")
		if c.boolean(f.SubAppSchemas, sp) && !c.failed() {
			c.failf(sp, "USE_DB_SCHEMA_IN_SUBAPP (each sub-app's tables in a schema of its own) is not supported: relbot migrates, compares and keeps the secrets of the main app's tables only; remove sub_app_schemas, or manage such an installation without relbot")
		}
	}
	return l
}

// checkDSN returns what is wrong with a PostgreSQL connection string, or "".
// The message never includes the string or a parser error (url.Parse
// errors quote the URL, password included).
func checkDSN(dsn string) string {
	const want = "must be a postgres:// or postgresql:// URL or a key=value DSN"
	s := strings.TrimSpace(dsn)
	if s == "" {
		return want
	}
	if i := strings.Index(s, "://"); i >= 0 && !strings.Contains(s[:i], "=") {
		scheme := strings.ToLower(s[:i])
		if scheme != "postgres" && scheme != "postgresql" {
			return want + " (the URL scheme is not postgres)"
		}
		if _, err := url.Parse(s); err != nil {
			return want + " (the URL does not parse)"
		}
		return ""
	}
	if !validKeyValueDSN(s) {
		return want
	}
	return ""
}

var dsnKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validKeyValueDSN checks libpq's key=value form: space-separated pairs,
// values optionally single-quoted with backslash escapes.
func validKeyValueDSN(s string) bool {
	pairs := 0
	for {
		s = strings.TrimLeft(s, " \t\n\r")
		if s == "" {
			return pairs > 0
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return false
		}
		if !dsnKey.MatchString(strings.TrimSpace(s[:eq])) {
			return false
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		if strings.HasPrefix(s, "'") {
			i := 1
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' {
					i++
				}
			}
			if i >= len(s) {
				return false // unterminated quote
			}
			s = s[i+1:]
		} else if i := strings.IndexAny(s, " \t\n\r"); i >= 0 {
			s = s[i:]
		} else {
			s = ""
		}
		pairs++
	}
}

func (c *checker) globs(list []scalar, p path) []string {
	out := make([]string, 0, len(list))
	for i, it := range list {
		at := p.index(i)
		g := c.str(it, at)
		if c.failed() {
			return out
		}
		if _, err := pathpkg.Match(g, ""); err != nil || g == "" {
			c.failf(at, "%q is not a valid glob pattern", g)
			return out
		}
		if pathpkg.IsAbs(g) || g == ".." || strings.HasPrefix(g, "../") || strings.Contains(g, "/../") {
			c.failf(at, "%q must be relative to the storage directory", g)
			return out
		}
		out = append(out, g)
	}
	return out
}

// approvals decodes the approval policy. Without `required`, the last
// environment of the chain (production) needs one approval and every other
// environment none: releasing to production unreviewed must be a choice.
func (c *checker) approvals(f *approvalsRaw, p path, last bool) release.ApprovalPolicy {
	pol := release.ApprovalPolicy{}
	if last {
		pol.Required = 1
	}
	if f == nil || c.failed() {
		return pol
	}
	if f.Approvers != nil {
		ap := p.key("approvers")
		seen := map[string]bool{}
		for i, it := range *f.Approvers {
			at := ap.index(i)
			a := strings.TrimSpace(c.str(it, at))
			switch {
			case c.failed():
			case a == "":
				c.failf(at, "must not be empty")
			case seen[a]:
				c.failf(at, "approver %q is listed twice", a)
			case a == release.Anyone:
				c.failf(at, "%q is not an approver: leave approvers out to let anyone approve", a)
			default:
				if problem := memberProblem(a); problem != "" {
					c.failf(at, "%s", problem)
				}
			}
			seen[a] = true
			pol.Approvers = append(pol.Approvers, a)
		}
	}
	groups := false // a group's size is known only when a release is approved
	for _, a := range pol.Approvers {
		groups = groups || release.IsGroup(a)
	}
	if f.Required.given() {
		rp := p.key("required")
		pol.Required = c.integer(f.Required, rp)
		switch {
		case c.failed():
		case pol.Required < 0:
			c.failf(rp, "must be 0 or more")
		case len(pol.Approvers) > 0 && !groups && pol.Required > len(pol.Approvers):
			c.failf(rp, "%d approvals required but only %d approvers listed", pol.Required, len(pol.Approvers))
		}
	}
	if f.AllowSelf.given() {
		pol.AllowSelf = c.boolean(f.AllowSelf, p.key("allow_self"))
	}
	if f.Expire.given() {
		ep := p.key("expire")
		pol.Expire = c.duration(f.Expire, ep)
		if pol.Expire <= 0 && !c.failed() {
			c.failf(ep, "must be a positive duration such as 24h")
		}
	}
	return pol
}

func (c *checker) checks(list []*checkRaw, p path) []release.Check {
	seen := map[string]int{}
	var out []release.Check
	for i, f := range list {
		at := p.index(i)
		if c.failed() || !c.present(f != nil, at) {
			break
		}
		chk := release.Check{Timeout: DefaultCheckTimeout}
		if f.Name.given() {
			np := at.key("name")
			chk.Name = strings.TrimSpace(c.str(f.Name, np))
			if j, dup := seen[chk.Name]; dup && !c.failed() {
				c.failf(np, "check %q is already defined at checks[%d]", chk.Name, j)
			}
			seen[chk.Name] = i
		}
		if chk.Name == "" && !c.failed() {
			c.failf(at.key("name"), "required")
		}
		hasSQL, hasHTTP := f.SQL.given(), f.HTTP.given()
		switch {
		case c.failed():
		case hasSQL && hasHTTP:
			c.failf(at, "has both sql and http; a check runs exactly one")
		case !hasSQL && !hasHTTP:
			c.failf(at, "needs exactly one of sql or http")
		case hasSQL:
			sp := at.key("sql")
			chk.SQL = c.str(f.SQL, sp)
			if strings.TrimSpace(chk.SQL) == "" && !c.failed() {
				c.failf(sp, "must not be empty")
			}
		default:
			hp := at.key("http")
			chk.HTTP = c.str(f.HTTP, hp)
			if !c.failed() {
				if err := checkHTTPSpec(chk.HTTP); err != "" {
					c.failf(hp, "%s", err)
				}
			}
			chk.Expect = DefaultCheckExpect
		}
		if f.Expect.given() && !c.failed() {
			ep := at.key("expect")
			if !hasHTTP {
				c.failf(ep, "applies only to http checks")
			} else if chk.Expect = c.integer(f.Expect, ep); !c.failed() && (chk.Expect < 100 || chk.Expect > 599) {
				c.failf(ep, "must be an HTTP status code (100-599)")
			}
		}
		if f.Timeout.given() {
			tp := at.key("timeout")
			chk.Timeout = c.duration(f.Timeout, tp)
			if chk.Timeout <= 0 && !c.failed() {
				c.failf(tp, "must be a positive duration such as 30s")
			}
		}
		out = append(out, chk)
	}
	return out
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// checkHTTPSpec validates "METHOD URL". The URL is never quoted back: hook
// URLs often carry a token.
func checkHTTPSpec(s string) string {
	parts := strings.Fields(s)
	if len(parts) != 2 {
		return `must be "METHOD URL", e.g. "POST https://example.com/hook"`
	}
	if !slices.Contains(httpMethods, parts[0]) {
		return fmt.Sprintf("unknown HTTP method %q (want one of %s)", parts[0], strings.Join(httpMethods, ", "))
	}
	u, err := url.Parse(parts[1])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "the URL must be an http:// or https:// URL with a host"
	}
	return ""
}

func (c *checker) hook(f *hookRaw, p path) release.Hook {
	h := release.Hook{Timeout: DefaultHookTimeout}
	if !c.present(f != nil, p) {
		return h
	}
	hasHTTP, hasExec := f.HTTP.given(), f.Exec != nil
	switch {
	case c.failed():
	case hasHTTP && hasExec:
		c.failf(p, "has both http and exec; a hook runs exactly one")
	case !hasHTTP && !hasExec:
		c.failf(p, "needs exactly one of http or exec")
	case hasHTTP:
		hp := p.key("http")
		h.HTTP = c.str(f.HTTP, hp)
		if !c.failed() {
			if err := checkHTTPSpec(h.HTTP); err != "" {
				c.failf(hp, "%s", err)
			}
		}
	default:
		ep := p.key("exec")
		for i, it := range *f.Exec {
			arg := c.str(it, ep.index(i))
			if i == 0 && strings.TrimSpace(arg) == "" && !c.failed() {
				c.failf(ep.index(i), "the program to run must not be empty")
			}
			h.Exec = append(h.Exec, arg)
		}
		if len(*f.Exec) == 0 && !c.failed() {
			c.failf(ep, "must list the program and its arguments")
		}
	}
	if f.Timeout.given() {
		tp := p.key("timeout")
		h.Timeout = c.duration(f.Timeout, tp)
		if h.Timeout <= 0 && !c.failed() {
			c.failf(tp, "must be a positive duration such as 5m")
		}
	}
	if f.Env != nil {
		h.Env = c.hookEnv(*f.Env, p.key("env"), hasExec)
	}
	return h
}

// hookEnv reads the names of the variables an exec hook is given. relbot's
// own settings and Slack credentials are never among them.
func (c *checker) hookEnv(list []scalar, p path, exec bool) []string {
	if !exec && !c.failed() {
		c.failf(p, "only an exec hook takes env (an http hook runs in relbot)")
	}
	var names []string
	for i, it := range list {
		at := p.index(i)
		name := c.str(it, at)
		upper := strings.ToUpper(name)
		switch {
		case c.failed():
		case !hookEnvName.MatchString(name):
			c.failf(at, "%q is not a variable name (letters, digits and _, not starting with a digit)", name)
		case strings.HasPrefix(upper, "RELBOT_") || strings.HasPrefix(upper, "SLACK_"):
			c.failf(at, "%s is relbot's own setting; a hook is never given RELBOT_* or SLACK_* variables", name)
		}
		names = append(names, name)
	}
	return names
}

var hookEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (c *checker) backup(f *backupRaw, p path, loc *time.Location) release.BackupPolicy {
	var pol release.BackupPolicy
	if f.Schedule.given() {
		pol.Schedule = c.cron(f.Schedule, p.key("schedule"), loc)
	}
	if f.Keep.given() {
		kp := p.key("keep")
		pol.Keep = c.integer(f.Keep, kp)
		if pol.Keep < 0 && !c.failed() {
			c.failf(kp, "must be 0 (keep all) or more")
		}
	}
	if f.Verify.given() {
		pol.Verify = c.cron(f.Verify, p.key("verify"), loc)
	}
	return pol
}

// cron validates a standard 5-field cron line (or @daily-style descriptor)
// and pins it to the app's time zone with a CRON_TZ= prefix, so that the
// scheduler needs no other knowledge of the zone. A line that names its own
// zone keeps it.
func (c *checker) cron(s scalar, p path, loc *time.Location) string {
	spec := strings.TrimSpace(c.str(s, p))
	if c.failed() {
		return ""
	}
	if spec == "" {
		c.failf(p, "must not be empty")
		return ""
	}
	spec, err := CronSpec(spec, loc)
	if err != nil {
		c.failf(p, "%s", err)
	}
	return spec
}

// CronSpec validates spec with robfig/cron's standard parser and prefixes
// CRON_TZ=<loc> unless spec names a zone itself.
func CronSpec(spec string, loc *time.Location) (string, error) {
	if loc == nil {
		loc = time.UTC
	}
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") {
		spec = "CRON_TZ=" + loc.String() + " " + spec
	}
	if _, err := cron.ParseStandard(spec); err != nil {
		return "", fmt.Errorf("not a valid cron schedule (%s); use 5 fields such as \"0 2 * * *\" or @daily", oneLine(err.Error()))
	}
	return spec, nil
}

var (
	freezePattern = regexp.MustCompile(`^\s*([A-Za-z]+)\s+(\d{1,2}):(\d{2})\s*-\s*([A-Za-z]+)\s+(\d{1,2}):(\d{2})\s*$`)
	weekdays      = map[string]time.Weekday{
		"sun": time.Sunday, "sunday": time.Sunday,
		"mon": time.Monday, "monday": time.Monday,
		"tue": time.Tuesday, "tuesday": time.Tuesday,
		"wed": time.Wednesday, "wednesday": time.Wednesday,
		"thu": time.Thursday, "thursday": time.Thursday,
		"fri": time.Friday, "friday": time.Friday,
		"sat": time.Saturday, "saturday": time.Saturday,
	}
)

// ParseFreezeWindow reads "Fri 16:00 - Mon 08:00" (days Mon..Sun, 24-hour
// times) as a weekly window in loc. A window may wrap over the week's end.
func ParseFreezeWindow(text string, loc *time.Location) (release.FreezeWindow, error) {
	if loc == nil {
		loc = time.UTC
	}
	bad := fmt.Errorf(`%q is not a freeze window such as "Fri 16:00 - Mon 08:00"`, text)
	m := freezePattern.FindStringSubmatch(text)
	if m == nil {
		return release.FreezeWindow{}, bad
	}
	at := func(day, hh, mm string) (release.WeekTime, error) {
		wd, ok := weekdays[strings.ToLower(day)]
		if !ok {
			return 0, fmt.Errorf("%q is not a day (use Mon, Tue, Wed, Thu, Fri, Sat or Sun)", day)
		}
		h, _ := strconv.Atoi(hh)
		mi, _ := strconv.Atoi(mm)
		if h > 23 || mi > 59 {
			return 0, fmt.Errorf("%s:%s is not a 24-hour time (00:00-23:59)", hh, mm)
		}
		return release.WeekTime(int(wd)*24*60 + h*60 + mi), nil
	}
	start, err := at(m[1], m[2], m[3])
	if err != nil {
		return release.FreezeWindow{}, err
	}
	end, err := at(m[4], m[5], m[6])
	if err != nil {
		return release.FreezeWindow{}, err
	}
	if start == end {
		return release.FreezeWindow{}, fmt.Errorf("%q starts and ends at the same time", text)
	}
	return release.FreezeWindow{Text: strings.TrimSpace(text), Start: start, End: end, Location: loc}, nil
}
