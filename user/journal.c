/* Append-only, checksummed journal of ledger slots (format in journal.h). */
#include "journal.h"
#include "errbuf.h"
#include "textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t MAGIC[4] = { 'E', 'R', 'G', 'J' };

/* CRC-32 one nibble at a time: a 16-entry table of the reflected
 * polynomial 0xEDB88320, fast enough for records of a hundred bytes. */
static const uint32_t crc_nibble[16] = {
	0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};

uint32_t journal_crc32(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
		crc = (crc >> 4) ^ crc_nibble[crc & 15];
	}
	return ~crc;
}

/* Little-endian fields, so a journal reads the same on any machine. */
static void put_u16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = v >> (8 * i);
}
static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = v >> (8 * i);
}
static void put_f64(uint8_t *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	put_u64(p, v);
}
static uint16_t get_u16(const uint8_t *p) { return p[0] | (uint16_t)p[1] << 8; }
static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static double get_f64(const uint8_t *p)
{
	uint64_t v = get_u64(p);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

size_t journal_encode(const struct journal_record *rec, uint8_t *buf)
{
	uint8_t *p = buf + 8;
	size_t len;

	if (rec->type == JOURNAL_SLOT) {
		const struct journal_slot *s = &rec->slot;

		put_u64(p, s->index);
		put_f64(p + 8, s->t_start_s);
		put_f64(p + 16, s->duration_s);
		put_f64(p + 24, s->storage_before);
		put_f64(p + 32, s->out.demand);
		put_f64(p + 40, s->out.supply);
		put_f64(p + 48, s->out.aux);
		put_f64(p + 56, s->out.waste);
		put_f64(p + 64, s->out.storage);
		len = JOURNAL_SLOT_PAYLOAD;
	} else {
		const struct journal_run *r = &rec->run;
		size_t plen = strnlen(r->trace_path, JOURNAL_PATH_MAX);

		put_u32(p, JOURNAL_VERSION);
		put_u32(p + 4, r->supply_kind);
		put_u64(p + 8, r->first_slot);
		put_u64(p + 16, (uint64_t)r->start_unix_ns);
		put_f64(p + 24, r->slot_s);
		put_f64(p + 32, r->capacity_j);
		put_f64(p + 40, r->storage_j);
		put_f64(p + 48, r->supply_watts);
		put_u64(p + 56, r->dropped_tail_bytes);
		put_u16(p + 64, plen);
		memcpy(p + 66, r->trace_path, plen);
		len = JOURNAL_RUN_PAYLOAD_MIN + plen;
	}
	memcpy(buf, MAGIC, 4);
	put_u16(buf + 4, rec->type);
	put_u16(buf + 6, len);
	put_u32(buf + 8 + len, journal_crc32(0, buf + 4, 4 + len));
	return JOURNAL_FRAME_OVERHEAD + len;
}

enum frame_status { FRAME_OK, FRAME_SHORT, FRAME_BAD, FRAME_VERSION, FRAME_INVALID };

/* Type and length of a frame header a writer could have produced. */
static bool header_plausible(uint16_t type, uint16_t len)
{
	return (type == JOURNAL_SLOT && len == JOURNAL_SLOT_PAYLOAD) ||
	       (type == JOURNAL_RUN && len >= JOURNAL_RUN_PAYLOAD_MIN &&
		len <= JOURNAL_RUN_PAYLOAD_MIN + JOURNAL_PATH_MAX);
}

static bool finite_nonneg(double v) { return isfinite(v) && v >= 0; }

/* Fields no ledger writes: a record with them is damage even when its
 * checksum matches (docs/theory.md §3's identity is checked by the ledger). */
static bool slot_possible(const struct journal_slot *s)
{
	const struct slot_outcome *o = &s->out;

	return finite_nonneg(s->t_start_s) && finite_nonneg(s->duration_s) && s->duration_s > 0 &&
	       finite_nonneg(s->storage_before) && finite_nonneg(o->demand) &&
	       finite_nonneg(o->supply) && finite_nonneg(o->aux) && finite_nonneg(o->waste) &&
	       finite_nonneg(o->storage);
}

static bool run_possible(const struct journal_run *r)
{
	return (r->supply_kind == JOURNAL_SUPPLY_CONSTANT) == !r->trace_path[0] &&
	       r->supply_kind <= JOURNAL_SUPPLY_TRACE && finite_nonneg(r->slot_s) && r->slot_s > 0 &&
	       finite_nonneg(r->capacity_j) && finite_nonneg(r->storage_j) &&
	       r->storage_j <= r->capacity_j && finite_nonneg(r->supply_watts) &&
	       r->dropped_tail_bytes < JOURNAL_MAX_FRAME;
}

/* Decode the frame at p (avail bytes readable). FRAME_SHORT: the bytes are a
 * valid-looking prefix that the file ends in the middle of. FRAME_INVALID:
 * a whole frame (*flen set) whose checksum matches but whose fields are
 * impossible. */
static enum frame_status decode(const uint8_t *p, size_t avail, struct journal_record *rec,
				size_t *flen, uint32_t *version)
{
	uint16_t type, len;
	const uint8_t *q = p + 8;

	if (memcmp(p, MAGIC, avail < 4 ? avail : 4))
		return FRAME_BAD;
	if (avail < 8)
		return FRAME_SHORT;
	type = get_u16(p + 4);
	len = get_u16(p + 6);
	if (!header_plausible(type, len))
		return FRAME_BAD;
	if (avail < (size_t)JOURNAL_FRAME_OVERHEAD + len)
		return FRAME_SHORT;
	if (get_u32(q + len) != journal_crc32(0, p + 4, 4 + len))
		return FRAME_BAD;
	*flen = JOURNAL_FRAME_OVERHEAD + len;
	memset(rec, 0, sizeof(*rec));
	rec->type = type;
	if (type == JOURNAL_SLOT) {
		struct journal_slot *s = &rec->slot;

		s->index = get_u64(q);
		s->t_start_s = get_f64(q + 8);
		s->duration_s = get_f64(q + 16);
		s->storage_before = get_f64(q + 24);
		s->out.demand = get_f64(q + 32);
		s->out.supply = get_f64(q + 40);
		s->out.aux = get_f64(q + 48);
		s->out.waste = get_f64(q + 56);
		s->out.storage = get_f64(q + 64);
		return slot_possible(s) ? FRAME_OK : FRAME_INVALID;
	}
	struct journal_run *r = &rec->run;
	uint16_t plen = get_u16(q + 64);

	*version = get_u32(q);
	if (*version != JOURNAL_VERSION)
		return FRAME_VERSION;
	if (plen != len - JOURNAL_RUN_PAYLOAD_MIN || memchr(q + 66, 0, plen))
		return FRAME_BAD;
	r->supply_kind = get_u32(q + 4);
	r->first_slot = get_u64(q + 8);
	r->start_unix_ns = (int64_t)get_u64(q + 16);
	r->slot_s = get_f64(q + 24);
	r->capacity_j = get_f64(q + 32);
	r->storage_j = get_f64(q + 40);
	r->supply_watts = get_f64(q + 48);
	r->dropped_tail_bytes = get_u64(q + 56);
	memcpy(r->trace_path, q + 66, plen);
	r->trace_path[plen] = '\0';
	return run_possible(r) ? FRAME_OK : FRAME_INVALID;
}

/* A window over the file, so a journal of any size is scanned in bounded
 * memory and a frame never straddles the window. */
struct reader {
	int fd;
	uint8_t *buf;
	size_t cap;
	uint64_t base;
	size_t len;
	uint64_t size;
};

static int reader_get(struct reader *r, uint64_t off, const uint8_t **p, size_t *got)
{
	uint64_t want = r->size - off;

	if (want > JOURNAL_MAX_FRAME)
		want = JOURNAL_MAX_FRAME;
	if (off < r->base || off + want > r->base + r->len) {
		r->base = off;
		r->len = 0;
		while (r->len < r->cap && r->base + r->len < r->size) {
			ssize_t n = pread(r->fd, r->buf + r->len, r->cap - r->len, r->base + r->len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -1;
			if (n == 0) {		/* shrank under us: scan what is there */
				r->size = r->base + r->len;
				break;
			}
			r->len += n;
		}
		if (off + want > r->base + r->len)
			want = r->base + r->len - off;
	}
	*p = r->buf + (off - r->base);
	*got = want;
	return 0;
}

static void note_offset(uint64_t *count, uint64_t *at, uint64_t off)
{
	if (*count < JOURNAL_MAX_BAD)
		at[*count] = off;
	(*count)++;
}

static void note_valid(struct journal_scan *scan, const struct journal_record *rec, bool *have_last)
{
	if (rec->type == JOURNAL_RUN) {
		scan->runs++;
		return;
	}
	scan->slots++;
	if (*have_last && rec->slot.index > scan->last_slot + 1)
		scan->missing_slots += rec->slot.index - scan->last_slot - 1;
	else if (*have_last && rec->slot.index <= scan->last_slot)
		scan->unordered_slots++;
	scan->last_slot = rec->slot.index;
	*have_last = true;
}

/* From an unreadable byte at off, the offset of the next whole frame (valid
 * or impossible: its checksum matched, so the resync is not fooled by a
 * stray "ERGJ" in a payload), or r->size. Frame headers met on the way are
 * damaged records. */
static int resync(struct reader *r, uint64_t off, struct journal_scan *scan, uint64_t *next)
{
	for (uint64_t at = off; at < r->size; at++) {
		struct journal_record rec;
		const uint8_t *p;
		size_t got, flen = 0;
		uint32_t version = 0;
		enum frame_status fs;

		if (reader_get(r, at, &p, &got) < 0)
			return -1;
		if (p[0] != MAGIC[0] || at == off)
			continue;
		fs = decode(p, got, &rec, &flen, &version);
		if (fs == FRAME_OK || fs == FRAME_INVALID) {
			*next = at;
			return 0;
		}
		if (got >= 8 && !memcmp(p, MAGIC, 4) && header_plausible(get_u16(p + 4), get_u16(p + 6)))
			note_offset(&scan->bad_frames, scan->bad_frame_at, at);
	}
	*next = r->size;
	return 0;
}

/* Torn: the file ends inside a frame a writer had begun (a prefix of a
 * frame), or holds fewer bytes after a whole record than the smallest
 * record (a power cut's zeros in the last block). Anything longer that is
 * not a frame prefix is damage, and so is a short file with no record that
 * does not begin like one. */
static bool tail_is_torn(struct reader *r, uint64_t off, uint64_t tail)
{
	struct journal_record rec;
	const uint8_t *p;
	size_t got, flen = 0;
	uint32_t version = 0;

	if (tail < JOURNAL_MIN_FRAME && off > 0)
		return true;
	if (reader_get(r, off, &p, &got) < 0)
		return false;
	return decode(p, got, &rec, &flen, &version) == FRAME_SHORT;
}

/* Walk every frame; see journal_read and the header. */
static int scan_fd(int fd, const char *path, journal_visit_fn visit, void *ctx,
		   struct journal_scan *scan, char *err, size_t errlen)
{
	struct reader r = { .fd = fd, .cap = 1 << 20 };
	char q[TEXTFILE_QUOTED_MAX];
	struct stat st;
	uint64_t off = 0, next;
	bool have_last = false;
	int rc = 0;

	memset(scan, 0, sizeof(*scan));
	textfile_quote(path, q);
	if (fstat(fd, &st) < 0) {
		errbuf_set(err, errlen, "journal '%s': %s", q, strerror(errno));
		return -1;
	}
	r.size = st.st_size;
	scan->file_bytes = r.size;
	r.buf = malloc(r.cap);
	if (!r.buf) {
		errbuf_set(err, errlen, "journal '%s': out of memory", q);
		return -1;
	}
	while (off < r.size) {
		struct journal_record rec;
		const uint8_t *p;
		size_t got, flen = 0;
		uint32_t version = 0;
		enum frame_status fs;

		if (reader_get(&r, off, &p, &got) < 0)
			goto ioerr;
		fs = decode(p, got, &rec, &flen, &version);
		if (fs == FRAME_VERSION) {
			errbuf_set(err, errlen, "journal '%s': written as format version %u, this erg reads version %d; use a newer erg",
			           q, version, JOURNAL_VERSION);
			rc = -1;
			goto out;
		}
		if (fs == FRAME_OK || fs == FRAME_INVALID) {
			rec.offset = off;
			if (fs == FRAME_INVALID)
				note_offset(&scan->invalid_records, scan->invalid_at, off);
			else
				note_valid(scan, &rec, &have_last);
			off += flen;
			scan->good_end = off;
			if (fs == FRAME_OK && visit && (rc = visit(ctx, &rec)) != 0)
				goto out;
			continue;
		}
		/* Unreadable here. A frame header at off is a damaged record,
		 * unless what follows turns out to be a torn last record. */
		uint64_t frames_before = scan->bad_frames;
		bool head = got >= 8 && !memcmp(p, MAGIC, 4) && header_plausible(get_u16(p + 4), get_u16(p + 6));

		if (head)
			note_offset(&scan->bad_frames, scan->bad_frame_at, off);
		if (resync(&r, off, scan, &next) < 0)
			goto ioerr;
		if (next < r.size) {
			note_offset(&scan->corrupt_regions, scan->corrupt_at, off);
			scan->corrupt_bytes += next - off;
			off = next;
			continue;
		}
		scan->tail_bytes = r.size - off;
		scan->torn_tail = tail_is_torn(&r, off, scan->tail_bytes);
		if (scan->torn_tail)
			scan->bad_frames = frames_before;
		break;
	}
	if (scan->runs + scan->slots + scan->invalid_records == 0 && r.size > 0 && !scan->torn_tail) {
		errbuf_set(err, errlen, "'%s' is not an erg journal (no valid record in its %llu bytes); pass a journal written with --journal",
		           q, (unsigned long long)r.size);
		rc = -1;
	}
out:
	free(r.buf);
	return rc;
ioerr:
	errbuf_set(err, errlen, "journal '%s': read failed: %s", q, strerror(errno));
	free(r.buf);
	return -1;
}

bool journal_damaged(const struct journal_scan *scan)
{
	return scan->corrupt_regions || scan->invalid_records || scan->missing_slots ||
	       scan->unordered_slots || (scan->tail_bytes && !scan->torn_tail);
}

static size_t add(char *buf, size_t len, size_t n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static size_t add(char *buf, size_t len, size_t n, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(n < len ? buf + n : NULL, n < len ? len - n : 0, fmt, ap);
	va_end(ap);
	return n + (k > 0 ? (size_t)k : 0);
}

static size_t add_offsets(char *buf, size_t len, size_t n, uint64_t count, const uint64_t *at)
{
	n = add(buf, len, n, " at offset%s", count > 1 ? "s" : "");
	for (uint64_t i = 0; i < count && i < JOURNAL_MAX_BAD; i++)
		n = add(buf, len, n, " %llu", (unsigned long long)at[i]);
	if (count > JOURNAL_MAX_BAD)
		n = add(buf, len, n, " ...");
	return n;
}

int journal_describe_damage(const struct journal_scan *scan, char *buf, size_t len)
{
	const char *sep = "";
	size_t n = 0;

	if (len)
		buf[0] = '\0';
	if (scan->bad_frames) {
		n = add(buf, len, n, "%llu damaged record(s) (checksum fails)", (unsigned long long)scan->bad_frames);
		n = add_offsets(buf, len, n, scan->bad_frames, scan->bad_frame_at);
		sep = "; ";
	}
	if (scan->corrupt_regions) {
		n = add(buf, len, n, "%s%llu unreadable stretch(es), %llu bytes, followed by valid records,",
			sep, (unsigned long long)scan->corrupt_regions, (unsigned long long)scan->corrupt_bytes);
		n = add_offsets(buf, len, n, scan->corrupt_regions, scan->corrupt_at);
		sep = "; ";
	}
	if (scan->tail_bytes && !scan->torn_tail) {
		n = add(buf, len, n, "%s%llu unreadable bytes at the end, from offset %llu, not a torn write",
			sep, (unsigned long long)scan->tail_bytes, (unsigned long long)scan->good_end);
		sep = "; ";
	}
	if (scan->invalid_records) {
		n = add(buf, len, n, "%s%llu record(s) with impossible values (NaN, infinite or negative) though their checksum matches,",
			sep, (unsigned long long)scan->invalid_records);
		n = add_offsets(buf, len, n, scan->invalid_records, scan->invalid_at);
		sep = "; ";
	}
	if (scan->missing_slots) {
		n = add(buf, len, n, "%s%llu slot(s) missing", sep, (unsigned long long)scan->missing_slots);
		sep = "; ";
	}
	if (scan->unordered_slots)
		n = add(buf, len, n, "%s%llu slot index(es) out of order", sep, (unsigned long long)scan->unordered_slots);
	return (int)n;
}

int journal_read(const char *path, journal_visit_fn visit, void *ctx,
		 struct journal_scan *scan, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc;

	memset(scan, 0, sizeof(*scan));
	fd = textfile_open(path, "journal", O_RDONLY, &st, err, errlen);
	if (fd < 0)
		return -1;
	rc = scan_fd(fd, path, visit, ctx, scan, err, errlen);
	close(fd);
	return rc;
}

struct journal {
	int fd;
	bool fsync_each;
	bool dirty;
	char *path;
};

/* A new file's directory entry must be durable too, or a crash could lose
 * the whole journal. */
static void sync_parent_dir(const char *path)
{
	char *copy = strdup(path);
	int dfd;

	if (!copy)
		return;
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(copy);
}

/* Like mkdir -p for the directory that will hold path: missing directories
 * are made mode 0700, since a journal is the operator's record and nobody
 * else's to read (the README's /var/lib/erg/ledger needs /var/lib/erg).
 * Directories that exist are left as they are. */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
	char q[TEXTFILE_QUOTED_MAX], *dir, *copy = strdup(path);
	size_t i, len;
	int rc = 0;

	if (!copy) {
		errbuf_set(err, errlen, "journal: out of memory");
		return -1;
	}
	dir = dirname(copy);
	len = strlen(dir);
	/* Walk the prefixes "/a", "/a/b", ... and make each one missing. */
	for (i = 1; i <= len && rc == 0; i++) {
		if (i < len && dir[i] != '/')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			errbuf_set(err, errlen,
			           "cannot create journal directory '%s': %s; create it with 'mkdir -p -m 0700 %s' "
			           "as a user who may, or choose another path for --journal",
			           textfile_quote(dir, q), strerror(errno), q);
			rc = -1;
		}
		if (i < len)
			dir[i] = '/';
	}
	free(copy);
	return rc;
}

/* Open or create path for appending, a regular file only. */
static int open_for_append(const char *path, bool *created, char *err, size_t errlen)
{
	char q[TEXTFILE_QUOTED_MAX];
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		if (make_parent_dirs(path, err, errlen) < 0)
			return -1;
		fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	*created = fd >= 0;
	if (fd >= 0 || errno != EEXIST) {
		if (fd < 0)
			errbuf_set(err, errlen, "cannot create journal '%s': %s; choose a writable path for --journal",
				   textfile_quote(path, q), strerror(errno));
		return fd;
	}
	fd = textfile_open(path, "journal", O_RDWR | O_APPEND, &st, err, errlen);
	if (fd >= 0) {
		int fl = fcntl(fd, F_GETFL);

		if (fl >= 0)
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
	return fd;
}

struct journal *journal_open(const char *path, bool fsync_each,
			     journal_visit_fn visit, void *ctx,
			     struct journal_scan *scan, char *err, size_t errlen)
{
	char q[TEXTFILE_QUOTED_MAX], damage[400];
	struct journal *j;
	bool created;
	int fd;

	memset(scan, 0, sizeof(*scan));
	textfile_quote(path, q);
	fd = open_for_append(path, &created, err, errlen);
	if (fd < 0)
		return NULL;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		errbuf_set(err, errlen, errno == EWOULDBLOCK
		           ? "journal '%s' is in use by another erg process; one writer per journal, choose another --journal file"
		           : "cannot lock journal '%s': %s", q, strerror(errno));
		goto fail;
	}
	if (scan_fd(fd, path, visit, ctx, scan, err, errlen) != 0)
		goto fail;
	if (scan->tail_bytes && !scan->torn_tail) {
		/* Damaged records at the end: cutting them could hide a fault and
		 * lose slots; appending after them would bury them. The user
		 * decides, with the valid history untouched. */
		journal_describe_damage(scan, damage, sizeof(damage));
		errbuf_set(err, errlen,
		           "journal '%s' ends in damage: %s; not appending, nothing was changed. "
		           "See 'erg ledger %s'; then move it aside and start a new journal, or keep its valid part with "
		           "'truncate -s %llu %s'",
		           q, damage, q, (unsigned long long)scan->good_end, q);
		goto fail;
	}
	if (scan->torn_tail) {
		/* Only the torn last record goes; every whole record stays. */
		if (ftruncate(fd, scan->good_end) < 0 || fdatasync(fd) < 0) {
			errbuf_set(err, errlen, "journal '%s': cannot cut the torn last record: %s", q, strerror(errno));
			goto fail;
		}
	}
	if (created)
		sync_parent_dir(path);
	j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(path))) {
		free(j);
		errbuf_set(err, errlen, "journal '%s': out of memory", q);
		goto fail;
	}
	j->fd = fd;
	j->fsync_each = fsync_each;
	return j;
