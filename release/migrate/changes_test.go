package migrate

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
)

// The sample app's development -> staging migration, summarized against
// staging: the page, collection, fields, workflow version, roles' menu
// access, plugins and the variable it brings.
func TestSampleChangeSummary(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development, fixtures.Staging)
	e := &Engine{SigningKey: testKey}
	file := makeFile(t, e, app)
	stg, _ := app.Env(fixtures.Staging)
	plan, err := e.Plan(ctxT(t), reader(file), app, stg, map[string]bool{"API_BASE_URL": true, "SMTP_PASSWORD": true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`page added: “Contracts” — in “CRM”`,
		`page content changed: “Customers” — 2 elements added`,
		`collection added: “Contracts” (contracts) — 6 fields`,
		`field added: “Customers” (customers) › segment — select`,
		`field added: “Customers” (customers) › “Contracts” (contracts) — o2m`,
		`workflow new version: “Notify on urgent ticket” — nodes added: “Mark pending”; nodes changed: “Mail account manager”`,
		`role menu access: “Admin” (admin) — now sees “Contracts”`,
		`role menu access: “Sales” (sales) — now sees “Contracts”`,
		`plugin added: workflow-json-query 2.2.15 — enabled`,
		`plugin upgraded: acl, action-bulk-edit, action-bulk-update and 37 more — 2.2.14 → 2.2.15`,
		`plugin upgraded: crm-tools — 1.3.0 → 1.4.0`,
		`table rows differ: collectionCategories, collectionCategory, desktopRoutesUiLayouts, main_desktopRoutes_path — other carried tables`,
		`variable newly referenced: CONTRACTS_SIGN_URL — not defined in staging yet`,
	}
	if got := plan.Changes.Lines(0); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("summary against staging:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Check, which a deploy's request runs, says the same.
	c, err := e.Check(ctxT(t), reader(file), app, stg)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Changes.Items) != len(want) || c.Changes.Items[0] != plan.Changes.Items[0] {
		t.Fatalf("check's summary differs from the plan's: %v", c.Changes.Lines(0))
	}
}

// summarySQL is one side of a NocoBase configuration in the real columns
// of the tables the summary reads, written with plain names: {T:name} is
// the table in layout l, {C:name} a column.
func summarySQL(l fixtures.Layout, sql string) string {
	return regexp.MustCompile(`\{([TC]):([A-Za-z_-]+)\}`).ReplaceAllStringFunc(sql, func(m string) string {
		kind, name := m[1], m[3:len(m)-1]
		if kind == 'T' {
			return l.Ident(name)
		}
		return `"` + l.Column(name) + `"`
	})
}

