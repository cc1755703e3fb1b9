package cli

import (
	"io"
	"time"

	"github.com/workerpool/workerpool/dispatch"
	"github.com/workerpool/workerpool/pipeline"
	"github.com/workerpool/workerpool/remote"
)

// executor gives cfg what runs its tasks, as the command line asks: a
// Local executor on this machine and, with hosts, a remote.Cluster that
// runs the tasks of ":" on it; for a dry run, the resolver of the Local
// executor, or none with hosts, which find commands on their own PATH.
// stderr receives the tasks' stderr in inherit mode. The returned release
// closes what it made, the cluster first.
func (c *cli) executor(cfg *pipeline.Config, stderr io.Writer) (release func(), err error) {
	local, err := dispatch.NewLocal(dispatch.LocalOptions{ProcessOptions: c.process(stderr), EndOrphans: true})
	if err != nil {
		return nil, err
	}
	release = func() { local.Close() }
	switch {
	case cfg.DryRun:
		if !c.remote() {
			cfg.Resolve = local.Resolve
		}
		return release, nil
	case !c.remote():
		cfg.Executor = local
		return release, nil
	}
	cluster, err := remote.New(remote.Options{
		Logins: c.SSHLogin, LoginFile: c.LoginFile, SSH: c.SSH, RemotePath: c.RemotePath, Push: c.Push,
		Here: local, ProcessOptions: c.process(stderr), Heartbeat: time.Duration(c.Heartbeat), Log: cfg.Log,
	})
	if err != nil {
		local.Close()
		return nil, err
	}
	cfg.Executor, cfg.Workers = cluster, cluster.Capacity()
	return func() { cluster.Close(); local.Close() }, nil
}
