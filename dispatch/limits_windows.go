package dispatch

import (
	"errors"

	"github.com/workerpool/workerpool/job"
)

var errNoLimits = errors.New("limits are not supported on Windows")

func checkLimits(job.Limits) error       { return errNoLimits }
func setLimits(job.Limits) error         { return errNoLimits }
func execProgram(string, []string) error { return errNoLimits }