const summaryTablesSQL = `
DROP TABLE {T:desktopRoutes}, {T:rolesDesktopRoutes}, {T:collections}, {T:fields}, {T:workflows}, {T:flow_nodes},
	{T:roles}, {T:dataSourcesRolesResources}, {T:dataSourcesRolesResourcesActions}, {T:applicationPlugins};
DELETE FROM {T:mobileRoutes};
DROP TABLE {T:uiSchemas}, {T:uiSchemaTreePath};
CREATE TABLE {T:uiSchemas} ({C:x-uid} varchar(255) PRIMARY KEY, {C:name} varchar(255), {C:schema} json);
CREATE TABLE {T:uiSchemaTreePath} ({C:ancestor} varchar(255), {C:descendant} varchar(255), {C:depth} integer, {C:async} boolean,
	{C:type} varchar(255), {C:sort} integer, PRIMARY KEY ({C:ancestor}, {C:descendant}));
DROP TABLE IF EXISTS {T:flowModels}, {T:flowModelTreePath};
CREATE TABLE {T:flowModels} ({C:uid} varchar(255) PRIMARY KEY, {C:name} varchar(255), {C:options} json);
CREATE TABLE {T:flowModelTreePath} ({C:ancestor} varchar(255), {C:descendant} varchar(255), {C:depth} integer, {C:async} boolean,
	{C:type} varchar(255), {C:sort} integer, PRIMARY KEY ({C:ancestor}, {C:descendant}));
CREATE TABLE {T:desktopRoutes} ({C:id} bigint PRIMARY KEY, {C:parentId} bigint, {C:title} varchar(255), {C:type} varchar(255),
	{C:icon} varchar(255), {C:schemaUid} varchar(255), {C:hidden} boolean, {C:hideInMenu} boolean, {C:enableTabs} boolean,
	{C:options} json, {C:sort} bigint, {C:createdAt} timestamptz DEFAULT now(), {C:updatedAt} timestamptz DEFAULT now());
CREATE TABLE {T:rolesDesktopRoutes} ({C:desktopRouteId} bigint, {C:roleName} varchar(255), {C:createdAt} timestamptz DEFAULT now(),
	PRIMARY KEY ({C:desktopRouteId}, {C:roleName}));
CREATE TABLE {T:collections} ({C:key} varchar(255) PRIMARY KEY, {C:name} varchar(255) UNIQUE, {C:title} varchar(255),
	{C:inherit} boolean, {C:hidden} boolean, {C:options} json, {C:description} text, {C:sort} bigint);
CREATE TABLE {T:fields} ({C:key} varchar(255) PRIMARY KEY, {C:name} varchar(255), {C:type} varchar(255), {C:interface} varchar(255),
	{C:description} text, {C:collectionName} varchar(255), {C:options} json, {C:sort} bigint);
CREATE TABLE {T:workflows} ({C:id} bigint PRIMARY KEY, {C:key} varchar(255), {C:title} varchar(255), {C:current} boolean,
	{C:enabled} boolean, {C:sync} boolean, {C:type} varchar(255), {C:description} text, {C:config} jsonb, {C:options} jsonb);
CREATE TABLE {T:flow_nodes} ({C:id} bigint PRIMARY KEY, {C:key} varchar(255), {C:title} varchar(255), {C:upstreamId} bigint,
	{C:downstreamId} bigint, {C:branchIndex} integer, {C:type} varchar(255), {C:config} jsonb, {C:workflowId} bigint);
CREATE TABLE {T:roles} ({C:name} varchar(255) PRIMARY KEY, {C:title} varchar(255), {C:description} text, {C:strategy} json,
	{C:default} boolean, {C:hidden} boolean, {C:allowConfigure} boolean, {C:allowNewMenu} boolean, {C:snippets} json);
CREATE TABLE {T:dataSourcesRolesResources} ({C:id} bigint PRIMARY KEY, {C:roleName} varchar(255), {C:name} varchar(255),
	{C:dataSourceKey} varchar(255), {C:usingActionsConfig} boolean);
CREATE TABLE {T:dataSourcesRolesResourcesActions} ({C:id} bigint PRIMARY KEY, {C:rolesResourceId} bigint, {C:name} varchar(255),
	{C:fields} json, {C:scopeId} bigint);
CREATE TABLE {T:applicationPlugins} ({C:id} bigint PRIMARY KEY, {C:name} varchar(255) UNIQUE, {C:packageName} varchar(255) UNIQUE,
	{C:version} varchar(255), {C:enabled} boolean, {C:installed} boolean, {C:builtIn} boolean, {C:options} json);
`

