package main

import (
	"testing"

	"github.com/relbot/relbot/internal/testenv"
)

// TestMain waits for the tests' databases to be dropped and drops the
// sample app's templates (testenv, sampleapp).
func TestMain(m *testing.M) { testenv.Main(m) }
