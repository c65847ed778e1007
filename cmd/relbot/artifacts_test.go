package main

import (
	"context"
	"strings"
	"testing"

	"github.com/relbot/relbot/internal/testenv"
	"github.com/relbot/relbot/storage/artifacts"
)

// relbot artifacts migrate moves a directory's artifacts into a bucket,
// says so per artifact and in total, and finds them there when run again.
func TestArtifactsMigrateToABucket(t *testing.T) {
	dir := t.TempDir()
	d, err := artifacts.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"crm/backups/crm-b1.relbot", "crm/migrations/crm-m1.relbot"} {
		w, err := d.Create(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("the bytes of " + name))
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"RELBOT_ARTIFACT_DIR": dir}
	bucket := testenv.S3(t)
	r := run(t, env, "artifacts", "migrate", "--to", bucket)
	if r.code != 0 || !strings.Contains(r.out, "crm/backups/crm-b1.relbot") || !strings.Contains(r.out, "2 artifacts: 2 copied") || strings.Contains(r.out+r.err, "endpoint=") {
		t.Fatalf("migrate: %+v", r)
	}
	if r := run(t, env, "artifacts", "migrate", "--to", bucket); r.code != 0 || !strings.Contains(r.out, "0 copied (0 B), 2 already there") {
		t.Fatalf("again: %+v", r)
	}
	for _, args := range [][]string{{"artifacts", "migrate"}, {"artifacts", "migrate", "--to", dir}, {"artifacts", "move"}} {
		if r := run(t, env, args...); r.code != 2 || !strings.HasPrefix(r.err, "relbot: ") {
			t.Errorf("relbot %v: %+v", args, r)
		}
	}
}
