package release

import "testing"

func TestBytesIsIEC(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 512: "512 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		12_900_000: "12.3 MiB", 3 << 30: "3.0 GiB", 5 << 40: "5.0 TiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCountSaysOneAndMany(t *testing.T) {
	for _, c := range []struct {
		n    int64
		noun string
		want string
	}{
		{1, "secret", "1 secret"}, {2, "secret", "2 secrets"}, {0, "table", "0 tables"},
		{1, "approval", "1 approval"}, {3, "approval", "3 approvals"},
		{1234, "row", "1,234 rows"}, {2, "entry", "2 entries"}, {2, "day", "2 days"},
		{2, "class", "2 classes"}, {2, "person|people", "2 people"}, {1, "person|people", "1 person"},
		{2, "table differs|tables differ", "2 tables differ"},
	} {
		if got := Count(c.n, c.noun); got != c.want {
			t.Errorf("Count(%d, %q) = %q, want %q", c.n, c.noun, got, c.want)
		}
	}
}

func TestListReadsAsEnglish(t *testing.T) {
	for _, c := range []struct {
		items []string
		and   string
	}{
		{nil, "none"},
		{[]string{"crm"}, "crm"},
		{[]string{"crm", "hr"}, "crm and hr"},
		{[]string{"alice", "bob", "carol"}, "alice, bob and carol"},
	} {
		if got := List(c.items); got != c.and {
			t.Errorf("List(%q) = %q, want %q", c.items, got, c.and)
		}
	}
}

// A message listing names reads as English, not as Go's [crm hr].
func TestUnknownAppListsTheConfiguredOnes(t *testing.T) {
	s := NewCore([]*App{{Name: "hr"}, {Name: "crm"}}, nil, nil, nil)
	_, err := s.App("tickets")
	if got, want := ErrorMessage(err), `no app "tickets" (configured: crm and hr)`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}
