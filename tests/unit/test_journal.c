/* The ledger journal: checksums, roundtrip, torn tail, corruption in the
 * middle, damage at the end that is not a torn write, impossible values
 * under a valid checksum, append after reopen, refusal to touch what is not
 * a journal or not a regular file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal.h"

#define SLOT_FRAME (JOURNAL_FRAME_OVERHEAD + JOURNAL_SLOT_PAYLOAD)

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/erg-test-journal-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/j.erg", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct journal_record run_rec(uint64_t first, const char *trace)
{
	struct journal_record r = { .type = JOURNAL_RUN };

	r.run.first_slot = first;
	r.run.start_unix_ns = 1700000000123456789LL;
	r.run.slot_s = 1.0;
	r.run.capacity_j = 500.0;
	r.run.storage_j = 125.5;
	r.run.supply_watts = 99.75;
	r.run.supply_kind = trace ? JOURNAL_SUPPLY_TRACE : JOURNAL_SUPPLY_CONSTANT;
	if (trace)
		snprintf(r.run.trace_path, sizeof(r.run.trace_path), "%s", trace);
	return r;
}

static struct journal_record slot_rec(uint64_t i)
{
	struct journal_record r = { .type = JOURNAL_SLOT };

	r.slot.index = i;
	r.slot.t_start_s = (double)i;
	r.slot.duration_s = 1.0;
	r.slot.storage_before = 10.0 + i;
	r.slot.out.demand = 100.0 + i * 0.1;
	r.slot.out.supply = 99.75;
	r.slot.out.aux = 1.0 / (i + 3);
	r.slot.out.waste = 0.5 * i;
	r.slot.out.storage = 11.0 + i;
	return r;
}

/* Write a run record and slots first..first+n-1. */
static void write_journal(const char *path, uint64_t first, int n)
{
	struct journal_scan scan;
	char err[512] = "";
	struct journal *j = journal_open(path, true, NULL, NULL, &scan, err, sizeof(err));
	struct journal_record r = run_rec(first, NULL);

	assert_non_null(j);
	assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	for (int i = 0; i < n; i++) {
		r = slot_rec(first + i);
		assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
		assert_int_equal(journal_sync(j, err, sizeof(err)), 0);
	}
	assert_int_equal(journal_close(j, err, sizeof(err)), 0);
}

struct collected {
	int runs, slots;
	struct journal_record rec[64];
};

static int collect(void *ctx, const struct journal_record *rec)
{
	struct collected *c = ctx;

	if (rec->type == JOURNAL_RUN)
		c->runs++;
	else
		c->slots++;
	if (c->runs + c->slots <= 64)
		c->rec[c->runs + c->slots - 1] = *rec;
	return 0;
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long)st.st_size;
}

static void patch_byte(const char *path, long off, uint8_t xor)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= xor;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void append_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static char *slurp(const char *path, long *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;

	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	*len = ftell(fp);
	rewind(fp);
	buf = malloc(*len + 1);
	assert_int_equal(fread(buf, 1, *len, fp), (size_t)*len);
	fclose(fp);
	return buf;
}

