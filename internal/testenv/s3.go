package testenv

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// EnvS3Endpoint names the S3-compatible server tests use (SeaweedFS's,
// which .ci/run builds and starts on 127.0.0.1); DefaultS3Endpoint is where
// .ci/run starts it.
const (
	EnvS3Endpoint     = "RELBOT_TEST_S3_ENDPOINT"
	DefaultS3Endpoint = "http://127.0.0.1:18333"
)

var (
	bucketSeq     atomic.Int64
	s3Credentials sync.Once
)

// S3 makes a bucket of t's own on the tests' S3-compatible server and
// returns its artifact-store URL (removed with the test's data by the
// server's lifetime, not per test: buckets are cheap). The server must
// run: a test never passes without the store it tests.
func S3(t testing.TB) string {
	t.Helper()
	endpoint := os.Getenv(EnvS3Endpoint)
	if endpoint == "" {
		endpoint = DefaultS3Endpoint
	}
	name := fmt.Sprintf("relbot-test-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9, bucketSeq.Add(1))
	// The test server is anonymous: a plain PUT makes a bucket.
	req, err := http.NewRequest(http.MethodPut, strings.TrimSuffix(endpoint, "/")+"/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the tests' S3 server does not answer at %s (%v): bash .ci/run builds and starts it (SeaweedFS), or set %s", endpoint, err, EnvS3Endpoint)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create bucket %s at %s: %s", name, endpoint, resp.Status)
	}
	s3Credentials.Do(func() {
		// Requests are signed whatever the server: the SDK wants
		// credentials, and the test server takes any. Process-wide (the
		// tests run in parallel; t.Setenv would forbid it).
		if os.Getenv("AWS_ACCESS_KEY_ID") == "" {
			os.Setenv("AWS_ACCESS_KEY_ID", "relbot-test")
			os.Setenv("AWS_SECRET_ACCESS_KEY", "relbot-test")
		}
	})
	return "s3://" + name + "/artifacts?endpoint=" + endpoint + "&use_path_style=true&region=us-east-1"
}
