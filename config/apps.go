package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
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

var (
	topKeys      = []string{"apps", "time_zone", "terminal_users"}
	appKeys      = []string{"channel", "builtin", "rules", "version_tables", "versions", "environments", "recovery", "time_zone", "roles", "nocobase"}
	envKeys      = []string{"name", "database", "storage", "storage_exclude", "approvals", "checks", "freeze", "notice", "backup", "hooks", "roles", "nocobase"}
	layoutKeys   = []string{"schema", "table_prefix", "underscored", "collection_schema", "sub_app_schemas"}
	recoveryKeys = envKeys[1:] // its name is always "recovery"
	approvalKeys = []string{"required", "approvers", "allow_self", "expire"}
	checkKeys    = []string{"name", "sql", "http", "expect", "timeout"}
	backupKeys   = []string{"schedule", "keep", "verify"}
	versionKeys  = []string{"keep"}
	hookKeys     = []string{"http", "exec", "timeout", "env"}
)

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

// LoadAppsFile reads and validates apps.yaml. getenv resolves ${NAME}
// references; nil means os.Getenv. Errors are *Error with File set.
func LoadAppsFile(file string, getenv func(string) string) (*AppsFile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{File: file, Problem: "cannot read: " + err.Error()}
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
	// Duplicate keys are refused by the decoder, which can name their path.
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, syntaxError(err)
	}
	var body val
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body.node != nil {
			return nil, &Error{Line: nodeLine(doc.Body), Problem: "apps.yaml must hold a single YAML document"}
		}
		body = val{node: doc.Body, line: nodeLine(doc.Body)}
	}
	if body.node == nil {
		return nil, &Error{Field: "apps", Problem: "no apps defined"}
	}
	d := &decoder{getenv: getenv, anchors: map[string]ast.Node{}}
	d.collectAnchors(body.node)
	out := &AppsFile{}
	out.Apps, out.TerminalUsers = d.file(body)
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

func (d *decoder) file(root val) ([]*release.App, map[string]string) {
	top := d.mapping(root, topKeys)
	var terminalUsers map[string]string
	if tv, ok := top.get(d, "terminal_users"); ok {
		terminalUsers = d.terminalUsers(tv)
	}
	loc := time.UTC
	if v, ok := top.get(d, "time_zone"); ok {
		loc = d.location(v)
	} else if tz := d.getenv(EnvTimeZone); tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			d.failf(val{path: EnvTimeZone}, "unknown time zone %q", tz)
		}
		loc = l
	}
	appsVal, ok := top.get(d, "apps")
	if !ok {
		d.failf(top.child("apps"), "no apps defined")
		return nil, nil
	}
	m := d.mapping(appsVal, nil)
	if len(m.keys) == 0 {
		d.failf(appsVal, "no apps defined")
	}
	var apps []*release.App
	for _, name := range m.keys {
		if d.failed() {
			break
		}
		apps = append(apps, d.app(name, m.vals[name], loc))
	}
	return apps, terminalUsers
}

