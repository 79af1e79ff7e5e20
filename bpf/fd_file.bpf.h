/* SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause */
/* The struct file behind a file descriptor of the current task: a CO-RE walk
 * of its fd table, for programs that must know what kind of file a syscall
 * names (a socket, a GPU device node). */
#ifndef ERG_FD_FILE_BPF_H
#define ERG_FD_FILE_BPF_H

#define S_IFMT   00170000
#define S_IFSOCK 0140000
#define S_IFCHR  0020000

/* NULL when fd is negative, past the table or not open. */
static __always_inline struct file *current_fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **table;
	struct file *file = NULL;

	if (fd < 0)
		return NULL;
	if ((unsigned int)fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return NULL;
	table = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &table[fd]))
		return NULL;
	return file;
}

/* The file's type bits (S_IFMT of its inode's mode); 0 for no file. */
static __always_inline unsigned int fd_file_type(int fd)
{
	struct file *file = current_fd_file(fd);

	return file ? BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT : 0;
}

#endif