static void test_crc32_known_values(void **state)
{
	(void)state;
	/* The standard check value of CRC-32/ISO-HDLC. */
	assert_int_equal(journal_crc32(0, "123456789", 9), 0xCBF43926u);
	assert_int_equal(journal_crc32(0, "", 0), 0);
	/* Incremental = one shot. */
	assert_int_equal(journal_crc32(journal_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	struct journal_scan scan;
	char err[512] = "";
	struct journal *j = journal_open(f->path, false, NULL, NULL, &scan, err, sizeof(err));
	struct journal_record r = run_rec(7, "/data/solar day.csv");

	assert_non_null(j);
	assert_int_equal(scan.runs + scan.slots, 0);
	assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	for (int i = 0; i < 10; i++) {
		r = slot_rec(7 + i);
		assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	}
	assert_int_equal(journal_close(j, err, sizeof(err)), 0);

	assert_int_equal(journal_read(f->path, collect, &c, &scan, err, sizeof(err)), 0);
	assert_int_equal(c.runs, 1);
	assert_int_equal(c.slots, 10);
	assert_int_equal(scan.corrupt_regions, 0);
	assert_int_equal(scan.tail_bytes, 0);
	assert_int_equal(scan.missing_slots, 0);
	assert_int_equal(scan.last_slot, 16);
	assert_int_equal(scan.good_end, file_size(f->path));

	struct journal_record want = run_rec(7, "/data/solar day.csv");
	const struct journal_run *got = &c.rec[0].run;
	assert_int_equal(c.rec[0].type, JOURNAL_RUN);
	assert_int_equal(got->first_slot, 7);
	assert_true(got->start_unix_ns == want.run.start_unix_ns);
	assert_true(got->capacity_j == 500.0 && got->storage_j == 125.5 && got->supply_watts == 99.75);
	assert_int_equal(got->supply_kind, JOURNAL_SUPPLY_TRACE);
	assert_string_equal(got->trace_path, "/data/solar day.csv");
	for (int i = 0; i < 10; i++) {
		struct journal_record w = slot_rec(7 + i);
		const struct journal_slot *s = &c.rec[1 + i].slot;

		assert_int_equal(c.rec[1 + i].type, JOURNAL_SLOT);
		assert_int_equal(s->index, 7 + i);
		/* Bit-exact: the journal stores the doubles, not text. */
		assert_memory_equal(&s->out, &w.slot.out, sizeof(s->out));
		assert_true(s->storage_before == w.slot.storage_before);
		assert_true(s->t_start_s == w.slot.t_start_s && s->duration_s == 1.0);
	}
}

static void test_torn_tail_dropped_on_reopen(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	struct journal_scan scan;
	char err[512] = "";
	long full, torn;

	write_journal(f->path, 0, 5);
	full = file_size(f->path);
	/* A kill in the middle of the last write: 30 bytes of the frame missing. */
	assert_int_equal(truncate(f->path, full - 30), 0);
	torn = full - 30;

	assert_int_equal(journal_read(f->path, collect, &c, &scan, err, sizeof(err)), 0);
	assert_int_equal(c.slots, 4);
	assert_true(scan.torn_tail);
	assert_int_equal(scan.tail_bytes, SLOT_FRAME - 30);
	assert_int_equal(scan.corrupt_regions, 0);
	assert_int_equal(file_size(f->path), torn);	/* reading changes nothing */

	/* Reopening cuts exactly the torn record, nothing before it. */
	long before_len;
	char *before = slurp(f->path, &before_len);
	struct journal *j = journal_open(f->path, true, NULL, NULL, &scan, err, sizeof(err));
	assert_non_null(j);
	assert_true(scan.torn_tail);
	assert_int_equal(file_size(f->path), full - SLOT_FRAME);
	struct journal_record r = slot_rec(4);
	assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	assert_int_equal(journal_close(j, err, sizeof(err)), 0);

	long after_len;
	char *after = slurp(f->path, &after_len);
	assert_int_equal(after_len, full);
	assert_memory_equal(before, after, full - SLOT_FRAME);
	free(before);
	free(after);

	memset(&c, 0, sizeof(c));
	assert_int_equal(journal_read(f->path, collect, &c, &scan, err, sizeof(err)), 0);
	assert_int_equal(c.slots, 5);
	assert_false(scan.torn_tail);
	assert_int_equal(scan.tail_bytes, 0);
	assert_int_equal(scan.missing_slots, 0);
}

static void test_zero_filled_tail(void **state)
{
	struct fixture *f = *state;
	struct journal_scan scan;
	char err[512] = "";
	uint8_t zeros[SLOT_FRAME] = { 0 };

	/* A power cut can leave the file longer with zeros in the last block:
	 * fewer than one record's bytes is a torn write. */
	write_journal(f->path, 0, 3);
	long good = file_size(f->path);
	append_bytes(f->path, zeros, 40);
	assert_int_equal(journal_read(f->path, NULL, NULL, &scan, err, sizeof(err)), 0);
	assert_int_equal(scan.slots, 3);
	assert_true(scan.torn_tail);
	assert_false(journal_damaged(&scan));
	assert_int_equal(scan.tail_bytes, 40);

	/* A whole record's worth of zeros is not a write cut short: damage. */
	assert_int_equal(truncate(f->path, good), 0);
	append_bytes(f->path, zeros, sizeof(zeros));
	assert_int_equal(journal_read(f->path, NULL, NULL, &scan, err, sizeof(err)), 0);
	assert_false(scan.torn_tail);
	assert_true(journal_damaged(&scan));
	assert_int_equal(scan.tail_bytes, SLOT_FRAME);
}

/* The fault run's case: one bit flipped in each of the last 3 slot records.
 * 252 bytes that were 3 whole records are damage, reported record by
 * record; opening for append refuses and changes nothing. */
static void test_damaged_last_records_are_not_torn(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	struct journal_scan scan;
	char err[1024] = "", text[600];
	long run_len = JOURNAL_FRAME_OVERHEAD + JOURNAL_RUN_PAYLOAD_MIN;
	long len_before, len_after;

	write_journal(f->path, 0, 10);
	for (int i = 7; i < 10; i++)
		patch_byte(f->path, run_len + i * SLOT_FRAME + 8 + 40, 0x01);
	char *before = slurp(f->path, &len_before);

	assert_int_equal(journal_read(f->path, collect, &c, &scan, err, sizeof(err)), 0);
	assert_int_equal(c.slots, 7);
	assert_false(scan.torn_tail);
	assert_true(journal_damaged(&scan));
	assert_int_equal(scan.tail_bytes, 3 * SLOT_FRAME);
	assert_int_equal(scan.good_end, run_len + 7 * SLOT_FRAME);
	assert_int_equal(scan.bad_frames, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(scan.bad_frame_at[i], run_len + (7 + i) * SLOT_FRAME);
	journal_describe_damage(&scan, text, sizeof(text));
	assert_non_null(strstr(text, "3 damaged record(s)"));
	assert_non_null(strstr(text, "666 750 834"));

	assert_null(journal_open(f->path, true, NULL, NULL, &scan, err, sizeof(err)));
	assert_non_null(strstr(err, "not a torn write"));
	assert_non_null(strstr(err, "nothing was changed"));
	char *after = slurp(f->path, &len_after);
	assert_int_equal(len_after, len_before);
	assert_memory_equal(before, after, len_before);
	free(before);
	free(after);
}

static void write_records(const char *path, struct journal_record *recs, int n)
{
	struct journal_scan scan;
	char err[512] = "";
	struct journal *j = journal_open(path, false, NULL, NULL, &scan, err, sizeof(err));

	assert_non_null(j);
	for (int i = 0; i < n; i++)
		assert_int_equal(journal_append(j, &recs[i], err, sizeof(err)), 0);
	assert_int_equal(journal_close(j, err, sizeof(err)), 0);
}

/* A matching checksum does not make NaN, infinite or negative fields
 * possible: such records are damage, skipped, with their offsets. */
static void test_impossible_values_are_damage(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	struct journal_scan scan;
	char err[512] = "";
	struct journal_record recs[6] = { run_rec(0, NULL), slot_rec(0), slot_rec(1), slot_rec(2),
					  run_rec(3, NULL), slot_rec(3) };
	long run_len = JOURNAL_FRAME_OVERHEAD + JOURNAL_RUN_PAYLOAD_MIN;

	recs[2].slot.duration_s = -1;
	recs[3].slot.out.demand = INFINITY;
	recs[4].run.slot_s = NAN;
	write_records(f->path, recs, 6);
	assert_int_equal(journal_read(f->path, collect, &c, &scan, err, sizeof(err)), 0);
	assert_int_equal(c.runs, 1);
	assert_int_equal(c.slots, 2);
	assert_int_equal(scan.invalid_records, 3);
	assert_int_equal(scan.invalid_at[0], run_len + SLOT_FRAME);
	assert_int_equal(scan.invalid_at[2], run_len + 3 * SLOT_FRAME);
	assert_true(journal_damaged(&scan));
	assert_false(scan.torn_tail);

	/* Negative slot length alone, in the only run record. */
	unlink(f->path);
	struct journal_record neg = run_rec(0, NULL);
	neg.run.slot_s = -1;
	write_records(f->path, &neg, 1);
	assert_int_equal(journal_read(f->path, NULL, NULL, &scan, err, sizeof(err)), 0);
	assert_int_equal(scan.invalid_records, 1);
	assert_true(journal_damaged(&scan));
}

/* Journals are regular files: a FIFO, a device or a directory is refused
 * at once by kind, and a FIFO with no writer does not block the reader. */
static void test_special_files_refused(void **state)
{
	struct fixture *f = *state;
	struct journal_scan scan;
	char err[512] = "";
	pid_t child;
	int status;

	assert_int_equal(journal_read("/dev/zero", NULL, NULL, &scan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a character device, not a regular file"));
	assert_int_equal(journal_read(f->dir, NULL, NULL, &scan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "a directory"));
	assert_null(journal_open(f->dir, false, NULL, NULL, &scan, err, sizeof(err)));
	assert_non_null(strstr(err, "a directory"));

	assert_int_equal(mkfifo(f->path, 0600), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		alarm(10);	/* a blocked open fails the test instead of hanging it */
		int rc = journal_read(f->path, NULL, NULL, &scan, err, sizeof(err));
		_exit(rc == -1 && strstr(err, "a FIFO") ? 0 : 1);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_null(journal_open(f->path, false, NULL, NULL, &scan, err, sizeof(err)));
	assert_non_null(strstr(err, "a FIFO"));
}

static void test_corrupt_middle_record_detected(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	struct journal_scan scan;
	char err[512] = "";
	long run_len = JOURNAL_FRAME_OVERHEAD + JOURNAL_RUN_PAYLOAD_MIN;
	long slot4 = run_len + 4 * SLOT_FRAME;

	write_journal(f->path, 0, 10);
	/* One bit of slot 4's demand flips: its CRC no longer matches. */
	patch_byte(f->path, slot4 + 8 + 32 + 3, 0x10);

	assert_int_equal(journal_read(f->path, collect, &c, &scan, err, sizeof(err)), 0);
	assert_int_equal(c.slots, 9);
	assert_int_equal(scan.corrupt_regions, 1);
	assert_int_equal(scan.corrupt_at[0], slot4);
	assert_int_equal(scan.corrupt_bytes, SLOT_FRAME);
	assert_int_equal(scan.missing_slots, 1);
	assert_int_equal(scan.tail_bytes, 0);
	/* The damaged slot is not among the trusted ones; its neighbours are. */
	for (int i = 1; i <= 9; i++)
		assert_int_not_equal(c.rec[i].slot.index, 4);
	assert_int_equal(c.rec[4].slot.index, 3);
	assert_int_equal(c.rec[5].slot.index, 5);
}

static void test_corrupt_length_field_resyncs(void **state)
{
	struct fixture *f = *state;
	struct journal_scan scan;
	char err[512] = "";
	long run_len = JOURNAL_FRAME_OVERHEAD + JOURNAL_RUN_PAYLOAD_MIN;

	write_journal(f->path, 0, 10);
	/* Break the length of slot 2 and the magic of slot 6: the reader must
	 * find its way back to the next valid frame each time. */
	patch_byte(f->path, run_len + 2 * SLOT_FRAME + 6, 0xff);
	patch_byte(f->path, run_len + 6 * SLOT_FRAME + 0, 0x01);
	assert_int_equal(journal_read(f->path, NULL, NULL, &scan, err, sizeof(err)), 0);
	assert_int_equal(scan.slots, 8);
	assert_int_equal(scan.corrupt_regions, 2);
	assert_int_equal(scan.missing_slots, 2);
	assert_int_equal(scan.last_slot, 9);

	/* Appending is still allowed: history stays as it is, damage included. */
	struct journal *j = journal_open(f->path, false, NULL, NULL, &scan, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(scan.corrupt_regions, 2);
	journal_close(j, NULL, 0);
}

static void test_append_after_reopen_keeps_history(void **state)
{
	struct fixture *f = *state;
	struct collected c = { 0 };
	struct journal_scan scan;
	char err[512] = "";
	long first_len, len;

	write_journal(f->path, 0, 3);
	char *first = slurp(f->path, &first_len);

	struct journal *j = journal_open(f->path, true, collect, &c, &scan, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(c.runs, 1);		/* the old records were replayed */
	assert_int_equal(c.slots, 3);
	assert_int_equal(scan.last_slot, 2);
	struct journal_record r = run_rec(3, NULL);
	assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	for (int i = 3; i < 5; i++) {
		r = slot_rec(i);
		assert_int_equal(journal_append(j, &r, err, sizeof(err)), 0);
	}
	assert_int_equal(journal_close(j, err, sizeof(err)), 0);

	char *all = slurp(f->path, &len);
	assert_true(len > first_len);
	assert_memory_equal(first, all, first_len);	/* never rewritten */
	free(first);
	free(all);

	memset(&c, 0, sizeof(c));
	assert_int_equal(journal_read(f->path, collect, &c, &scan, err, sizeof(err)), 0);
	assert_int_equal(c.runs, 2);
	assert_int_equal(c.slots, 5);
	assert_int_equal(scan.missing_slots, 0);
	assert_int_equal(c.rec[4].type, JOURNAL_RUN);
	assert_int_equal(c.rec[4].run.first_slot, 3);
}

static void test_refuses_non_journal_and_long_garbage(void **state)
{
	struct fixture *f = *state;
	struct journal_scan scan;
	char err[512] = "";
	const char *text = "seconds,watts\n0,100\n";
	long len;

	/* A small file that is not a journal is neither read nor cut. */
	FILE *fp = fopen(f->path, "w");
	fputs(text, fp);
	fclose(fp);
	assert_int_equal(journal_read(f->path, NULL, NULL, &scan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not an erg journal"));
	assert_null(journal_open(f->path, true, NULL, NULL, &scan, err, sizeof(err)));
	char *after = slurp(f->path, &len);
	assert_int_equal(len, (long)strlen(text));
	assert_memory_equal(after, text, len);
	free(after);
	unlink(f->path);

	/* More unreadable bytes than one record at the end: refuse to append,
	 * say how to keep the valid part. */
	uint8_t junk[2 * JOURNAL_MAX_FRAME];
	memset(junk, 0xa5, sizeof(junk));
	write_journal(f->path, 0, 2);
	long good = file_size(f->path);
	append_bytes(f->path, junk, sizeof(junk));
	assert_int_equal(journal_read(f->path, NULL, NULL, &scan, err, sizeof(err)), 0);
	assert_false(scan.torn_tail);
	assert_int_equal(scan.tail_bytes, sizeof(junk));
	assert_int_equal(scan.good_end, good);
	assert_null(journal_open(f->path, true, NULL, NULL, &scan, err, sizeof(err)));
	assert_non_null(strstr(err, "truncate -s"));
	assert_int_equal(file_size(f->path), good + (long)sizeof(junk));
}

static void test_one_writer_at_a_time(void **state)
{
	struct fixture *f = *state;
	struct journal_scan scan;
	char err[512] = "";
	struct journal *a = journal_open(f->path, false, NULL, NULL, &scan, err, sizeof(err));
	struct journal *b;

	assert_non_null(a);
	b = journal_open(f->path, false, NULL, NULL, &scan, err, sizeof(err));
	assert_null(b);
	assert_non_null(strstr(err, "in use"));
	journal_close(a, NULL, 0);
	b = journal_open(f->path, false, NULL, NULL, &scan, err, sizeof(err));
	assert_non_null(b);
	journal_close(b, NULL, 0);
}

static void test_empty_and_missing_files(void **state)
{
	struct fixture *f = *state;
	struct journal_scan scan;
	char err[512] = "";

	assert_int_equal(journal_read(f->path, NULL, NULL, &scan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, f->path));
	fclose(fopen(f->path, "w"));
	assert_int_equal(journal_read(f->path, NULL, NULL, &scan, err, sizeof(err)), 0);
	assert_int_equal(scan.slots + scan.runs, 0);
}

/* The README's --journal /var/lib/erg/ledger on a machine without
 * /var/lib/erg: the missing directories are made, private to the owner. */
static void test_missing_parent_dirs_are_made(void **state)
{
	struct fixture *f = *state;
	struct journal_scan scan;
	char err[512] = "", top[160], mid[200], path[240];
	struct journal *j;
	struct stat st;

	snprintf(top, sizeof(top), "%s/var", f->dir);
	snprintf(mid, sizeof(mid), "%s/lib", top);
	snprintf(path, sizeof(path), "%s/ledger", mid);
	j = journal_open(path, false, NULL, NULL, &scan, err, sizeof(err));
	assert_non_null(j);
	assert_int_equal(journal_close(j, NULL, 0), 0);
	assert_int_equal(stat(top, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(mid, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);
	rmdir(mid);
	rmdir(top);
}

/* A directory that cannot be made (here: under a dangling symlink) is an
 * error that names the directory and the fix, and leaves nothing behind. */
static void test_unmakeable_parent_dir_gives_the_fix(void **state)
{
	struct fixture *f = *state;
	struct journal_scan scan;
	char err[512] = "", link[160], path[240];
	struct journal *j;

	snprintf(link, sizeof(link), "%s/gone", f->dir);
	assert_int_equal(symlink("/nonexistent-erg-test-dir/sub", link), 0);
	snprintf(path, sizeof(path), "%s/erg/ledger", link);
	j = journal_open(path, false, NULL, NULL, &scan, err, sizeof(err));
	unlink(link);
	assert_null(j);
	assert_non_null(strstr(err, "cannot create journal directory"));
	assert_non_null(strstr(err, "mkdir -p -m 0700"));
	assert_non_null(strstr(err, "--journal"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_known_values),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_dropped_on_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_filled_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_last_records_are_not_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_impossible_values_are_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_special_files_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_middle_record_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_length_field_resyncs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_after_reopen_keeps_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_non_journal_and_long_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_writer_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_missing_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_parent_dirs_are_made, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unmakeable_parent_dir_gives_the_fix, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
