//go:build !unix

package hooks

import "os/exec"

func setProcessGroup(cmd *exec.Cmd) {}
