package bot

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/relbot/relbot/release"
)

// Handler routes relbot's HTTP endpoints.
func (b *Bot) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/slack/commands", b.timed("command", b.signed(b.serveCommand)))
	mux.Handle("/slack/interactions", b.timed("interaction", b.signed(b.serveInteraction)))
	mux.Handle("/slack/events", b.timed("event", b.signed(b.serveEvent)))
	if b.cfg.Metrics != nil {
		mux.Handle("/metrics", b.cfg.Metrics)
	}
	if b.cfg.Pages != nil {
		for _, prefix := range []string{"/releases/", "/apps/", "/backups/", "/migrations/", "/style.css"} {
			mux.Handle(prefix, b.cfg.Pages)
		}
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		b.mu.RLock()
		draining := b.draining
		b.mu.RUnlock()
		if draining {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "shutting down\n")
			return
		}
		if err := b.SocketModeReady(); err != nil {
			b.log.Warn("readiness: " + err.Error())
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, err.Error()+"\n")
			return
		}
		if b.cfg.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			if err := b.cfg.Ready(ctx); err != nil {
				b.log.Warn("readiness: "+release.ErrorMessage(err), "err", err)
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, release.ErrorMessage(err)+"\n")
				return
			}
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}

// timed reports how long a Slack delivery took to be answered: Slack
// gives up after 3 s.
func (b *Bot) timed(kind string, next http.Handler) http.Handler {
	if b.cfg.ObserveAck == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		b.cfg.ObserveAck(kind, time.Since(start))
	})
}

// signed reads the raw body and checks Slack's signature over it (v0
// HMAC-SHA256, five-minute window, constant-time compare) before anything
// else happens; a missing, wrong or stale signature gets 401. A request
// without fresh signature headers is refused before its body is read (but
// for Slack's small unsigned certificate probe), and a body must arrive
// within BodyTimeout.
func (b *Bot) signed(next func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		sv, err := slack.NewSecretsVerifier(r.Header, b.cfg.SigningSecret)
		hasSig := err == nil && b.cfg.SigningSecret != ""
		if !hasSig {
			probe := r.URL.Path == "/slack/commands" && r.ContentLength > 0 && r.ContentLength <= maxProbe
			if !probe {
				w.Header().Set("Connection", "close") // the unread body is not drained
				http.Error(w, "invalid signature", http.StatusUnauthorized)
				return
			}
		}
		body, err := b.readBody(w, r)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
				return
			}
			b.log.Info("slack request body not read", "path", r.URL.Path, "err", err)
			http.Error(w, "cannot read the request", http.StatusBadRequest)
			return
		}
		if !hasSig || !verified(&sv, body) {
			if r.URL.Path == "/slack/commands" && isSSLCheck(body) {
				// Slack's certificate probe of a slash command URL: it
				// needs a 200 and nothing happens.
				w.WriteHeader(http.StatusOK)
				return
			}
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		next(w, r, body)
	})
}

// isSSLCheck reports whether body is the form Slack posts to check a slash
// command URL's certificate: ssl_check=1 and no command.
func isSSLCheck(body []byte) bool {
	form, err := url.ParseQuery(string(body))
	return err == nil && form.Get("ssl_check") == "1" && form.Get("command") == ""
}

// maxProbe bounds the unsigned body read for Slack's certificate probe
// ("ssl_check=1&token=..."): anything larger is refused unread.
const maxProbe = 512

// readBody reads the whole body within BodyTimeout, at most maxBody bytes.
func (b *Bot) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(b.cfg.BodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, err
	}
	// The server sets the next request's deadlines itself.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		w.Header().Set("Connection", "close") // what is left of the body is not waited for
	}
	return body, err
}

// verified reports whether body matches the signature sv was made from.
func verified(sv *slack.SecretsVerifier, body []byte) bool {
	if _, err := sv.Write(body); err != nil {
		return false
	}
	return sv.Ensure() == nil
}

// first reports whether a delivery is new. A dedupe store that fails lets
// the delivery through (logged): the domain's own checks (one approval per
// person, one open release per environment) still hold.
func (b *Bot) first(ctx context.Context, key string) bool {
	if b.cfg.Dedupe == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ok, err := b.cfg.Dedupe.First(ctx, key, b.cfg.DedupeTTL)
	if err != nil {
		b.log.Warn("dedupe unavailable: handling the delivery", "err", err)
		return true
	}
	if !ok {
		b.log.Info("duplicate slack delivery ignored", "key", key)
	}
	return ok
}

// seen reports whether a delivery was taken before, without recording it.
// A dedupe store that fails says no: the delivery is then refused like any
// while the queue is full, and Slack retries it.
func (b *Bot) seen(ctx context.Context, key string) bool {
	if b.cfg.Dedupe == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ok, err := b.cfg.Dedupe.Seen(ctx, key)
	if err != nil {
		b.log.Warn("dedupe unavailable: a delivery while the queue is full is refused", "err", err)
		return false
	}
	if ok {
		b.log.Info("duplicate slack delivery ignored while the queue is full", "key", key)
	}
	return ok
}

func (b *Bot) serveCommand(w http.ResponseWriter, r *http.Request, body []byte) {
	sc, err := DecodeCommand(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !b.acceptCommand(r.Context(), commandKey(sc, r.Header.Get("X-Slack-Request-Timestamp")), sc) {
		writeJSON(w, map[string]string{"response_type": "ephemeral", "text": "relbot is busy or restarting: try again in a minute."})
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (b *Bot) serveInteraction(w http.ResponseWriter, r *http.Request, body []byte) {
	ic, err := DecodeInteraction(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !b.acceptInteraction(r.Context(), interactionKey(ic), ic) {
		http.Error(w, "relbot is busy or restarting", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (b *Bot) serveEvent(w http.ResponseWriter, r *http.Request, body []byte) {
	e, err := DecodeEvent(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if v, ok := e.Data.(*slackevents.EventsAPIURLVerificationEvent); ok && e.Type == slackevents.URLVerification {
		writeJSON(w, map[string]string{"challenge": v.Challenge})
		return
	}
	if id := eventID(e); id != "" && !b.first(r.Context(), "evt:"+id) {
		w.WriteHeader(http.StatusOK)
		return
	}
	b.acceptEvent(r.Context(), e)
	w.WriteHeader(http.StatusOK)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