// What production has; development changes it below.
const summaryProductionSQL = `
INSERT INTO {T:desktopRoutes} ({C:id}, {C:parentId}, {C:title}, {C:type}, {C:icon}, {C:schemaUid}, {C:hidden}, {C:options}) VALUES
	(1, NULL, 'CRM', 'group', 'AppstoreOutlined', NULL, false, '{}'),
	(2, 1, 'Customers', 'page', 'UserOutlined', 'pg-cust', false, '{}'),
	(3, 2, NULL, 'tabs', NULL, 'tab-cust', true, '{}'),
	(4, 1, 'Tickets', 'page', 'BugOutlined', 'pg-tick', false, '{}'),
	(5, NULL, 'Reports', 'page', NULL, 'pg-rep', false, '{}'),
	(6, NULL, 'Dashboard', 'flowPage', NULL, 'fm-dash', false, '{}'),
	(7, NULL, 'Sales', 'group', NULL, NULL, false, '{}');
-- The pages' contents: 1.x UI schema trees (a tab's node under its page's),
-- a 2.x flow model tree, a pop-up of no page; closure rows to depth 2.
INSERT INTO {T:uiSchemas} ({C:x-uid}, {C:name}, {C:schema}) VALUES
	('pg-cust', 'page', '{"x-component": "Page"}'), ('tab-cust', 'tab', '{"x-component": "Tabs.TabPane"}'),
	('blk-cust', 'table', '{"x-decorator": "TableBlockProvider", "x-decorator-props": {"pageSize": 20}}'),
	('col-name', 'name', '{"x-collection-field": "customers.name"}'),
	('pg-tick', 'page', '{"x-component": "Page"}'), ('blk-tick', 'table', '{"x-decorator": "TableBlockProvider"}'),
	('col-legacy', 'legacy', '{"x-collection-field": "tickets.legacy"}'),
	('pg-rep', 'page', '{"x-component": "Page"}'), ('chart-rep', 'chart', '{"x-component": "Chart"}'),
	('pop-1', 'popup', '{"x-component": "Action.Drawer", "title": "Edit"}');
INSERT INTO {T:uiSchemaTreePath} ({C:ancestor}, {C:descendant}, {C:depth}, {C:sort}) VALUES
	('pg-cust', 'pg-cust', 0, 1), ('pg-cust', 'tab-cust', 1, 1), ('tab-cust', 'tab-cust', 0, 1),
	('tab-cust', 'blk-cust', 1, 1), ('pg-cust', 'blk-cust', 2, 1), ('blk-cust', 'col-name', 1, 1), ('tab-cust', 'col-name', 2, 1),
	('pg-tick', 'blk-tick', 1, 1), ('blk-tick', 'col-legacy', 1, 1), ('pg-tick', 'col-legacy', 2, 1),
	('pg-rep', 'chart-rep', 1, 1), ('pop-1', 'pop-1', 0, 1);
INSERT INTO {T:flowModels} ({C:uid}, {C:name}, {C:options}) VALUES
	('fm-dash', NULL, '{"use": "RootPageModel"}'), ('fm-grid', NULL, '{"use": "BlockGridModel"}'),
	('fm-chart', NULL, '{"use": "ChartBlockModel", "stepParams": {"chart": {"type": "bar"}}}');
INSERT INTO {T:flowModelTreePath} ({C:ancestor}, {C:descendant}, {C:depth}, {C:sort}) VALUES
	('fm-dash', 'fm-grid', 1, 1), ('fm-grid', 'fm-chart', 1, 1), ('fm-dash', 'fm-chart', 2, 1);
INSERT INTO {T:rolesDesktopRoutes} ({C:desktopRouteId}, {C:roleName}) VALUES (2, 'member'), (3, 'member'), (4, 'member'), (5, 'member');
INSERT INTO {T:collections} ({C:key}, {C:name}, {C:title}, {C:hidden}, {C:options}) VALUES
	('c1', 'customers', 'Customers', false, '{"template": "general", "sortable": false}'),
	('c2', 'tickets', 'Tickets', false, '{"template": "general"}');
INSERT INTO {T:fields} ({C:key}, {C:collectionName}, {C:name}, {C:type}, {C:interface}, {C:options}) VALUES
	('f1', 'customers', 'name', 'string', 'input', '{"uiSchema": {"title": "Name"}}'),
	('f2', 'tickets', 'status', 'string', 'select', '{"uiSchema": {"title": "Status", "enum": ["open", "closed"]}}'),
	('f3', 'tickets', 'legacy', 'string', 'input', '{"uiSchema": {"title": "{{t(\"Legacy code\")}}"}}');
INSERT INTO {T:workflows} ({C:id}, {C:key}, {C:title}, {C:current}, {C:enabled}, {C:type}, {C:config}) VALUES
	(1, 'wA', 'Notify on ticket', true, true, 'collection', '{"collection": "tickets"}'),
	(2, 'wB', 'Nightly cleanup', true, true, 'schedule', '{"cron": "0 3 * * *"}');
INSERT INTO {T:flow_nodes} ({C:id}, {C:key}, {C:title}, {C:upstreamId}, {C:type}, {C:config}, {C:workflowId}) VALUES
	(1, 'na', 'Has customer', NULL, 'condition', '{"engine": "basic"}', 1),
	(2, 'nb', 'Mail manager', 1, 'mailer', '{"to": ["a@example.com"]}', 1),
	(3, 'nx', 'Delete old', NULL, 'destroy', '{}', 2);
INSERT INTO {T:roles} ({C:name}, {C:title}, {C:strategy}, {C:snippets}, {C:allowConfigure}) VALUES
	('admin', '{{t("Admin")}}', '{"actions": ["create", "view", "update", "destroy"]}', '["ui.*", "pm", "pm.*"]', true),
	('member', '{{t("Member")}}', '{"actions": ["view"]}', '["!ui.*", "!pm", "!pm.*"]', false),
	('legacy', 'Legacy', '{"actions": []}', '[]', false);
INSERT INTO {T:dataSourcesRolesResources} ({C:id}, {C:roleName}, {C:name}, {C:dataSourceKey}, {C:usingActionsConfig}) VALUES
	(1, 'member', 'tickets', 'main', true);
INSERT INTO {T:dataSourcesRolesResourcesActions} ({C:id}, {C:rolesResourceId}, {C:name}, {C:fields}, {C:scopeId}) VALUES
	(1, 1, 'view', '[]', NULL),
	(2, 1, 'update', '["status"]', 2);
INSERT INTO {T:applicationPlugins} ({C:id}, {C:name}, {C:packageName}, {C:version}, {C:enabled}, {C:installed}, {C:builtIn}) VALUES
	(1, 'acl', '@nocobase/plugin-acl', '2.2.14', true, true, true),
	(2, 'kanban', '@nocobase/plugin-kanban', '2.2.14', true, true, true),
	(3, 'gantt', '@nocobase/plugin-gantt', '2.2.14', true, true, true);
`

