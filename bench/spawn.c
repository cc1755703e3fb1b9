/*
 * spawn is the spawn-limit baseline for `make bench`: it runs N copies of one
 * command, P at a time, and does nothing else a pool must do. Each of P
 * threads loops: posix_spawn the command with /dev/null as stdin and a pipe
 * as stdout, read the pipe (dropping the bytes) until EOF, reap the child.
 * No JSON, no stderr capture, no timeouts, no process groups: the floor for
 * "spawn, drain stdout, wait" on this machine.
 *
 * usage: spawn N P COMMAND [ARG...]     (COMMAND is a path; no PATH lookup)
 * build: gcc -O2 -pthread -o spawn spawn.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char **cmd;
static long total;
static int devnull;
static atomic_long next, failed;

/* run_one spawns the command once, drains its stdout and reaps it; it
 * returns the child's wait status, or -1 when it could not be started. */
static int run_one(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0) {
		perror("spawn: pipe");
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	pid_t pid;
	int err = posix_spawn(&pid, cmd[0], &fa, NULL, cmd, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (err != 0) {
		close(p[0]);
		fprintf(stderr, "spawn: %s: %s\n", cmd[0], strerror(err));
		return -1;
	}
	char buf[65536];
	ssize_t got;
	while ((got = read(p[0], buf, sizeof buf)) != 0)
		if (got < 0 && errno != EINTR)
			break;
	close(p[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

static void *worker(void *arg)
{
	(void)arg;
	while (atomic_fetch_add(&next, 1) < total) {
		int status = run_one();
		if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			atomic_fetch_add(&failed, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: spawn N P COMMAND [ARG...]\n");
		return 2;
	}
	total = atol(argv[1]);
	long par = atol(argv[2]);
	if (total < 0 || par < 1) {
		fprintf(stderr, "spawn: N must be 0 or more and P 1 or more\n");
		return 2;
	}
	cmd = argv + 3;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0) {
		perror("spawn: /dev/null");
		return 1;
	}
	pthread_t *threads = calloc(par, sizeof *threads);
	for (long i = 0; i < par; i++)
		if ((errno = pthread_create(&threads[i], NULL, worker, NULL)) != 0) {
			perror("spawn: pthread_create");
			return 1;
		}
	for (long i = 0; i < par; i++)
		pthread_join(threads[i], NULL);
	if (failed) {
		fprintf(stderr, "spawn: %ld of %ld children failed\n", (long)failed, total);
		return 1;
	}
	return 0;
}
