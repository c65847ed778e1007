package bot

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// The payload decoders take anything without panicking; what they accept
// is usable (dedupe keys, the values buttons and forms carry).
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "fixtures", "slack", "*"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add([]byte("payload=" + url.QueryEscape(string(b))))
	}
	f.Add([]byte(""))
	f.Add([]byte("payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%2C%22actions%22%3A%5Bnull%5D%7D"))
	f.Add([]byte(`{"type":"view_submission","user":{"id":"U1"},"view":{"state":{"values":{"reason":null}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if sc, err := DecodeCommand(b); err == nil {
			_ = commandKey(sc, "1")
		}
		if ic, err := DecodeInteractionJSON(b); err == nil {
			_ = interactionKey(ic)
			_ = viewValue(ic, "reason", "reason")
			for _, a := range ic.ActionCallback.BlockActions {
				if a != nil {
					_, _ = releaseID(a.Value)
				}
			}
		}
		if ic, err := DecodeInteraction(b); err == nil {
			_ = interactionKey(ic)
			_ = viewValue(ic, "value", "value")
		}
		_, _ = DecodeEvent(b)
	})
}
