package bot

import (
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"
)

// NewClient is the Slack Web API client every part of relbot uses. A call
// Slack answers 429 is retried by slack-go after the Retry-After Slack
// gave, up to three times, so no caller keeps a retry of its own. Only
// rate limits are retried: a post whose connection dropped may have been
// made, and posting it again would show it twice.
func NewClient(token string, opts ...slack.Option) *slack.Client {
	retry := slack.DefaultRetryConfig()
	retry.RetryAfterDuration = 30 * time.Second // used only when Slack sends no Retry-After
	// After the caller's options: the retry wraps whatever HTTP client they set.
	return slack.New(token, append(opts, slack.OptionRetryConfig(retry))...)
}

// NewUpdateLimiter paces chat.update to Slack's Tier 3 (50 calls a
// minute per workspace), with room for a short burst. One is shared by
// every message a process updates.
func NewUpdateLimiter() *rate.Limiter { return rate.NewLimiter(rate.Every(time.Minute/50), 5) }

// callTimeout bounds one Web API call, Retry-After waits included.
const callTimeout = 2 * time.Minute
