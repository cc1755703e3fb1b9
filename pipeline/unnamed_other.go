//go:build !linux

package pipeline

import "os"

// createUnnamed creates a temporary file in dir, which place renames to
// its target. Elsewhere than on Linux the file has a name from the start,
// so a pool killed outright leaves it behind.
func createUnnamed(dir string) (*os.File, *placement, error) {
	return createNamed(dir)
}
