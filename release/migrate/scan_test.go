package migrate

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relbot/relbot/fixtures"
	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/release"
	"github.com/relbot/relbot/release/appdb"
	"github.com/relbot/relbot/release/pgschema"
)

const scanSecret = "Tr0ub4dor&3-canary/Ω"

// uEscape writes every character of s as a JSON \u escape, hex digits in
// the given case (fmt verb %04x or %04X).
func uEscape(s, verb string) string {
	var b strings.Builder
	for _, r := range s {
		if r > 0xffff {
			panic("test secret is in the BMP")
		}
		fmt.Fprintf(&b, `\u`+verb, r)
	}
	return b.String()
}

var testCopyEscaper = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)

// copyRow is a row as COPY TO writes it in text format.
func copyRow(fields ...string) []byte {
	for i, f := range fields {
		if f != `\N` {
			fields[i] = testCopyEscaper.Replace(f)
		}
	}
	return []byte(strings.Join(fields, "\t"))
}

// The scanner finds a known secret however a row spells it: as is, with
// JSON \u escapes in either case inside json, jsonb and text columns, as
// a JSON key, in base64 (alone or inside a longer encoded value, standard
// or URL alphabet), percent-encoded in either case or as a query string;
// it names the column and row, never the value, and lets harmless rows by.
func TestScanFindsEncodedSecrets(t *testing.T) {
	t.Parallel()
	table := &pgschema.Table{Schema: "public", Name: "settings", PrimaryKey: []string{"id"}, Columns: []pgschema.Column{
		{Name: "id", Type: "bigint"}, {Name: "note", Type: "text"}, {Name: "options", Type: "json"}, {Name: "schema", Type: "jsonb"},
	}}
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	lowerPct := regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(url.QueryEscape(scanSecret), strings.ToLower)
	if lowerPct == url.QueryEscape(scanSecret) {
		t.Fatal("the test secret has nothing to percent-encode")
	}
	leaks := map[string]struct{ column, note, options, schema string }{
		"plain text":             {"note", "token " + scanSecret, `{}`, `{}`},
		"\\u lower in json":      {"options", "", `{"token": "` + uEscape(scanSecret, "%04x") + `"}`, `{}`},
		"\\u upper in json":      {"options", "", `{"a": [1, {"b": "x` + uEscape(scanSecret, "%04X") + `y"}]}`, `{}`},
		"\\u partly escaped":     {"options", "", `{"t": "Tr0ub4dor\u00263-canary\/\u03A9"}`, `{}`},
		"\\u in a text column":   {"note", `{"token":"` + uEscape(scanSecret, "%04X") + `"}`, `{}`, `{}`},
		"as a jsonb key":         {"schema", "", `{}`, `{"` + scanSecret + `": true}`},
		"base64":                 {"note", b64(base64.StdEncoding, scanSecret), `{}`, `{}`},
		"base64 in basic auth":   {"note", "Authorization: Basic " + b64(base64.StdEncoding, "admin:"+scanSecret), `{}`, `{}`},
		"base64 offset by two":   {"options", "", `{"blob": "` + b64(base64.StdEncoding, "ab"+scanSecret+"zz") + `"}`, `{}`},
		"base64url in jsonb":     {"schema", "", `{}`, `{"jwt": "` + b64(base64.RawURLEncoding, "{\"k\":\""+scanSecret+"\"}") + `"}`},
		"percent upper":          {"note", "https://api.example.com/?key=" + url.QueryEscape(scanSecret), `{}`, `{}`},
		"percent lower":          {"note", "https://api.example.com/?key=" + lowerPct, `{}`, `{}`},
		"path escaped in json":   {"options", "", `{"url": "https://x.example/` + url.PathEscape(scanSecret) + `/y"}`, `{}`},
		"percent inside \\u":     {"options", "", `{"url": "` + uEscape(url.QueryEscape(scanSecret), "%04x") + `"}`, `{}`},
		"with a tab in the text": {"note", "a\t" + scanSecret + "\nb", `{}`, `{}`},
	}
	for name, c := range leaks {
		sc := &rowScanner{table: table, refs: map[string]bool{}, secrets: secretPatterns([]string{"short", scanSecret})}
		_, err := sc.Write(append(copyRow("42", c.note, c.options, c.schema), '\n'))
		msg := release.ErrorMessage(err)
		if err == nil || !strings.Contains(msg, "table settings, column "+c.column+", row id=42 holds the value of a secret") {
			t.Errorf("%s: %v, want a refusal naming column %s and row id=42", name, err, c.column)
			continue
		}
		if strings.Contains(err.Error(), "canary") || strings.Contains(err.Error(), "Tr0ub") {
			t.Errorf("%s: the refusal shows the secret: %v", name, err)
		}
	}

	harmless := [][]string{
		{"1", "Tr0ub4dor&3-canar", `{"token": "` + uEscape("Tr0ub4dor&3-canar", "%04x") + `"}`, `{"short": "short"}`},
		{"2", `\N`, `null`, `{"n": 1.5e3, "u": "\u00e9\u00E9", "b64": "` + b64(base64.StdEncoding, "an unrelated value") + `"}`},
		{"3", "100% sure + 50%zz", `{"bad": "\uZZZZ \u12"}`, `[]`},
		{"4", `back\slash \x41 \101`, `"{{$env.API_TOKEN}}"`, `{}`},
	}
	sc := &rowScanner{table: table, refs: map[string]bool{}, secrets: secretPatterns([]string{"short", scanSecret})}
	for _, row := range harmless {
		if _, err := sc.Write(append(copyRow(row...), '\n')); err != nil {
			t.Fatalf("harmless row %v refused: %v", row, err)
		}
	}
	if !sc.refs["API_TOKEN"] {
		t.Fatalf("variable reference not collected: %v", sc.refs)
	}
	// A row split across writes is scanned whole.
	row := append(copyRow("7", "", `{"t": "`+uEscape(scanSecret, "%04X")+`"}`, `{}`), '\n')
	sc = &rowScanner{table: table, refs: map[string]bool{}, secrets: secretPatterns([]string{scanSecret})}
	var err error
	for i := 0; i < len(row) && err == nil; i += 5 {
		_, err = sc.Write(row[i:min(i+5, len(row))])
	}
	if !strings.Contains(release.ErrorMessage(err), "column options, row id=7") {
		t.Fatalf("split row: %v", err)
	}
}