const summaryDevelopmentSQL = `
UPDATE {T:desktopRoutes} SET {C:title} = 'Support tickets' WHERE {C:id} = 4;
UPDATE {T:desktopRoutes} SET {C:parentId} = 7, {C:icon} = 'TeamOutlined' WHERE {C:id} = 2;
DELETE FROM {T:desktopRoutes} WHERE {C:id} = 5;
INSERT INTO {T:desktopRoutes} ({C:id}, {C:parentId}, {C:title}, {C:type}, {C:schemaUid}, {C:hidden}, {C:options}) VALUES
	(8, 7, 'Contracts', 'page', 'pg-cont', false, '{}'),
	(9, 8, NULL, 'tabs', 'tab-cont', true, '{}'),
	(10, 2, 'History', 'tabs', 'tab-hist', false, '{}');
DELETE FROM {T:rolesDesktopRoutes} WHERE {C:desktopRouteId} = 5;
-- Customers: its table shows 50 rows and a new column; Tickets loses the
-- legacy column; the dashboard's chart is a line chart beside a new table;
-- the pop-up is retitled; Reports goes with its chart, Contracts comes
-- with its table.
UPDATE {T:uiSchemas} SET {C:schema} = '{"x-decorator": "TableBlockProvider", "x-decorator-props": {"pageSize": 50}}' WHERE {C:x-uid} = 'blk-cust';
INSERT INTO {T:uiSchemas} ({C:x-uid}, {C:name}, {C:schema}) VALUES
	('col-seg', 'segment', '{"x-collection-field": "customers.segment"}'),
	('pg-cont', 'page', '{"x-component": "Page"}'), ('blk-cont', 'table', '{"x-decorator": "TableBlockProvider"}');
INSERT INTO {T:uiSchemaTreePath} ({C:ancestor}, {C:descendant}, {C:depth}, {C:sort}) VALUES
	('blk-cust', 'col-seg', 1, 2), ('tab-cust', 'col-seg', 2, 2), ('pg-cont', 'blk-cont', 1, 1);
DELETE FROM {T:uiSchemas} WHERE {C:x-uid} IN ('col-legacy', 'pg-rep', 'chart-rep');
DELETE FROM {T:uiSchemaTreePath} WHERE {C:descendant} IN ('col-legacy', 'pg-rep', 'chart-rep');
UPDATE {T:uiSchemas} SET {C:schema} = '{"x-component": "Action.Drawer", "title": "Edit customer"}' WHERE {C:x-uid} = 'pop-1';
UPDATE {T:flowModels} SET {C:options} = '{"stepParams": {"chart": {"type": "line"}}, "use": "ChartBlockModel"}' WHERE {C:uid} = 'fm-chart';
INSERT INTO {T:flowModels} ({C:uid}, {C:name}, {C:options}) VALUES ('fm-table', NULL, '{"use": "TableBlockModel"}');
INSERT INTO {T:flowModelTreePath} ({C:ancestor}, {C:descendant}, {C:depth}, {C:sort}) VALUES ('fm-grid', 'fm-table', 1, 2);
-- The same options with its keys in another order is no change.
UPDATE {T:flowModels} SET {C:options} = '{ "use" : "BlockGridModel" }' WHERE {C:uid} = 'fm-grid';
INSERT INTO {T:rolesDesktopRoutes} ({C:desktopRouteId}, {C:roleName}) VALUES (8, 'sales'), (9, 'sales');
UPDATE {T:collections} SET {C:options} = '{"template": "general", "sortable": true}' WHERE {C:name} = 'customers';
INSERT INTO {T:collections} ({C:key}, {C:name}, {C:title}, {C:hidden}, {C:options}) VALUES
	('c3', 'contracts', 'Contracts', false, '{"template": "tree"}');
INSERT INTO {T:fields} ({C:key}, {C:collectionName}, {C:name}, {C:type}, {C:interface}, {C:options}) VALUES
	('f4', 'customers', 'segment', 'string', 'select', '{"uiSchema": {"title": "Segment"}}'),
	('f5', 'contracts', 'title', 'string', 'input', '{"uiSchema": {"title": "Title"}}'),
	('f6', 'contracts', 'value', 'decimal', 'number', '{}');
UPDATE {T:fields} SET {C:options} = '{"uiSchema": {"title": "Status", "enum": ["open", "pending", "closed"]}}' WHERE {C:key} = 'f2';
DELETE FROM {T:fields} WHERE {C:key} = 'f3';
UPDATE {T:workflows} SET {C:current} = NULL, {C:enabled} = false WHERE {C:id} = 1;
UPDATE {T:workflows} SET {C:enabled} = false WHERE {C:id} = 2;
INSERT INTO {T:workflows} ({C:id}, {C:key}, {C:title}, {C:current}, {C:enabled}, {C:type}, {C:config}) VALUES
	(3, 'wA', 'Notify on ticket', true, true, 'collection', '{"collection": "tickets"}'),
	(4, 'wC', 'Sync orders', true, false, 'action', '{}');
INSERT INTO {T:flow_nodes} ({C:id}, {C:key}, {C:title}, {C:upstreamId}, {C:type}, {C:config}, {C:workflowId}) VALUES
	(4, 'na', 'Has customer', NULL, 'condition', '{"engine":"basic"}', 3),
	(5, 'nb', 'Mail manager', 4, 'mailer', '{"to": ["b@example.com"]}', 3),
	(6, 'nc', 'Mark pending', 5, 'update', '{}', 3),
	(7, 'ny', NULL, NULL, 'request', '{}', 4);
UPDATE {T:roles} SET {C:strategy} = '{"actions": ["view", "create"]}', {C:snippets} = '["ui.*", "!pm", "!pm.*"]' WHERE {C:name} = 'member';
DELETE FROM {T:roles} WHERE {C:name} = 'legacy';
INSERT INTO {T:roles} ({C:name}, {C:title}, {C:strategy}, {C:snippets}) VALUES ('sales', 'Sales', '{"actions": ["view"]}', '[]');
UPDATE {T:dataSourcesRolesResourcesActions} SET {C:fields} = '["status", "priority"]' WHERE {C:id} = 2;
INSERT INTO {T:dataSourcesRolesResourcesActions} ({C:id}, {C:rolesResourceId}, {C:name}, {C:fields}, {C:scopeId}) VALUES
	(3, 1, 'destroy', '[]', NULL);
INSERT INTO {T:dataSourcesRolesResources} ({C:id}, {C:roleName}, {C:name}, {C:dataSourceKey}, {C:usingActionsConfig}) VALUES
	(2, 'sales', 'contracts', 'main', true);
INSERT INTO {T:dataSourcesRolesResourcesActions} ({C:id}, {C:rolesResourceId}, {C:name}, {C:fields}, {C:scopeId}) VALUES
	(4, 2, 'view', '[]', NULL), (5, 2, 'create', '[]', NULL);
UPDATE {T:applicationPlugins} SET {C:version} = '2.2.15' WHERE {C:name} IN ('acl', 'kanban');
UPDATE {T:applicationPlugins} SET {C:enabled} = false WHERE {C:name} = 'gantt';
INSERT INTO {T:applicationPlugins} ({C:id}, {C:name}, {C:packageName}, {C:version}, {C:enabled}, {C:installed}, {C:builtIn}) VALUES
	(4, 'workflow-json-query', '@nocobase/plugin-workflow-json-query', '2.2.15', true, true, false);
`

