/* Two processes bounce one byte over a pair of pipes N times: the cost of a
 * context switch plus a pipe read and write, for the overhead benchmark
 * (tests/bench/overhead.sh runs it pinned to one CPU, alone and under erg
 * top). No socket is involved, so socket hooks should cost it nothing.
 *
 *   pingpong_pipe N   prints "round_trips=N seconds=S per_s=R cpu_s=C per_cpu_s=P":
 * wall-clock throughput, and round trips per CPU second of both processes
 * (user + system, BPF programs run in the system part), which a busy
 * machine's other load does not change. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* CPU seconds of this process and its waited-for children. */
static double cpu_s(void)
{
	struct rusage self, kids;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	return tv_s(self.ru_utime) + tv_s(self.ru_stime) + tv_s(kids.ru_utime) + tv_s(kids.ru_stime);
}

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
	double t0, dt, c0, dc;
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
	c0 = cpu_s();
	t0 = now_s();
	for (long i = 0; i < n; i++)
		if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1) {
			fprintf(stderr, "pingpong_pipe: the other side went away\n");
			return 1;
		}
	dt = now_s() - t0;
	waitpid(child, &status, 0);
	dc = cpu_s() - c0;	/* the child's too, now it was waited for */
	printf("round_trips=%ld seconds=%.6f per_s=%.1f cpu_s=%.6f per_cpu_s=%.1f\n", n, dt, (double)n / dt, dc,
	       dc > 0 ? (double)n / dc : 0.0);
	return 0;
}
