package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/kballard/go-shellquote"

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
func (c *cli) executor(ctx context.Context, cfg *pipeline.Config, stderr io.Writer) (release func(), err error) {
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
	if c.slurm() {
		cluster, done, err := c.slurmCluster(ctx, local, stderr, cfg.Log)
		if err != nil {
			local.Close()
			return nil, err
		}
		cfg.Executor, cfg.Workers = cluster, cluster.Capacity()
		return func() { cluster.Close(); done(); local.Close() }, nil
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
// reached through --ssh, which runs the tasks of ":" on here. -j sets the
// slots of each host whose login names none, as in GNU parallel.
func (c *cli) cluster(here *dispatch.Local, stderr io.Writer, log *slog.Logger) (*remote.Cluster, error) {
	slots := c.slotsPerHost()
	hosts, err := remote.StaticHosts(c.SSHLogin, slots)
	if err != nil {
		return nil, err
	}
	if c.LoginFile != "" {
		file, err := remote.LoginFile(c.LoginFile, slots)
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
		Hosts: hosts, Transport: ssh, RemotePath: c.RemotePath, Push: c.Push || c.PushClean, PushKeep: c.pushKeep(),
		Here: dispatch.Gated(here, c.gates().Host()), Gates: c.gates().Host(),
		ProcessOptions: c.process(stderr), Heartbeat: time.Duration(c.Heartbeat), Log: log,
		Cleanup: c.cleanup(),
	})
}

// slurmCluster returns the cluster of the nodes of the Slurm allocation
// the program runs in, or with --slurm-alloc of one it asks for, reached
// through srun; -j sets the slots of every node. The agent is this very
// program by default, by its absolute path, since the nodes of a cluster
// share their file systems; --push copies it to each node's /tmp. done,
// called once the cluster is closed, removes those copies and gives back
// the allocation of --slurm-alloc.
func (c *cli) slurmCluster(ctx context.Context, here *dispatch.Local, stderr io.Writer, log *slog.Logger) (cluster *remote.Cluster, done func(), err error) {
	job, done, err := c.slurmJob(ctx, log)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	agent := c.RemotePath
	if agent == "" || c.Push || c.PushClean { // --push copies this very program, as with -S
		if agent, err = os.Executable(); err != nil {
			return nil, nil, fmt.Errorf("--slurm: cannot find this program to run it on the nodes: %w", err)
		}
	}
	if c.Push || c.PushClean {
		path := fmt.Sprintf("/tmp/workerpool-%s.%d", job.ID, os.Getpid())
		if err := job.Broadcast(ctx, agent, path); err != nil {
			return nil, nil, fmt.Errorf("--push: %w", err)
		}
		agent = path
		giveBack := done
		done = func() {
			if err := job.Remove(context.Background(), path); err != nil {
				log.Warn("--push", "error", err)
			}
			giveBack()
		}
	}
	cluster, err = remote.New(remote.Options{
		Hosts: job.Hosts(c.slotsPerHost()), Transport: remote.NewSrun(job.ID), RemotePath: agent,
		Here: dispatch.Gated(here, c.gates().Host()), Gates: c.gates().Host(),
		ProcessOptions: c.process(stderr), Heartbeat: time.Duration(c.Heartbeat), Log: log,
		Cleanup: c.cleanup(),
	})
	return cluster, done, err
}

// pushKeep is how many versions --push keeps on each host: 1 with
// --push-clean, and otherwise remote's default.
func (c *cli) pushKeep() int {
	if c.PushClean {
		return 1
	}
	return remote.DefaultPushKeep
}

// slotsPerHost is the slots of a host (or node) whose login names none:
// -j's, when it is given, and otherwise 0, as many as the host has CPUs
// (which -j 0 asks for too).
func (c *cli) slotsPerHost() int {
	if c.threadsSet {
		return int(c.MaxThreads)
	}
	return 0
}

// slurmJob returns the allocation to run in: the one of --slurm-alloc,
// which done gives back, or the one the program runs in.
func (c *cli) slurmJob(ctx context.Context, log *slog.Logger) (job *remote.SlurmJob, done func(), err error) {
	if c.SlurmAlloc == "" {
		job, err := remote.SlurmJobFromEnv(os.Getenv, remote.ScontrolHostnames)
		if err != nil {
			return nil, nil, fmt.Errorf("--slurm: %w", err)
		}
		return job, func() {}, nil
	}
	args, err := shellquote.Split(string(c.SlurmAlloc))
	if err != nil {
		return nil, nil, fmt.Errorf("--slurm-alloc %q: %w", c.SlurmAlloc, err)
	}
	if job, err = remote.Allocate(ctx, args); err != nil {
		return nil, nil, fmt.Errorf("--slurm-alloc: %w", err)
	}
	log.Info("allocation granted", "job", job.ID, "nodes", job.Nodes)
	return job, func() {
		if err := job.Cancel(); err != nil {
			log.Warn("cannot give the allocation back", "job", job.ID, "error", err)
		}
	}, nil
}
