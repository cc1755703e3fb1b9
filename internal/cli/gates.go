package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/internal/sysstat"
	"github.com/workerpool/workerpool/job"
)

// validateGates checks --memfree, --load, --delay and --rate. Run here,
// --memfree must be less than the machine's memory, and --load needs a
// system that keeps a load average; with hosts, each host checks its own
// as it runs tasks.
func (c *cli) validateGates() error {
	switch {
	case c.Load < 0 || math.IsNaN(c.Load) || math.IsInf(c.Load, 0):
		return fmt.Errorf("--load must be a load average, 0 (none) or more, not %v", c.Load)
	case c.Agent || c.remote() || c.DryRun:
		return nil
	}
	if c.MemFree > 0 {
		m, err := sysstat.ReadMemory(c.MemInfo)
		if err != nil {
			return fmt.Errorf("--memfree: %w", err)
		}
		if int64(c.MemFree) > m.Total {
			return fmt.Errorf("--memfree is %s, more than the memory of this machine, %s: no task would ever start", job.FormatSize(int64(c.MemFree)), job.FormatSize(m.Total))
		}
	}
	if c.Load > 0 {
		if _, err := sysstat.ReadLoad(c.LoadAvg); err != nil {
			return fmt.Errorf("--load: %w", err)
		}
	}
	return nil
}

// gates are the gates the command line asks for, all of them: the pool
// keeps the Shared ones when tasks run on hosts, and each host the others.
func (c *cli) gates() dispatch.Gates {
	g := dispatch.Gates{MemFree: int64(c.MemFree), Load: c.Load, Delay: time.Duration(c.Delay), Rate: float64(c.Rate)}
	if path := c.MemInfo; path != "" {
		g.Memory = func() (sysstat.Memory, error) { return sysstat.ReadMemory(path) }
	}
	if path := c.LoadAvg; path != "" {
		g.LoadAverage = func() (float64, error) { return sysstat.ReadLoad(path) }
	}
	return g
}

// poolGates are the gates the pool keeps: all of them when tasks run
// here, the Shared ones with hosts.
func (c *cli) poolGates() dispatch.Gates {
	if c.remote() {
		return c.gates().Shared()
	}
	return c.gates()
}

// startRate is --rate: starts a second, read as N/s, N/m or N/h (N a
// number above 0, a plain N meaning N/s).
type startRate float64

func (r *startRate) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	num, unit, _ := strings.Cut(s, "/")
	per, ok := map[string]time.Duration{"": time.Second, "s": time.Second, "m": time.Minute, "h": time.Hour}[strings.TrimSpace(unit)]
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || !(n > 0) || math.IsInf(n, 0) {
		return fmt.Errorf("%q is not a rate such as 10/s or 100/m", s)
	}
	*r = startRate(n / per.Seconds())
	return nil
}
