/* Two processes bounce a small message over one loopback TCP connection N
 * times (TCP_NODELAY): socket sends and receives that erg top's socket hooks
 * see, for the overhead benchmark (tests/bench/overhead.sh runs it pinned to
 * one CPU, alone and under erg top with requests on).
 *
 *   pingpong_tcp N   prints "round_trips=N seconds=S per_s=R cpu_s=C per_cpu_s=P":
 * wall-clock throughput, and round trips per CPU second of both processes
 * (user + system, BPF programs run in the system part), which a busy
 * machine's other load does not change. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG "POST /v1/ping HTTP/1.1\r\n\r\n"

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

/* Read exactly len bytes; 0, or -1 when the peer went away. */
static int read_all(int fd, char *buf, size_t len)
{
	while (len) {
		ssize_t r = read(fd, buf, len);

		if (r <= 0)
			return -1;
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	char buf[sizeof(MSG) - 1];
	int lfd, fd, status;
	double t0, dt, c0, dc;
	pid_t child;

	if (n <= 0) {
		fprintf(stderr, "usage: pingpong_tcp ROUND_TRIPS (a whole number above 0)\n");
		return 2;
	}
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen)) {
		perror("pingpong_tcp: listen on 127.0.0.1");
		return 1;
	}
	child = fork();
	if (child < 0) {
		perror("pingpong_tcp: fork");
		return 1;
	}
	if (child == 0) {	/* the server: answer each message */
		int c = accept(lfd, NULL, NULL);

		if (c < 0)
			_exit(1);
		nodelay(c);
		for (long i = 0; i < n; i++)
			if (read_all(c, buf, sizeof(buf)) || write(c, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
				_exit(1);
		_exit(0);
	}
	close(lfd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("pingpong_tcp: connect");
		return 1;
	}
	nodelay(fd);
	memcpy(buf, MSG, sizeof(buf));
	c0 = cpu_s();
	t0 = now_s();
	for (long i = 0; i < n; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || read_all(fd, buf, sizeof(buf))) {
			fprintf(stderr, "pingpong_tcp: the other side went away\n");
			return 1;
		}
	dt = now_s() - t0;
	close(fd);
	waitpid(child, &status, 0);
	dc = cpu_s() - c0;	/* the child's too, now it was waited for */
	printf("round_trips=%ld seconds=%.6f per_s=%.1f cpu_s=%.6f per_cpu_s=%.1f\n", n, dt, (double)n / dt, dc,
	       dc > 0 ? (double)n / dc : 0.0);
	return 0;
}
