// Package slurmtest starts a real Slurm cluster on 127.0.0.1 for tests.
//
// Start runs one munged, one slurmctld and one slurmd per node ("n1",
// "n2", ...), all on this machine, and waits until every node is idle. A
// test reaches the cluster with the Slurm clients (sinfo, salloc, srun,
// scontrol, ...) run with Env in their environment, or through Run and
// Command, which set it. Alloc takes an allocation; JobEnv gives the
// variables a process inside it would see, so that a program can be run as
// if under salloc. Keys, configuration, state, spool directories and logs
// live in a temporary directory, and every process of the cluster is
// killed when the test ends: the daemons, the slurmstepd processes and
// whatever the job steps started.
//
// The Slurm daemons run as root, each in a mount namespace of its own in
// which an empty tmpfs hides /sys/fs/cgroup: slurmd wants to see cgroup
// directories there, and the machine's own cgroups are never touched. The
// configuration needs no cgroups (proctrack/pgid, task/none). The
// namespaces also tell which processes belong to the cluster: slurmstepd
// and the tasks of every step inherit the namespace of the slurmd that
// started them.
//
// Every daemon is reached on 127.0.0.1, where each slurmd listens. srun
// and slurmstepd listen on the address the machine's host name resolves
// to, which is usually a loopback address. slurmctld listens on every
// address of the machine: Slurm 22.05 cannot be told otherwise.
//
// Start skips the test (t.Skip) when the test does not run as root or when
// a program it needs is missing: munged, slurmctld, slurmd, the clients
// sinfo, salloc, srun, sbatch, scontrol and scancel, or sh, mount and
// readlink. On Debian the Slurm programs come with the packages munge,
// slurmctld, slurmd and slurm-client. The package was written against
// Slurm 22.05.
//
// The package works on Linux only: it finds the processes of a cluster
// through /proc. On other systems it is empty.
package slurmtest
