// Package testlab holds what the test labs (internal/sshtest,
// internal/slurmtest, internal/browsertest) and the end-to-end tests
// share: the processes that /proc shows, to find and stop what a test
// started, and a temporary directory whose path a daemon's configuration
// can hold. The processes are read on Linux only.
package testlab