func TestCopyUnescape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`plain`: "plain", `a\\b`: `a\b`, `\t\n\r\b\f\v`: "\t\n\r\b\f\v", `\101\x42\7`: "AB\x07", `\xZ`: "xZ", `\q`: "q",
	} {
		if got := string(appdb.CopyUnescape([]byte(in))); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// Against the sample app's development database: a secret written with
// \u escapes into a json column (json keeps the text as written) and
// base64-encoded into a jsonb one stops the file.
func TestEscapedSecretStopsTheFile(t *testing.T) {
	t.Parallel()
	app := sampleApp(t, fixtures.Development)
	e := &Engine{SigningKey: testKey}
	dev, _ := app.Env(fixtures.Development)
	secret := "canary-secret-7f3a9e"
	for name, sql := range map[string]string{
		"json with \\u": `UPDATE collections SET options = '{"apiKey": "` + uEscape(secret, "%04X") + `"}'::json WHERE key = (SELECT min(key) FROM collections)`,
		"base64 in jsonb": `UPDATE "uiSchemas" SET schema = jsonb_set(schema, '{x-auth}', to_jsonb('Basic ' || encode(convert_to('admin:` + secret + `', 'UTF8'), 'base64'))) ` +
			`WHERE "x-uid" = (SELECT min("x-uid") FROM "uiSchemas")`,
	} {
		t.Run(name, func(t *testing.T) {
			conn := testenv.Connect(t, dev.Database)
			tx, err := conn.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(context.Background(), sql); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, err = e.Create(ctxT(t), release.MigrationInput{App: app, Source: dev, ID: "crm-m9", By: "alice", CreatedAt: time.Now(), Secrets: []string{secret}}, &buf)
			if msg := release.ErrorMessage(err); err == nil || !strings.Contains(msg, "holds the value of a secret") || strings.Contains(err.Error(), secret) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
