package dispatch

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary be the trampoline that starts tasks with
// limits (LimitsArg), as the workerpool program is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == LimitsArg {
		fmt.Fprintln(os.Stderr, ExecLimited(os.Args[2:]))
		os.Exit(126)
	}
	os.Exit(m.Run())
}
