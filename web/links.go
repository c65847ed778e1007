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

// Link is the signed address of path (such as /releases/crm-r5), open for
// the signer's TTL.
func (s *Signer) Link(path string) string { return s.linkUntil(path, s.Now().Add(s.TTL).Unix()) }

// linkUntil is the address of path open until exp (Unix seconds): links on
// a page expire with the page's own, so following them never extends a
// reader's access.
func (s *Signer) linkUntil(path string, exp int64) string {
	u := *s.Base
	// path is escaped (its names went through url.PathEscape): signed and
	// sent as such, which is what the request's EscapedPath gives back.
	u.RawPath = strings.TrimRight(u.EscapedPath(), "/") + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = url.Values{"exp": {strconv.FormatInt(exp, 10)}, "sig": {s.mac(path, exp)}}.Encode()
	return u.String()
}

// The pages and files served, by path.
func releasePath(id string) string    { return "/releases/" + url.PathEscape(id) }
func releaseLogPath(id string) string { return releasePath(id) + "/log" }
func releaseSQLPath(id string) string { return releasePath(id) + "/sql" }
func appPath(app string) string       { return "/apps/" + url.PathEscape(app) }
func backupsPath(app, env string) string {
	return appPath(app) + "/" + url.PathEscape(env) + "/backups"
}
func backupFilePath(id string) string    { return "/backups/" + url.PathEscape(id) + "/file" }
func migrationFilePath(id string) string { return "/migrations/" + url.PathEscape(id) + "/file" }

// ReleaseLink is the signed address of a release's page.
func (s *Signer) ReleaseLink(id string) string { return s.Link(releasePath(id)) }

// AppLink is the signed address of an app's page.
func (s *Signer) AppLink(app string) string { return s.Link(appPath(app)) }

// BackupsLink is the signed address of the list of an environment's backups.
func (s *Signer) BackupsLink(app, env string) string { return s.Link(backupsPath(app, env)) }

// BackupFileLink is the signed address that downloads a backup's archive,
// as stored (encrypted ones encrypted). Only backup download hands it out.
func (s *Signer) BackupFileLink(id string) string { return s.Link(backupFilePath(id)) }

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
