package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
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
	cluster, err := c.cluster(local, stderr, cfg.Log)
	if err != nil {
		local.Close()
		return nil, err
	}
	cfg.Executor, cfg.Workers = cluster, cluster.Capacity()
	return func() { cluster.Close(); local.Close() }, nil
}

// cluster returns the cluster of the hosts of -S and --sshloginfile,
// reached through --ssh, which runs the tasks of ":" on here; or with
// --slurm, of the nodes of the allocation, reached through srun.
func (c *cli) cluster(here *dispatch.Local, stderr io.Writer, log *slog.Logger) (*remote.Cluster, error) {
	if c.Slurm {
		return c.slurmCluster(here, stderr, log)
	}
	hosts, err := remote.StaticHosts(c.SSHLogin)
	if err != nil {
		return nil, err
	}
	if c.LoginFile != "" {
		file, err := remote.LoginFile(c.LoginFile)
		if err != nil {
			return nil, err
		}
		hosts = remote.JoinHosts(hosts, file)
	}
	ssh, err := remote.NewOpenSSH(c.SSH)
	if err != nil {
		return nil, err
	}
	return remote.New(remote.Options{
		Hosts: hosts, Transport: ssh, RemotePath: c.RemotePath, Push: c.Push,
		Here: here, ProcessOptions: c.process(stderr), Heartbeat: time.Duration(c.Heartbeat), Log: log,
	})
}

// slurmCluster returns the cluster of the nodes of the Slurm allocation
// the program runs in. The agent is this very program by default, by its
// absolute path: the nodes of a cluster share their file systems.
func (c *cli) slurmCluster(here *dispatch.Local, stderr io.Writer, log *slog.Logger) (*remote.Cluster, error) {
	job, err := remote.SlurmJobFromEnv(os.Getenv, remote.ScontrolHostnames)
	if err != nil {
		return nil, fmt.Errorf("--slurm: %w", err)
	}
	agent := c.RemotePath
	if agent == "" {
		if agent, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("--slurm: cannot find this program to run it on the nodes: %w", err)
		}
	}
	return remote.New(remote.Options{
		Hosts: job.Hosts(0), Transport: remote.NewSrun(job.ID), RemotePath: agent,
		Here: here, ProcessOptions: c.process(stderr), Heartbeat: time.Duration(c.Heartbeat), Log: log,
	})
}
