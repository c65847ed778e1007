//go:build unix

package hooks

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the hook in its own process group and makes
// cancellation kill the whole group, so a timed-out hook's children die too.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