func (d *decoder) location(v val) *time.Location {
	name := d.str(v)
	if d.failed() {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil || name == "" {
		d.failf(v, "unknown time zone %q (use an IANA name such as Europe/Paris)", name)
		return time.UTC
	}
	return loc
}

func (d *decoder) app(name string, v val, loc *time.Location) *release.App {
	app := &release.App{Name: name, Rules: map[string]release.Rule{}}
	if !namePattern.MatchString(name) {
		d.failf(v, "app name %s", nameRule)
		return app
	}
	f := d.mapping(v, appKeys)
	if tz, ok := f.get(d, "time_zone"); ok {
		loc = d.location(tz)
	}
	if c, ok := f.get(d, "channel"); ok {
		app.Channel = strings.TrimSpace(d.str(c))
	}
	if b, ok := f.get(d, "builtin"); ok {
		d.builtin(app, b)
	}
	if r, ok := f.get(d, "rules"); ok {
		rules := d.mapping(r, nil)
		for _, table := range rules.keys {
			rv := rules.vals[table]
			if strings.TrimSpace(table) == "" {
				d.failf(rv, "table name must not be empty")
				continue
			}
			rule := release.Rule(d.str(rv))
			switch {
			case d.failed():
			case !rule.Valid():
				d.failf(rv, "unknown rule %q (want overwrite, upsert, insert-ignore, schema-only or skip)", string(rule))
			case app.Builtin == PresetNocoBase && table == nocobaseVariablesTable && rule.CarriesRows():
				d.failf(rv, "the variables table never carries values between environments (use schema-only or skip)")
			}
			app.Rules[table] = rule
		}
	}
	if vt, ok := f.get(d, "version_tables"); ok {
		app.VersionTables = d.tableList(vt)
	}
	if vv, ok := f.get(d, "versions"); ok {
		if kv, ok := d.mapping(vv, versionKeys).get(d, "keep"); ok {
			app.VersionKeep = d.integer(kv)
			if app.VersionKeep < 1 && !d.failed() {
				d.failf(kv, "must be 1 or more")
			}
		}
	}
	// The app's nocobase: is every environment's, unless one states its own.
	var layout *release.Layout
	if lv, ok := f.get(d, "nocobase"); ok {
		layout = d.layout(lv)
	}
	envsVal, ok := f.get(d, "environments")
	if !ok {
		d.failf(f.child("environments"), "required: the chain of environments, source first")
		return app
	}
	items := d.list(envsVal)
	if !d.failed() && len(items) < 2 {
		d.failf(envsVal, "need at least 2 environments (a source and a target), got %d", len(items))
	}
	seen := map[string]int{}
	for i, item := range items {
		if d.failed() {
			break
		}
		env := d.environment(app, layout, item, loc, i == len(items)-1, false)
		if j, dup := seen[env.Name]; dup && !d.failed() {
			d.failf(val{path: childPath(item.path, "name"), line: item.line}, "%q is already the name of environments[%d]", env.Name, j)
		}
		seen[env.Name] = i
		app.Environments = append(app.Environments, env)
	}
	if rv, ok := f.get(d, "recovery"); ok && !d.failed() {
		app.Recovery = d.environment(app, layout, rv, loc, false, true)
	}
	if rv, ok := f.get(d, "roles"); ok && !d.failed() {
		app.Roles = d.roles(rv)
	}
	return app
}

func (d *decoder) builtin(app *release.App, v val) {
	n, ok := d.resolve(v)
	if !ok {
		return
	}
	if _, isList := n.(*ast.SequenceNode); isList {
		app.BuiltinTables = d.tableList(v)
		return
	}
	name := d.str(v)
	if !d.failed() && !slices.Contains(Presets, name) {
		d.failf(v, "unknown preset %q (known: %s; or give a list of tables)", name, strings.Join(Presets, ", "))
	}
	app.Builtin = name
}

func (d *decoder) tableList(v val) []string {
	items := d.list(v)
	seen := map[string]bool{}
	var out []string
	for _, it := range items {
		t := strings.TrimSpace(d.str(it))
		switch {
		case d.failed():
			return out
		case t == "":
			d.failf(it, "table name must not be empty")
		case seen[t]:
			d.failf(it, "table %q is listed twice", t)
		}
		seen[t] = true
		out = append(out, t)
	}
	return out
}

// environment decodes one environment of the chain, or the recovery
// environment (whose name is fixed).
func (d *decoder) environment(app *release.App, layout *release.Layout, v val, loc *time.Location, last, recovery bool) *release.Environment {
	env := &release.Environment{Hooks: map[string]release.Hook{}, Layout: layout}
	keys := envKeys
	if recovery {
		keys = recoveryKeys
		env.Name = release.RecoveryEnv
	}
	f := d.mapping(v, keys)
	if d.failed() {
		return env
	}
	if !recovery {
		nv, ok := f.get(d, "name")
		if !ok {
			d.failf(f.child("name"), "required")
			return env
		}
		env.Name = d.str(nv)
		switch {
		case d.failed():
			return env
		case env.Name == release.RecoveryEnv:
			d.failf(nv, "%q is reserved for the app's recovery environment", release.RecoveryEnv)
		case !namePattern.MatchString(env.Name):
			d.failf(nv, "environment name %s", nameRule)
		}
	}

	if dv, ok := f.get(d, "database"); !ok {
		d.failf(f.child("database"), "required: a postgres:// URL or key=value DSN")
	} else if env.Database = d.str(dv); !d.failed() {
		if problem := checkDSN(env.Database); problem != "" {
			d.failf(dv, "%s", problem) // never the value: it may hold a password
		}
	}

	if sv, ok := f.get(d, "storage"); ok {
		s := d.str(sv)
		if !d.failed() && !filepath.IsAbs(s) {
			d.failf(sv, "must be an absolute path")
		}
		env.Storage = filepath.Clean(s)
	}
	if lv, ok := f.get(d, "nocobase"); ok {
		env.Layout = d.layout(lv)
	}
	if ev, ok := f.get(d, "storage_exclude"); ok {
		env.StorageExclude = d.globs(ev)
	} else if def, ok := presetStorageExclude[app.Builtin]; ok {
		env.StorageExclude = append([]string(nil), def...)
	} else if env.Layout != nil {
		// A stated NocoBase layout says the app is NocoBase whatever form
		// builtin takes: its storage directory is NocoBase's.
		env.StorageExclude = append([]string(nil), presetStorageExclude[PresetNocoBase]...)
	}

	env.Approvals = d.approvals(f, last)
	if rv, ok := f.get(d, "roles"); ok && !d.failed() {
		env.Roles = d.roles(rv)
		if _, ok := env.Roles[release.RoleApprove]; ok && len(env.Approvals.Approvers) > 0 && !d.failed() {
			d.failf(val{path: childPath(rv.path, string(release.RoleApprove)), line: rv.line},
				"approvals.approvers already says who may approve here: give them in one place")
		}
	}
	if cv, ok := f.get(d, "checks"); ok {
		env.Checks = d.checks(cv)
	}
	if fv, ok := f.get(d, "freeze"); ok {
		for _, item := range d.list(fv) {
			text := d.str(item)
			if d.failed() {
				break
			}
			w, err := ParseFreezeWindow(text, loc)
			if err != nil {
				d.failf(item, "%s", err)
				break
			}
			env.Freeze = append(env.Freeze, w)
		}
	}
	if nv, ok := f.get(d, "notice"); ok {
		env.Notice = d.duration(nv)
		if env.Notice < 0 && !d.failed() {
			d.failf(nv, "must not be negative")
		}
	}
	if bv, ok := f.get(d, "backup"); ok {
		env.Backup = d.backup(bv, loc)
	}
	if hv, ok := f.get(d, "hooks"); ok {
		hooks := d.mapping(hv, release.HookNames)
		for _, name := range hooks.keys {
			if d.failed() {
				break
			}
			env.Hooks[name] = d.hook(hooks.vals[name])
		}
	}
	return env
}

var schemaPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)