fail:
	/* A file created here stays (empty): removing it could race with
	 * another writer that opened it meanwhile. */
	close(fd);
	return NULL;
}

int journal_append(struct journal *j, const struct journal_record *rec, char *err, size_t errlen)
{
	uint8_t buf[JOURNAL_MAX_FRAME];
	size_t len = journal_encode(rec, buf), done = 0;

	/* One write per frame: a kill leaves at most this frame torn. */
	while (done < len) {
		ssize_t n = write(j->fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			char q[TEXTFILE_QUOTED_MAX];

			errbuf_set(err, errlen, "journal '%s': write failed: %s", textfile_quote(j->path, q),
			           n < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		done += n;
	}
	j->dirty = true;
	return 0;
}

int journal_sync(struct journal *j, char *err, size_t errlen)
{
	if (!j->fsync_each || !j->dirty)
		return 0;
	if (fdatasync(j->fd) < 0) {
		char q[TEXTFILE_QUOTED_MAX];

		errbuf_set(err, errlen, "journal '%s': fsync failed: %s", textfile_quote(j->path, q), strerror(errno));
		return -1;
	}
	j->dirty = false;
	return 0;
}

int journal_close(struct journal *j, char *err, size_t errlen)
{
	char q[TEXTFILE_QUOTED_MAX];
	int rc = 0;

	if (!j)
		return 0;
	textfile_quote(j->path, q);
	if (j->dirty && fdatasync(j->fd) < 0) {
		errbuf_set(err, errlen, "journal '%s': fsync failed: %s", q, strerror(errno));
		rc = -1;
	}
	if (close(j->fd) < 0 && rc == 0) {
		errbuf_set(err, errlen, "journal '%s': close failed: %s", q, strerror(errno));
		rc = -1;
	}
	free(j->path);
	free(j);
	return rc;
}
