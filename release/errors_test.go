package release

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A cause that spans lines (pgx lists every address it tried) still makes
// a one-line message, and the cause stays reachable.
func TestErrorfFoldsLines(t *testing.T) {
	cause := errors.New("failed to connect to `user=x database=y`:\n\t127.0.0.1:5999 (localhost): dial error\n\t[::1]:5999 (localhost): dial error")
	e := Errorf(CodeUnavailable, "cannot connect to staging's database: %w", cause)
	want := "cannot connect to staging's database: failed to connect to `user=x database=y`: 127.0.0.1:5999 (localhost): dial error [::1]:5999 (localhost): dial error"
	if e.Message != want {
		t.Fatalf("message %q\nwant    %q", e.Message, want)
	}
	if !errors.Is(e, cause) {
		t.Fatal("the cause is lost")
	}
}

// The cause is in Error() once: Errorf's %w put it into the message
// already, and the message the user reads is the sentence as written.
func TestErrorCauseOnce(t *testing.T) {
	refused := errors.New("connection refused")
	truncated := &Error{Code: CodeDamaged, Message: "backup archive is truncated", Err: io.ErrUnexpectedEOF}
	for _, c := range []struct {
		name      string
		err       *Error
		message   string // what the user reads
		errorText string // what the log gets
	}{
		{"Errorf with %w", Errorf(CodeUnavailable, "cannot connect to staging's database: %w", refused),
			"cannot connect to staging's database: connection refused", "cannot connect to staging's database: connection refused"},
		{"Errorf of an Errorf", Errorf(CodeConflict, "restore failed: %w", Errorf(CodeUnavailable, "cannot connect: %w", refused)),
			"restore failed: cannot connect: connection refused", "restore failed: cannot connect: connection refused"},
		{"Errorf without a cause", Errorf(CodeInvalid, "no app %q", "crm"), `no app "crm"`, `no app "crm"`},
		{"a message written without its cause", &Error{Code: CodeUnavailable, Message: "Redis is not available", Err: refused},
			"Redis is not available", "Redis is not available: connection refused"},
		{"a message quoting its cause's message", &Error{Code: CodeConflict, Message: "crm-r1 failed at restore backup: " + ErrorMessage(truncated), Err: truncated},
			"crm-r1 failed at restore backup: backup archive is truncated", "crm-r1 failed at restore backup: backup archive is truncated: unexpected EOF"},
		{"Errorf of a message written without its cause", Errorf(CodeDamaged, "cannot restore crm-b1: %w", truncated),
			"cannot restore crm-b1: backup archive is truncated: unexpected EOF", "cannot restore crm-b1: backup archive is truncated: unexpected EOF"},
	} {
		if got := ErrorMessage(c.err); got != c.message {
			t.Errorf("%s: message %q\nwant %q", c.name, got, c.message)
		}
		if got := c.err.Error(); got != c.errorText {
			t.Errorf("%s: Error() %q\nwant %q", c.name, got, c.errorText)
		}
		for _, cause := range []string{"connection refused", "unexpected EOF", "backup archive is truncated"} {
			if n := strings.Count(c.err.Error(), cause); n > 1 {
				t.Errorf("%s: Error() says %q %d times: %q", c.name, cause, n, c.err.Error())
			}
		}
	}
	wrapped := Errorf(CodeConflict, "restore failed: %w", Errorf(CodeUnavailable, "cannot connect: %w", refused))
	var inner *Error
	if !errors.Is(wrapped, refused) || !errors.As(wrapped.Err, &inner) || inner.Code != CodeUnavailable || errors.Unwrap(inner) != refused {
		t.Fatal("the cause chain is lost")
	}
}

// A folded multi-line cause is not repeated either.
func TestErrorfFoldedCauseOnce(t *testing.T) {
	cause := errors.New("failed to connect:\n\t127.0.0.1:5999: dial error\n\t[::1]:5999: dial error")
	e := Errorf(CodeUnavailable, "cannot connect to staging's database: %w", cause)
	if got, want := e.Error(), "cannot connect to staging's database: failed to connect: 127.0.0.1:5999: dial error [::1]:5999: dial error"; got != want {
		t.Fatalf("Error() %q\nwant    %q", got, want)
	}
}

// TestCodesAreSnakeCaseAndListed: every Code constant of errors.go is in
// Codes, and each is snake_case, as --json prints it.
func TestCodesAreSnakeCaseAndListed(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []Code
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, sp := range g.Specs {
			v := sp.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, val := range v.Values {
				s, err := strconv.Unquote(val.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				declared = append(declared, Code(s))
			}
		}
	}
	if len(declared) < 8 {
		t.Fatalf("found %d Code constants in errors.go; the parse is broken", len(declared))
	}
	if !slices.Equal(declared, Codes) {
		t.Errorf("Codes = %v, errors.go declares %v", Codes, declared)
	}
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for _, c := range declared {
		if !snake.MatchString(string(c)) {
			t.Errorf("code %q is not snake_case", c)
		}
	}
}
