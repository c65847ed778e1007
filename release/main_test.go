package release

import (
	"testing"

	"github.com/relbot/relbot/internal/testenv"
)

// TestMain waits for the tests' databases to be dropped (testenv).
func TestMain(m *testing.M) { testenv.Main(m) }
