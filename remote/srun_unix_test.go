//go:build unix

package remote

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSrunOwnGroup: srun starts in a process group of its own, so that a
// terminal's ^C reaches the pool, not srun, to which one ^C only says to
// print its status.
func TestSrunOwnGroup(t *testing.T) {
	cmd := NewSrun("42").Command(context.Background(), "n1", []string{"workerpool", "--agent"})
	require.NotNil(t, cmd.SysProcAttr)
	require.True(t, cmd.SysProcAttr.Setpgid)
}
