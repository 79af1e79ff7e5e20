/* /proc readers used to find and check targets. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "procfs.h"

static const char *root_or_default(const char *root)
{
	return root ? root : "/proc";
}

static int read_small(const char *root, int pid, const char *file, char *buf, size_t len)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%d/%s", root_or_default(root), pid, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n ? 0 : -1;
}

bool procfs_exists(const char *root, int pid)
{
	char buf[64];

	/* A zombie still has /proc/PID but nothing to measure: stat says 'Z'. */
	if (read_small(root, pid, "stat", buf, sizeof(buf)) < 0)
		return false;
	const char *rp = strrchr(buf, ')');
	return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

int procfs_comm(const char *root, int pid, char *buf, size_t len)
{
	if (read_small(root, pid, "comm", buf, len) < 0)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Fields after the ")" that ends comm (comm may contain spaces and ')'). */
static char *stat_fields(const char *root, int pid, char *buf, size_t len)
{
	char *rp;

	if (read_small(root, pid, "stat", buf, len) < 0)
		return NULL;
	rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp + 2 : NULL;
}

int procfs_state_ppid(const char *root, int pid, char *state, int *ppid)
{
	char buf[1024];
	char *f = stat_fields(root, pid, buf, sizeof(buf));

	if (!f || sscanf(f, "%c %d", state, ppid) != 2)
		return -1;
	return 0;
}

int procfs_ppid(const char *root, int pid)
{
	char state;
	int ppid;

	return procfs_state_ppid(root, pid, &state, &ppid) ? -1 : ppid;
}

double procfs_cpu_seconds(const char *root, int pid)
{
	char buf[1024];
	char *f = stat_fields(root, pid, buf, sizeof(buf));
	unsigned long long utime, stime;
	long hz = sysconf(_SC_CLK_TCK);

	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (!f || sscanf(f, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &utime, &stime) != 2)
		return -1.0;
	return (double)(utime + stime) / (double)(hz > 0 ? hz : 100);
}

int procfs_for_each_pid(const char *root, int (*fn)(int pid, void *arg), void *arg)
{
	DIR *dir = opendir(root_or_default(root));
	struct dirent *de;
	int rc = 0;

	if (!dir)
		return -1;
	while (!rc && (de = readdir(dir))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		rc = fn(atoi(de->d_name), arg);
	}
	closedir(dir);
	return rc;
}
