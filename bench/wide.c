/*
 * wide is the spawn-time peer for `make bench-wide`: it starts N copies of one
 * command all at once and waits for them, and does nothing else a pool must
 * do. One thread posix_spawns the N children back to back (stdin and stdout
 * /dev/null, stderr inherited), notes the time when the last one has been
 * spawned, then reaps them all with waitpid(-1). No pipes, no JSON, no
 * process groups: "spawned" is the floor for starting N processes on this
 * machine, "done" for starting them and seeing them all end.
 *
 * When the system is out of processes for the moment (posix_spawn fails
 * with EAGAIN, e.g. under ulimit -u), it reaps one child (a blocking
 * waitpid(-1)) and tries again; "eagain" counts how often.
 *
 * usage: wide N COMMAND [ARG...]     (COMMAND is a path; no PATH lookup)
 * output: spawned=SECONDS done=SECONDS failed=K eagain=M   (seconds from its
 *         start; failed counts children that could not be started or did
 *         not exit 0)
 * build: gcc -O2 -Wall -o wide wide.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* reap_one waits for any child and returns 1 when it did not exit 0, 0
 * when it did, or -1 when there is no child left to wait for. */
static int reap_one(void)
{
	int status;
	while (waitpid(-1, &status, 0) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != ECHILD)
			perror("wide: waitpid");
		return -1;
	}
	return !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: wide N COMMAND [ARG...]\n");
		return 2;
	}
	char *end;
	long total = strtol(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || total < 0) {
		fprintf(stderr, "wide: N must be a number, 0 or more\n");
		return 2;
	}
	char **cmd = argv + 2;
	double start = now();

	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		perror("wide: /dev/null");
		return 1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, devnull, 1);

	long running = 0, failed = 0, eagain = 0;
	for (long i = 0; i < total; i++) {
		pid_t pid;
		int err;
		while ((err = posix_spawn(&pid, cmd[0], &fa, NULL, cmd, environ)) == EAGAIN && running > 0) {
			eagain++;
			int r = reap_one();
			if (r < 0)
				break;
			running--;
			failed += r;
		}
		if (err != 0) {
			if (failed == 0 || err != EAGAIN)
				fprintf(stderr, "wide: %s: %s\n", cmd[0], strerror(err));
			failed++;
			continue;
		}
		running++;
	}
	double spawned = now();
	posix_spawn_file_actions_destroy(&fa);

	int r;
	while (running > 0 && (r = reap_one()) >= 0) {
		running--;
		failed += r;
	}
	failed += running; /* lost: waitpid failed before they were reaped */
	double done = now();

	printf("spawned=%.3f done=%.3f failed=%ld eagain=%ld\n", spawned - start, done - start, failed, eagain);
	return failed != 0;
}
