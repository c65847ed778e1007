package bot

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveReal runs the bot's HTTP server on a real listener on 127.0.0.1:0
// with short timeouts and a small connection cap; it stops at cleanup.
func serveReal(t *testing.T, maxConns int) string {
	t.Helper()
	f := newFakeSlack(t)
	svc := newFakeService()
	b := New(Config{SigningSecret: testSecret, API: f.api(), Runner: svc, Dedupe: newMemDedupe(),
		MaxConns: maxConns, HeaderTimeout: 400 * time.Millisecond, BodyTimeout: 400 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, ln, 2*time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the server did not stop")
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second)) // the test never hangs
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads until the server ends the connection and returns how
// long that took and the status line it sent, if any.
func closedWithin(t *testing.T, c net.Conn, start time.Time) (time.Duration, string) {
	t.Helper()
	_, held, status := answered(c, start)
	return held, status
}

// answered returns when the status line came, when the connection ended,
// and the status line.
func answered(c net.Conn, start time.Time) (first, closed time.Duration, status string) {
	r := bufio.NewReader(c)
	status, _ = r.ReadString('\n')
	first = time.Since(start)
	_, _ = io.Copy(io.Discard, r)
	return first, time.Since(start), strings.TrimSpace(status)
}

// A signed request whose body trickles in is cut off at BodyTimeout, not
// held; a request without Slack's signature headers is refused before its
// body is read; connections beyond MaxConns wait for a place.
func TestSlowBodiesAreCutOff(t *testing.T) {
	addr := serveReal(t, 3)

	// Signed headers, then one byte of body every 50 ms.
	trickle := dial(t, addr)
	ts := time.Now().Unix()
	body := strings.Repeat("x", 400)
	start := time.Now()
	fmt.Fprintf(trickle, "POST /slack/commands HTTP/1.1\r\nHost: relbot\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: %d\r\nX-Slack-Request-Timestamp: %d\r\nX-Slack-Signature: %s\r\n\r\n", len(body), ts, sign(testSecret, ts, []byte(body)))
	go func() {
		for i := range body {
			if _, err := trickle.Write([]byte{body[i]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	held, status := closedWithin(t, trickle, start)
	if held > 2*time.Second {
		t.Fatalf("a slow body held its connection %s (body timeout 400ms)", held)
	}
	if status != "" && !strings.Contains(status, " 400 ") {
		t.Fatalf("slow body answered %q", status)
	}

	// No signature headers: 401 at once, the announced body never sent.
	unsigned := dial(t, addr)
	start = time.Now()
	fmt.Fprintf(unsigned, "POST /slack/interactions HTTP/1.1\r\nHost: relbot\r\nContent-Length: 100000\r\n\r\n")
	if first, _, status := answered(unsigned, start); !strings.Contains(status, " 401 ") || first > 300*time.Millisecond {
		t.Fatalf("unsigned request: %q after %s, want 401 without waiting for the body", status, first)
	}
	// Stale signature headers: the same.
	stale := dial(t, addr)
	start = time.Now()
	old := time.Now().Add(-10 * time.Minute).Unix()
	fmt.Fprintf(stale, "POST /slack/commands HTTP/1.1\r\nHost: relbot\r\nContent-Length: 100000\r\nX-Slack-Request-Timestamp: %d\r\nX-Slack-Signature: v0=%s\r\n\r\n",
		old, strings.Repeat("0", 64))
	if first, _, status := answered(stale, start); !strings.Contains(status, " 401 ") || first > 300*time.Millisecond {
		t.Fatalf("stale signature: %q after %s", status, first)
	}

	// Three connections that never finish their headers take every place;
	// a fourth request is served only once the server dropped one of them.
	var slow []net.Conn
	for range 3 {
		c := dial(t, addr)
		fmt.Fprintf(c, "POST /slack/commands HTTP/1.1\r\nHost: relbot\r\n")
		slow = append(slow, c)
	}
	time.Sleep(50 * time.Millisecond) // all three accepted
	start = time.Now()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waited := time.Since(start)
	if resp.StatusCode != 200 || waited < 250*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("fourth connection: status %d after %s; want 200 once a place is free (header timeout 400ms)", resp.StatusCode, waited)
	}
	for i, c := range slow {
		if held, _ := closedWithin(t, c, start); held > 2*time.Second {
			t.Fatalf("slow header %d held %s", i, held)
		}
	}
}
