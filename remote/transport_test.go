package remote

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unreachable is a Transport whose hosts cannot be reached: every command
// it returns fails to start, at once and without a process. It notes when
// each host was asked for, on the clock of the test (a synctest bubble's
// own, in one).
type unreachable struct {
	mu     sync.Mutex
	tries  map[string][]time.Time
	closed int
}

func (u *unreachable) Command(_ context.Context, dest string, _ []string) *exec.Cmd {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.tries == nil {
		u.tries = map[string][]time.Time{}
	}
	u.tries[dest] = append(u.tries[dest], time.Now())
	return &exec.Cmd{Path: "unreachable", Err: fmt.Errorf("%s: no route to host", dest)}
}

func (u *unreachable) Close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed++
}

// triedAt returns when dest was asked for, as times since start.
func (u *unreachable) triedAt(dest string, start time.Time) []time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	var at []time.Duration
	for _, t := range u.tries[dest] {
		at = append(at, t.Sub(start))
	}
	return at
}

// TestOpenSSHCommand: the program reaches ssh as one command line for the
// login shell, "exec" and its words quoted, after the pool's options.
func TestOpenSSHCommand(t *testing.T) {
	ssh, err := NewOpenSSH("ssh -F 'my config'")
	require.NoError(t, err)
	defer ssh.Close()
	cmd := ssh.Command(context.Background(), "user@h1", []string{"/opt/work pool/workerpool", "--agent", "--grace", "1s"})
	require.Equal(t, []string{"ssh", "-F", "my config", "-T"}, cmd.Args[:4])
	require.Equal(t, []string{"--", "user@h1", `exec '/opt/work pool/workerpool' --agent --grace 1s`}, cmd.Args[len(cmd.Args)-3:])

	cmd = ssh.Command(context.Background(), "h1", inSh(`uname -sm; echo "$HOME"`))
	require.Equal(t, `exec sh -c 'uname -sm; echo "$HOME"'`, cmd.Args[len(cmd.Args)-1])

	_, err = NewOpenSSH(`ssh "`)
	require.EqualError(t, err, `--ssh "ssh \"": not a command: Unterminated double-quoted string`)
}
