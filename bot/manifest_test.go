package bot

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goccy/go-yaml"
)

// The Slack app manifests ask for the scopes the code uses and no more,
// subscribe to the one event it handles, and show the Home tab it
// publishes.
func TestManifestsAskForWhatTheCodeUses(t *testing.T) {
	// Each scope and the Web API calls (or feature) that need it.
	used := map[string]string{
		"commands":          "the /relbot slash command",
		"chat:write":        "chat.postMessage, chat.update, chat.postEphemeral",
		"chat:write.public": "posting in an app's channel the bot was not invited to",
		"im:write":          "conversations.open for direct messages",
		"usergroups:read":   "usergroups.list and usergroups.users.list for roles naming groups",
	}
	for _, name := range []string{"slack-app-manifest.yaml", "slack-app-manifest.socket-mode.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "deploy", name))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Features struct {
				AppHome struct {
					HomeTab bool `yaml:"home_tab_enabled"`
				} `yaml:"app_home"`
			} `yaml:"features"`
			OAuth struct {
				Scopes struct {
					Bot []string `yaml:"bot"`
				} `yaml:"scopes"`
			} `yaml:"oauth_config"`
			Settings struct {
				Events struct {
					Bot []string `yaml:"bot_events"`
				} `yaml:"event_subscriptions"`
			} `yaml:"settings"`
		}
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, s := range m.OAuth.Scopes.Bot {
			if _, ok := used[s]; !ok {
				t.Errorf("%s asks for %s, which no code uses", name, s)
			}
		}
		for s, why := range used {
			if !slices.Contains(m.OAuth.Scopes.Bot, s) {
				t.Errorf("%s lacks %s (%s)", name, s, why)
			}
		}
		if !slices.Equal(m.Settings.Events.Bot, []string{"app_home_opened"}) || !m.Features.AppHome.HomeTab {
			t.Errorf("%s: events %v, home tab %v; want app_home_opened and the Home tab", name, m.Settings.Events.Bot, m.Features.AppHome.HomeTab)
		}
	}
}
