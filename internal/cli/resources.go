package cli

import (
	"fmt"
	"runtime"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/internal/sysstat"
	"github.com/workerpool/workerpool/job"
)

// localSlots is the slots of this machine: -j's, or one per CPU for -j 0.
func (c *cli) localSlots() int {
	if c.MaxThreads == 0 {
		return runtime.NumCPU()
	}
	return int(c.MaxThreads)
}

// memoryCapacity is the memory the tasks run here may reserve at once:
// --mem-capacity's, or else the memory available now; 0, no bound, where
// the platform cannot tell.
func (c *cli) memoryCapacity() int64 {
	if c.MemCapacity > 0 {
		return int64(c.MemCapacity)
	}
	m, _ := sysstat.ReadMemory("")
	return m.Available
}

// fit is where a task's request could run, for --dry-run: on this
// machine, whose room is known, or, with hosts, on a host with that much
// room, which only the hosts can tell.
func (c *cli) fit(memory int64) func(job.Request) (string, error) {
	slots := c.localSlots()
	return func(need job.Request) (string, error) {
		need.CPUs = max(need.CPUs, 1)
		if c.remote() {
			return "a host with " + need.String() + " free", nil
		}
		if err := dispatch.FitsHere(need, slots, memory); err != nil {
			return "", err
		}
		where := fmt.Sprintf("this machine: %d of %d slots", need.CPUs, slots)
		if memory > 0 && need.Memory > 0 {
			where += fmt.Sprintf(", %s of %s of memory", job.FormatSize(need.Memory), job.FormatSize(memory))
		}
		return where, nil
	}
}
