package httpspec

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := []string{"GET http://x", "POST https://crm.example.com/internal/maintenance/on", "DELETE  https://h:8080/p?q=1"}
	for _, s := range good {
		if _, _, err := Parse(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := []string{"", "https://x", "get https://x", "HEAD https://x", "POST ftp://x", "POST /path", "POST https://", "POST https://x extra", "POST https://u:pw@[::1"}
	for _, s := range bad {
		if _, _, err := Parse(s); err == nil {
			t.Errorf("%q: accepted", s)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("%q: error shows userinfo: %v", s, err)
		}
	}
}

func TestRedact(t *testing.T) {
	_, u, err := Parse("POST https://user:pw@host.example/a/b?token=abc&x=1#frag")
	if err != nil {
		t.Fatal(err)
	}
	got := Redact(u)
	if got != "https://host.example/a/b?token=REDACTED&x=REDACTED" {
		t.Fatalf("Redact = %q", got)
	}
}