// The summary reads NocoBase's tables and columns in every layout, and
// tells each kind of change in the app's terms; a table's rule decides
// what the target keeps.
func TestChangeSummaryInEveryLayout(t *testing.T) {
	t.Parallel()
	want := []string{
		`page added: “Contracts” — in “Sales”`,
		`page renamed: “Tickets” → “Support tickets” — in “CRM”`,
		`page moved: “Customers” — from “CRM” to “Sales”`,
		`page content changed: elements outside the menu's pages — 1 element changed (pop-ups, saved templates)`,
		`page changed: “Customers” — icon`,
		`page changed: “Customers” — tab “History” added`,
		`page content changed: “Customers” — 1 element added, 1 changed`,
		`page content changed: “Dashboard” — 1 element added, 1 changed`,
		`page content changed: “Support tickets” — 1 element removed`,
		`page removed: “Reports” — at the top of the menu`,
		`collection added: “Contracts” (contracts) — tree collection, 2 fields`,
		`collection changed: “Customers” (customers) — options: sortable`,
		`field added: “Customers” (customers) › “Segment” (segment) — select`,
		`field changed: “Tickets” (tickets) › “Status” (status) — options: uiSchema`,
		`field removed: “Tickets” (tickets) › “Legacy code” (legacy) — input`,
		`workflow added: “Sync orders” — action trigger, 1 node, disabled`,
		`workflow new version: “Notify on ticket” — nodes added: “Mark pending”; nodes changed: “Mail manager”`,
		`workflow disabled: “Nightly cleanup”`,
		`role added: “Sales” (sales) — general permissions: view`,
		`role changed: “Member” (member) — general permissions: granted create; snippets: granted ui.*; withdrawn !ui.*`,
		`role permissions: “Member” (member) — granted tickets: destroy; fields or scope changed tickets: update`,
		`role permissions: “Sales” (sales) — granted contracts: create, view`,
		`role menu access: “Member” (member) — no longer sees “Reports”`,
		`role menu access: “Sales” (sales) — now sees “Contracts”`,
		`role removed: “Legacy” (legacy)`,
		`plugin added: workflow-json-query 2.2.15 — enabled`,
		`plugin upgraded: acl, kanban — 2.2.14 → 2.2.15`,
		`plugin disabled: gantt — was enabled`,
	}
	for _, tc := range fixtures.Layouts {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			dev := nocobaseEnv(t, tc.Layout, fixtures.Development)
			prod := nocobaseEnv(t, tc.Layout, fixtures.Production)
			for _, step := range []struct {
				env *release.Environment
				sql string
			}{{dev, summaryTablesSQL + summaryProductionSQL + summaryDevelopmentSQL}, {prod, summaryTablesSQL + summaryProductionSQL}} {
				conn := testenv.Connect(t, step.env.Database)
				if _, err := conn.Exec(ctxT(t), summarySQL(tc.Layout, step.sql)); err != nil {
					t.Fatal(err)
				}
			}
			e := &Engine{SigningKey: testKey}
			plan := func(rules map[string]release.Rule) []string {
				app := nocobaseApp(dev, prod)
				app.Rules = rules
				var buf bytes.Buffer
				if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
					t.Fatal(err)
				}
				p, err := e.Plan(ctxT(t), reader(buf.Bytes()), app, prod, nil)
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, c := range p.Changes.Items {
					if c.Kind != release.ChangeTable { // the generated tables' rows differ by design
						out = append(out, c.String())
					}
				}
				return out
			}
			if got := plan(map[string]release.Rule{}); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("summary:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// Upserted roles keep the one only production has; a
			// schema-only plugin registry changes nothing there.
			got := plan(map[string]release.Rule{"roles": release.RuleUpsert, "applicationPlugins": release.RuleSchemaOnly})
			for _, line := range got {
				if strings.HasPrefix(line, "plugin ") || strings.HasPrefix(line, "role removed") {
					t.Errorf("with roles upserted and plugins schema-only: %s", line)
				}
			}
			if !strings.Contains(strings.Join(got, "\n"), `role added: “Sales” (sales)`) {
				t.Errorf("with roles upserted the new role is still told:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

// An app relbot knows nothing of is summarized by table: those the file
// brings new, and those whose rows differ from the target's, with rule
// and counts; a table whose rows match is not listed.
func TestChangeSummaryOfAnyApp(t *testing.T) {
	t.Parallel()
	_, devDSN := testenv.NewDatabase(t, "any_dev")
	_, prodDSN := testenv.NewDatabase(t, "any_prod")
	common := `CREATE TABLE settings (k text PRIMARY KEY, v text); CREATE TABLE menu (id int PRIMARY KEY, label text);
		CREATE TABLE "Odd name" (id int PRIMARY KEY, note text);
		INSERT INTO menu VALUES (1, 'Home'), (2, 'Orders'); INSERT INTO settings VALUES ('a', '1'), ('b', '2');`
	for dsn, sql := range map[string]string{
		devDSN: common + `INSERT INTO settings VALUES ('c', '3'); INSERT INTO "Odd name" VALUES (1, 'x');
			CREATE TABLE lookup (code text PRIMARY KEY); INSERT INTO lookup VALUES ('eu'), ('us');`,
		prodDSN: common + `INSERT INTO "Odd name" VALUES (1, 'y')`,
	} {
		conn := testenv.Connect(t, dsn)
		if _, err := conn.Exec(ctxT(t), sql); err != nil {
			t.Fatal(err)
		}
	}
	dev, prod := &release.Environment{Name: "development", Database: devDSN}, &release.Environment{Name: "production", Database: prodDSN}
	app := &release.App{Name: "shop", Environments: []*release.Environment{dev, prod},
		Rules: map[string]release.Rule{"settings": release.RuleOverwrite, "menu": release.RuleOverwrite, "lookup": release.RuleOverwrite, "Odd name": release.RuleUpsert}}
	e := &Engine{SigningKey: testKey}
	var buf bytes.Buffer
	if _, err := e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "shop-m1", By: "alice", CreatedAt: time.Now().UTC()}, &buf); err != nil {
		t.Fatal(err)
	}
	p, err := e.Plan(ctxT(t), reader(buf.Bytes()), app, prod, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`table added: lookup — overwrite, 2 rows`,
		`table rows differ: Odd name — upsert, 1 in the file, 1 in production`,
		`table rows differ: settings — overwrite, 3 in the file, 2 in production`,
	}
	if got := p.Changes.Lines(0); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("summary:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
