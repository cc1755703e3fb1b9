//go:build !unix

package pipeline

import "io"

// watchReader does nothing where a pipe's far end cannot be polled: a
// reader that goes away is noticed at the next write.
func watchReader(io.Writer, func()) (stop func()) { return func() {} }
