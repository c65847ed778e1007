// Package httpspec is the "METHOD URL" form in which apps.yaml states an
// http hook (release/hooks) or an http check (release/checks), and how such
// a URL is shown in messages. The two engines share it here rather than
// import each other (internal/deprule).
package httpspec

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// MaxBody is how much of a response body a hook keeps and a check reads.
const MaxBody = 64 << 10

// Methods are the HTTP methods a hook or check may use.
var Methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// Parse parses "METHOD URL" strictly: exactly two words, an upper-case
// method from Methods, an absolute http or https URL with a host. Error
// messages never show the URL's userinfo or query.
func Parse(spec string) (method string, u *url.URL, err error) {
	f := strings.Fields(spec)
	if len(f) != 2 {
		return "", nil, fmt.Errorf(`http must be "METHOD URL" (e.g. "POST https://example.com/hook"), got %d words`, len(f))
	}
	method = f[0]
	if !slices.Contains(Methods, method) {
		return "", nil, fmt.Errorf("http method %q is not one of %s", method, strings.Join(Methods, ", "))
	}
	u, err = url.Parse(f[1])
	if err != nil {
		return "", nil, fmt.Errorf("http URL is malformed")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", nil, fmt.Errorf("http URL must start with http:// or https://")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", nil, fmt.Errorf("http URL %s has no host", Redact(u))
	}
	return method, u, nil
}

// Redact renders u for logs and messages: no userinfo, no fragment, query
// values replaced (names kept).
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	c.Fragment, c.RawFragment = "", ""
	if c.RawQuery != "" {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			c.RawQuery = "REDACTED"
		} else {
			for k := range q {
				q[k] = []string{"REDACTED"}
			}
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
}
