/* Two processes bounce one byte over a pair of pipes N times: the cost of a
 * context switch plus a pipe read and write, for the overhead benchmark
 * (tests/bench/overhead.sh runs it pinned to one CPU, alone and under erg
 * top). No socket is involved, so socket hooks should cost it nothing.
 *
 *   pingpong_pipe N     prints "round_trips=N seconds=S per_s=R" */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	int there[2], back[2], status;
	char c = 'x';
	double t0, dt;
	pid_t child;

	if (n <= 0) {
		fprintf(stderr, "usage: pingpong_pipe ROUND_TRIPS (a whole number above 0)\n");
		return 2;
	}
	if (pipe(there) || pipe(back)) {
		perror("pingpong_pipe: pipe");
		return 1;
	}
	child = fork();
	if (child < 0) {
		perror("pingpong_pipe: fork");
		return 1;
	}
	if (child == 0) {
		for (long i = 0; i < n; i++)
			if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	t0 = now_s();
	for (long i = 0; i < n; i++)
		if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1) {
			fprintf(stderr, "pingpong_pipe: the other side went away\n");
			return 1;
		}
	dt = now_s() - t0;
	waitpid(child, &status, 0);
	printf("round_trips=%ld seconds=%.6f per_s=%.1f\n", n, dt, (double)n / dt);
	return 0;
}
