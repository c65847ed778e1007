package memory

import (
	"testing"

	"github.com/relbot/relbot/storage/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return NewStore() })
}
