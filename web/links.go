// Package web serves relbot's pages: one per release, readable without
// JavaScript and without a Slack sign-in. Access is by link: each link
// carries an expiry and an HMAC-SHA256 signature over its path and expiry,
// made with a key derived from RELBOT_SECRET_KEY, so a link posted in a
// channel opens for its readers until it expires and cannot be altered to
// open another page.
package web

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultLinkTTL is how long a link opens its page.
const DefaultLinkTTL = 24 * time.Hour

// Signer makes and checks links.
type Signer struct {
	key  []byte
	Base *url.URL // RELBOT_PUBLIC_URL: the address users reach
	TTL  time.Duration
	Now  func() time.Time
}

// NewSigner derives the links' key from relbot's secret key; nil when
// either the key or the public address is missing (then no page is linked).
func NewSigner(secretKey []byte, publicURL string, ttl time.Duration) (*Signer, error) {
	if len(secretKey) == 0 || publicURL == "" {
		return nil, nil
	}
	base, err := url.Parse(strings.TrimRight(publicURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("must be an http or https address such as https://relbot.example.com")
	}
	key, err := hkdf.Key(sha256.New, secretKey, nil, "relbot page links", 32)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultLinkTTL
	}
	return &Signer{key: key, Base: base, TTL: ttl, Now: time.Now}, nil
}

func (s *Signer) mac(path string, exp int64) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(path + "\n" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// Link is the signed address of path (such as /releases/crm-r5).
func (s *Signer) Link(path string) string {
	exp := s.Now().Add(s.TTL).Unix()
	u := *s.Base
	u.Path = strings.TrimRight(u.Path, "/") + path
	u.RawQuery = url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {s.mac(path, exp)}}.Encode()
	return u.String()
}

// ReleaseLink is the signed address of a release's page.
func (s *Signer) ReleaseLink(id string) string { return s.Link("/releases/" + url.PathEscape(id)) }

// Why a link is refused.
var (
	ErrUnsigned = errors.New("this link has no signature: open the page from relbot's message, or ask relbot for a new link")
	ErrBadSig   = errors.New("this link's signature does not match: it was changed, or made by another relbot")
	ErrExpired  = errors.New("this link has expired: open the page again from relbot's message in Slack (release show gives the link too)")
)

// Check accepts a request's path and query when signed and not expired.
func (s *Signer) Check(path string, q url.Values) error {
	exp, sig := q.Get("exp"), q.Get("sig")
	if exp == "" || sig == "" {
		return ErrUnsigned
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !hmac.Equal([]byte(sig), []byte(s.mac(path, n))) {
		return ErrBadSig
	}
	if s.Now().Unix() > n {
		return ErrExpired
	}
	return nil
}
