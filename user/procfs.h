/* Small readers of /proc/PID files. root is the procfs mount ("/proc" when
 * NULL), configurable for tests. */
#ifndef ERG_PROCFS_H
#define ERG_PROCFS_H

#include <stdbool.h>
#include <stddef.h>

bool procfs_exists(const char *root, int pid);
/* /proc/PID/comm without the newline; -1 if the process is gone. */
int procfs_comm(const char *root, int pid, char *buf, size_t len);
/* Parent pid from /proc/PID/stat; -1 if gone. */
int procfs_ppid(const char *root, int pid);
/* State letter ('R', 'S', 'Z', ...) and parent pid from one read of
 * /proc/PID/stat; -1 if gone. */
int procfs_state_ppid(const char *root, int pid, char *state, int *ppid);
/* utime + stime of /proc/PID/stat in seconds; < 0 if gone. */
double procfs_cpu_seconds(const char *root, int pid);
/* Calls fn for every process (not thread) in /proc. Stops early and
 * returns fn's value when it is non-zero. */
int procfs_for_each_pid(const char *root, int (*fn)(int pid, void *arg), void *arg);

#endif
