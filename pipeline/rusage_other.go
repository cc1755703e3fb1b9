//go:build !unix

package pipeline

// maxRSS reports 0: the platform's peak memory is not read here.
func maxRSS() int64 { return 0 }