// layout decodes nocobase: {schema, table_prefix, underscored,
// collection_schema}, the values NocoBase was installed with (DB_SCHEMA,
// DB_TABLE_PREFIX, DB_UNDERSCORED, COLLECTION_MANAGER_SCHEMA).
// sub_app_schemas (USE_DB_SCHEMA_IN_SUBAPP) is known only to be refused:
// relbot handles the main app's tables only.
func (d *decoder) layout(v val) *release.Layout {
	l := &release.Layout{}
	f := d.mapping(v, layoutKeys)
	if d.failed() {
		return l
	}
	if len(f.keys) == 0 {
		d.failf(v, "states no layout: give schema, table_prefix, underscored and/or collection_schema (as DB_SCHEMA, DB_TABLE_PREFIX, DB_UNDERSCORED and COLLECTION_MANAGER_SCHEMA of the install), or leave nocobase: out to detect it")
		return l
	}
	if sv, ok := f.get(d, "schema"); ok {
		name := d.str(sv)
		if !d.failed() && !schemaPattern.MatchString(name) {
			d.failf(sv, "%q is not a schema name (DB_SCHEMA: letters, digits, _ and $, not starting with a digit)", name)
		}
		if name != "public" {
			l.Schema = name
		}
	}
	if pv, ok := f.get(d, "table_prefix"); ok {
		l.TablePrefix = d.str(pv)
		if !d.failed() && l.TablePrefix != "" && !schemaPattern.MatchString(l.TablePrefix) {
			d.failf(pv, "%q is not a table prefix (DB_TABLE_PREFIX: letters, digits, _ and $, such as nb_)", l.TablePrefix)
		}
	}
	if uv, ok := f.get(d, "underscored"); ok {
		l.Underscored = d.boolean(uv)
	}
	if cv, ok := f.get(d, "collection_schema"); ok {
		name := d.str(cv)
		if !d.failed() && !schemaPattern.MatchString(name) {
			d.failf(cv, "%q is not a schema name (COLLECTION_MANAGER_SCHEMA: letters, digits, _ and $, not starting with a digit)", name)
		}
		// The same schema as the system tables is NocoBase's default.
		if name != l.SchemaName() {
			l.CollectionSchema = name
		}
	}
	if sv, ok := f.get(d, "sub_app_schemas"); ok {
		if d.boolean(sv) && !d.failed() {
			d.failf(sv, "USE_DB_SCHEMA_IN_SUBAPP (each sub-app's tables in a schema of its own) is not supported: relbot migrates, compares and keeps the secrets of the main app's tables only; remove sub_app_schemas, or manage such an installation without relbot")
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

func (d *decoder) globs(v val) []string {
	items := d.list(v)
	out := make([]string, 0, len(items))
	for _, it := range items {
		g := d.str(it)
		if d.failed() {
			return out
		}
		if _, err := path.Match(g, ""); err != nil || g == "" {
			d.failf(it, "%q is not a valid glob pattern", g)
			return out
		}
		if path.IsAbs(g) || g == ".." || strings.HasPrefix(g, "../") || strings.Contains(g, "/../") {
			d.failf(it, "%q must be relative to the storage directory", g)
			return out
		}
		out = append(out, g)
	}
	return out
}

// approvals decodes the approval policy. Without `required`, the last
// environment of the chain (production) needs one approval and every other
// environment none: releasing to production unreviewed must be a choice.
func (d *decoder) approvals(env *fields, last bool) release.ApprovalPolicy {
	p := release.ApprovalPolicy{}
	if last {
		p.Required = 1
	}
	v, ok := env.get(d, "approvals")
	if !ok || d.failed() {
		return p
	}
	f := d.mapping(v, approvalKeys)
	if av, ok := f.get(d, "approvers"); ok {
		items := d.list(av)
		seen := map[string]bool{}
		for _, it := range items {
			a := strings.TrimSpace(d.str(it))
			switch {
			case d.failed():
			case a == "":
				d.failf(it, "must not be empty")
			case seen[a]:
				d.failf(it, "approver %q is listed twice", a)
			case a == release.Anyone:
				d.failf(it, "%q is not an approver: leave approvers out to let anyone approve", a)
			default:
				if problem := memberProblem(a); problem != "" {
					d.failf(it, "%s", problem)
				}
			}
			seen[a] = true
			p.Approvers = append(p.Approvers, a)
		}
	}
	groups := false // a group's size is known only when a release is approved
	for _, a := range p.Approvers {
		groups = groups || release.IsGroup(a)
	}
	rv, hasRequired := f.get(d, "required")
	if hasRequired {
		p.Required = d.integer(rv)
		switch {
		case d.failed():
		case p.Required < 0:
			d.failf(rv, "must be 0 or more")
		case len(p.Approvers) > 0 && !groups && p.Required > len(p.Approvers):
			d.failf(rv, "%d approvals required but only %d approvers listed", p.Required, len(p.Approvers))
		}
	}
	if sv, ok := f.get(d, "allow_self"); ok {
		p.AllowSelf = d.boolean(sv)
	}
	if ev, ok := f.get(d, "expire"); ok {
		p.Expire = d.duration(ev)
		if p.Expire <= 0 && !d.failed() {
			d.failf(ev, "must be a positive duration such as 24h")
		}
	}
	return p
}

func (d *decoder) checks(v val) []release.Check {
	items := d.list(v)
	seen := map[string]int{}
	var out []release.Check
	for i, it := range items {
		if d.failed() {
			break
		}
		f := d.mapping(it, checkKeys)
		c := release.Check{Timeout: DefaultCheckTimeout}
		if nv, ok := f.get(d, "name"); ok {
			c.Name = strings.TrimSpace(d.str(nv))
			if j, dup := seen[c.Name]; dup && !d.failed() {
				d.failf(nv, "check %q is already defined at checks[%d]", c.Name, j)
			}
			seen[c.Name] = i
		}
		if c.Name == "" && !d.failed() {
			d.failf(f.child("name"), "required")
		}
		sv, hasSQL := f.get(d, "sql")
		hv, hasHTTP := f.get(d, "http")
		switch {
		case d.failed():
		case hasSQL && hasHTTP:
			d.failf(it, "has both sql and http; a check runs exactly one")
		case !hasSQL && !hasHTTP:
			d.failf(it, "needs exactly one of sql or http")
		case hasSQL:
			c.SQL = d.str(sv)
			if strings.TrimSpace(c.SQL) == "" && !d.failed() {
				d.failf(sv, "must not be empty")
			}
		default:
			c.HTTP = d.str(hv)
			if !d.failed() {
				if err := checkHTTPSpec(c.HTTP); err != "" {
					d.failf(hv, "%s", err)
				}
			}
			c.Expect = DefaultCheckExpect
		}
		if ev, ok := f.get(d, "expect"); ok && !d.failed() {
			if !hasHTTP {
				d.failf(ev, "applies only to http checks")
			} else if c.Expect = d.integer(ev); !d.failed() && (c.Expect < 100 || c.Expect > 599) {
				d.failf(ev, "must be an HTTP status code (100-599)")
			}
		}
		if tv, ok := f.get(d, "timeout"); ok {
			c.Timeout = d.duration(tv)
			if c.Timeout <= 0 && !d.failed() {
				d.failf(tv, "must be a positive duration such as 30s")
			}
		}
		out = append(out, c)
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

func (d *decoder) hook(v val) release.Hook {
	h := release.Hook{Timeout: DefaultHookTimeout}
	f := d.mapping(v, hookKeys)
	hv, hasHTTP := f.get(d, "http")
	ev, hasExec := f.get(d, "exec")
	switch {
	case d.failed():
	case hasHTTP && hasExec:
		d.failf(v, "has both http and exec; a hook runs exactly one")
	case !hasHTTP && !hasExec:
		d.failf(v, "needs exactly one of http or exec")
	case hasHTTP:
		h.HTTP = d.str(hv)
		if !d.failed() {
			if err := checkHTTPSpec(h.HTTP); err != "" {
				d.failf(hv, "%s", err)
			}
		}
	default:
		items := d.list(ev)
		for i, it := range items {
			arg := d.str(it)
			if i == 0 && strings.TrimSpace(arg) == "" && !d.failed() {
				d.failf(it, "the program to run must not be empty")
			}
			h.Exec = append(h.Exec, arg)
		}
		if len(items) == 0 && !d.failed() {
			d.failf(ev, "must list the program and its arguments")
		}
	}
	if tv, ok := f.get(d, "timeout"); ok {
		h.Timeout = d.duration(tv)
		if h.Timeout <= 0 && !d.failed() {
			d.failf(tv, "must be a positive duration such as 5m")
		}
	}
	if ev, ok := f.get(d, "env"); ok {
		h.Env = d.hookEnv(ev, hasExec)
	}
	return h
}

// hookEnv reads the names of the variables an exec hook is given. relbot's
// own settings and Slack credentials are never among them.
func (d *decoder) hookEnv(v val, exec bool) []string {
	if !exec && !d.failed() {
		d.failf(v, "only an exec hook takes env (an http hook runs in relbot)")
	}
	var names []string
	for _, it := range d.list(v) {
		name := d.str(it)
		upper := strings.ToUpper(name)
		switch {
		case d.failed():
		case !hookEnvName.MatchString(name):
			d.failf(it, "%q is not a variable name (letters, digits and _, not starting with a digit)", name)
		case strings.HasPrefix(upper, "RELBOT_") || strings.HasPrefix(upper, "SLACK_"):
			d.failf(it, "%s is relbot's own setting; a hook is never given RELBOT_* or SLACK_* variables", name)
		}
		names = append(names, name)
	}
	return names
}

var hookEnvName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (d *decoder) backup(v val, loc *time.Location) release.BackupPolicy {
	var p release.BackupPolicy
	f := d.mapping(v, backupKeys)
	if sv, ok := f.get(d, "schedule"); ok {
		p.Schedule = d.cron(sv, loc)
	}
	if kv, ok := f.get(d, "keep"); ok {
		p.Keep = d.integer(kv)
		if p.Keep < 0 && !d.failed() {
			d.failf(kv, "must be 0 (keep all) or more")
		}
	}
	if vv, ok := f.get(d, "verify"); ok {
		p.Verify = d.cron(vv, loc)
	}
	return p
}

// cron validates a standard 5-field cron line (or @daily-style descriptor)
// and pins it to the app's time zone with a CRON_TZ= prefix, so that the
// scheduler needs no other knowledge of the zone. A line that names its own
// zone keeps it.
func (d *decoder) cron(v val, loc *time.Location) string {
	spec := strings.TrimSpace(d.str(v))
	if d.failed() {
		return ""
	}
	if spec == "" {
		d.failf(v, "must not be empty")
		return ""
	}
	spec, err := CronSpec(spec, loc)
	if err != nil {
		d.failf(v, "%s", err)
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
