/* The untrusted-file reader (user/textfile.h): lines (LF, CRLF, no final
 * newline), INI lines of any length with exact line numbers, libinih's
 * settings restored, kinds of special files, caps. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>
#include "textfile.h"

static char dir[] = "/tmp/erg-test-textfile-XXXXXX";

static const char *write_bytes(const char *name, const char *data, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_lines(void **state)
{
	struct textfile tf;
	char err[512];
	const char *text = "a\r\n\nlast";
	(void)state;

	assert_int_equal(textfile_load(&tf, write_bytes("l.txt", text, strlen(text)), "test", 100,
				       err, sizeof(err)), 0);
	assert_string_equal(textfile_next_line(&tf), "a");
	assert_int_equal(tf.lineno, 1);
	assert_string_equal(textfile_next_line(&tf), "");
	assert_string_equal(textfile_next_line(&tf), "last");
	assert_int_equal(tf.lineno, 3);
	assert_null(textfile_next_line(&tf));
	textfile_free(&tf);

	/* the cap: exactly max_bytes is fine, one more is not */
	assert_int_equal(textfile_load(&tf, write_bytes("c.txt", "12345", 5), "test", 5, err, sizeof(err)), 0);
	textfile_free(&tf);
	assert_int_equal(textfile_load(&tf, write_bytes("c.txt", "123456", 6), "test", 5, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than 5 bytes"));
	assert_int_equal(textfile_load(&tf, write_bytes("n.txt", "x\ny\0z\n", 6), "test", 100, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "n.txt:2: a NUL byte"));
}

struct seen {
	int n;
	int lines[8];
	size_t lens[8];
	int *lineno;
};

static int record(void *user, const char *section, const char *name, const char *value)
{
	struct seen *s = user;

	(void)section;
	(void)name;
	if (s->n < 8) {
		s->lines[s->n] = *s->lineno;
		s->lens[s->n] = strlen(value);
	}
	s->n++;
	return 1;
}

static void test_ini_long_lines(void **state)
{
	static char text[70000];
	struct textfile tf;
	struct seen s = { 0 };
	char err[512];
	int lineno, max_before = ini_max_line, n = 0;
	(void)state;

	n += sprintf(text + n, ";");
	memset(text + n, 'c', 300);
	n += 300;
	n += sprintf(text + n, "\n[s]\na = ");
	memset(text + n, 'v', 65000);
	n += 65000;
	n += sprintf(text + n, "\r\nb = 2\n\n; x\nc = 3");
	assert_int_equal(textfile_load(&tf, write_bytes("i.ini", text, n), "test", 1 << 20, err, sizeof(err)), 0);
	s.lineno = &lineno;
	assert_int_equal(textfile_ini_parse(&tf, record, &s, &lineno), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.lines[0], 3);
	assert_int_equal(s.lens[0], 65000);
	assert_int_equal(s.lines[1], 4);
	assert_int_equal(s.lines[2], 7);
	/* libinih's settings are the process's: left as they were */
	assert_int_equal(ini_max_line, max_before);
	textfile_free(&tf);

	/* the first line inih cannot parse, counted after a long line */
	n = sprintf(text, ";%0500d\n[s]\n\nnot a pair\n", 0);
	assert_int_equal(textfile_load(&tf, write_bytes("e.ini", text, n), "test", 1 << 20, err, sizeof(err)), 0);
	memset(&s, 0, sizeof(s));
	s.lineno = &lineno;
	assert_int_equal(textfile_ini_parse(&tf, record, &s, &lineno), 4);
	textfile_free(&tf);
}

static void test_kinds(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	char err[512];
	int fd;
	(void)state;

	assert_string_equal(textfile_kind(S_IFIFO), "a FIFO");
	assert_string_equal(textfile_kind(S_IFBLK), "a block device");
	assert_int_equal(textfile_open("", "test", O_RDONLY, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(textfile_open("/dev/null", "test", O_RDONLY, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'/dev/null' is a character device, not a regular file"));

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", dir);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(textfile_open(sa.sun_path, "test", O_RDONLY, &st, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a socket") ? err : strstr(err, "cannot open"));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_ini_long_lines),
		cmocka_unit_test(test_kinds),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
