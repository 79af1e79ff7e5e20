/* N idle processes for the own-cost benchmark (tests/bench/own_cost.sh):
 * forks N children that sleep in pause() and prints "ready N" once all are
 * forked, then waits. On SIGTERM, SIGINT or SIGHUP it kills and reaps them
 * all; each child also gets SIGKILL when the parent dies (PR_SET_PDEATHSIG),
 * so nothing is left behind even if the parent is killed outright. The
 * children keep the parent's name (comm), which erg top --comm matches.
 *
 *   idle_procs N      (1 <= N <= 100000) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

/* Kill and reap every child forked so far. */
static void end_children(const pid_t *kids, long n)
{
	for (long i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (long i = 0; i < n; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_stop };
	pid_t parent = getpid(), *kids;
	sigset_t block, old;
	char *end;
	long n;

	if (argc != 2 || (n = strtol(argv[1], &end, 10)) < 1 || *end || n > 100000) {
		fprintf(stderr, "usage: idle_procs N   (N idle children, 1 to 100000; SIGTERM ends them all)\n");
		return 2;
	}
	kids = calloc((size_t)n, sizeof(*kids));
	if (!kids) {
		fprintf(stderr, "idle_procs: out of memory for %ld children\n", n);
		return 1;
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* the stop signals wait until every child is known, so none is missed */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			fprintf(stderr, "idle_procs: fork %ld of %ld failed (%s); raise the limit with ulimit -u\n",
				i + 1, n, strerror(errno));
			end_children(kids, i);
			return 1;
		}
		if (pid == 0) {
			signal(SIGTERM, SIG_DFL);
			signal(SIGINT, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			sigprocmask(SIG_SETMASK, &old, NULL);
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)	/* the parent died before the prctl */
				_exit(0);
			for (;;)
				pause();
		}
		kids[i] = pid;
	}
	printf("ready %ld\n", n);
	fflush(stdout);
	sigprocmask(SIG_SETMASK, &old, NULL);
	while (!stop)
		pause();
	end_children(kids, n);
	free(kids);
	return 0;
}
