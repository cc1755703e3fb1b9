// Package e2e holds workerpool's end-to-end tests: they drive the real
// program the way users do, from outside, through its stdin, stdout, exit
// status and signals.
//
// TestMain builds the program once per go test run, as make build builds
// it (without cgo and without the race detector), and every test that runs
// the built program runs that binary. A test that needs another build, a
// version set with -ldflags or a build with cgo, builds its own. The
// testscript scripts under the repository's testdata/script run the test
// binary itself as the workerpool command, through the same command line
// (internal/cli).
//
// The remote tests reach real sshd instances on 127.0.0.1
// (internal/sshtest); the scripts run the examples under examples/ with
// real php and jq. Most tests need Linux: they read /proc, or use its
// limits and signals.
//
// The package has no code of its own; everything is in its tests.
package e2e
