/* Append-only journal of the supply ledger (docs/theory.md §3): one checksummed
 * record per closed slot, and one run record with the ledger's configuration
 * each time a ledger opens the file.
 *
 * On disk every record is a frame, all integers little-endian:
 *   u32 magic "ERGJ" | u16 type | u16 payload length | payload | u32 CRC32
 * where the CRC32 (IEEE) covers type, length and payload.
 *
 * What a reader makes of the bytes:
 * - valid: the checksum matches and every field is possible;
 * - torn: the file ends inside its last frame (a prefix of a frame, or,
 *   after a whole record, fewer bytes than the smallest record), which is
 *   what a kill -9 or a power cut in the middle of a write leaves. Ignored when reading, and the
 *   only thing journal_open ever cuts;
 * - damaged: everything else that is not valid: frames that fail their
 *   checksum, unreadable stretches (skipped by scanning for the next valid
 *   frame), records whose checksum matches but whose fields are impossible
 *   (NaN, infinite or negative lengths and energies). Reported with their
 *   offsets, never trusted, never cut. */
#ifndef ERG_JOURNAL_H
#define ERG_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "supply.h"

#define JOURNAL_VERSION 1
#define JOURNAL_PATH_MAX 255		/* longest trace path kept in a run record */
#define JOURNAL_SLOT_PAYLOAD 72
#define JOURNAL_RUN_PAYLOAD_MIN 66
#define JOURNAL_FRAME_OVERHEAD 12
#define JOURNAL_MAX_FRAME (JOURNAL_FRAME_OVERHEAD + JOURNAL_RUN_PAYLOAD_MIN + JOURNAL_PATH_MAX)
#define JOURNAL_MIN_FRAME (JOURNAL_FRAME_OVERHEAD + JOURNAL_RUN_PAYLOAD_MIN)

enum journal_supply_kind { JOURNAL_SUPPLY_CONSTANT = 0, JOURNAL_SUPPLY_TRACE = 1 };
enum journal_record_type { JOURNAL_RUN = 1, JOURNAL_SLOT = 2 };

/* Written when a ledger opens the journal: the configuration its slots obey. */
struct journal_run {
	uint64_t first_slot;		/* index of the run's first slot */
	int64_t start_unix_ns;		/* wall clock when the run began */
	double slot_s;			/* slot length, seconds */
	double capacity_j;		/* storage capacity C, joules (0 = none) */
	double storage_j;		/* storage level at the start of the run */
	double supply_watts;		/* constant supply, or the trace's mean */
	uint64_t dropped_tail_bytes;	/* torn tail cut when this run reopened the file */
	uint32_t supply_kind;		/* enum journal_supply_kind */
	char trace_path[JOURNAL_PATH_MAX + 1];	/* "" for a constant supply */
};

/* One closed slot. out.storage is S' (after); storage_before is S. */
struct journal_slot {
	uint64_t index;			/* counts on across runs of one journal */
	double t_start_s;		/* seconds since the start of its run */
	double duration_s;
	double storage_before;
	struct slot_outcome out;	/* D, b, A, W, S' in joules */
};

struct journal_record {
	enum journal_record_type type;
	uint64_t offset;		/* where the frame starts in the file */
	union {
		struct journal_run run;
		struct journal_slot slot;
	};
};

#define JOURNAL_MAX_BAD 8
/* What a scan of the file found. */
struct journal_scan {
	uint64_t file_bytes;
	uint64_t good_end;		/* end of the last whole record (valid or impossible) */
	uint64_t runs, slots;		/* valid records */
	uint64_t corrupt_regions;	/* unreadable stretches followed by valid records */
	uint64_t corrupt_bytes;
	uint64_t corrupt_at[JOURNAL_MAX_BAD];	/* offsets of the first few */
	uint64_t bad_frames;		/* frame headers in unreadable bytes: damaged records */
	uint64_t bad_frame_at[JOURNAL_MAX_BAD];
	uint64_t invalid_records;	/* checksum valid, fields impossible */
	uint64_t invalid_at[JOURNAL_MAX_BAD];
	uint64_t tail_bytes;		/* unreadable bytes after the last whole record */
	bool torn_tail;			/* the tail is a torn last record */
	uint64_t missing_slots;		/* gaps in the slot indexes */
	uint64_t unordered_slots;	/* slot indexes that went backwards */
	uint64_t last_slot;		/* index of the last valid slot (if slots > 0) */
};

/* Whether the scan found damage (anything but a torn last record). */
bool journal_damaged(const struct journal_scan *scan);
/* One line describing the damage ("3 damaged records at offsets 834 918
 * 1002 (252 unreadable bytes at the end, from offset 834); ..."), or "" if
 * none. snprintf semantics. */
int journal_describe_damage(const struct journal_scan *scan, char *buf, size_t len);

/* Called for each valid record in file order; a nonzero return stops the
 * scan and is returned by journal_read / makes journal_open fail. */
typedef int (*journal_visit_fn)(void *ctx, const struct journal_record *rec);

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320). Start with crc = 0. */
uint32_t journal_crc32(uint32_t crc, const void *data, size_t len);

/* Encode one record as a frame into buf (at least JOURNAL_MAX_FRAME bytes).
 * Returns the frame length. */
size_t journal_encode(const struct journal_record *rec, uint8_t *buf);

/* Read a journal without changing it. visit may be NULL. Returns 0 (damage,
 * if any, is described in *scan), -1 when the file cannot be read or holds
 * no erg journal (message in err), or the visitor's nonzero return. */
int journal_read(const char *path, journal_visit_fn visit, void *ctx,
		 struct journal_scan *scan, char *err, size_t errlen);

struct journal;

/* Open (creating it if missing) for appending: takes an exclusive lock,
 * replays the existing records through visit, and cuts a torn last record
 * (nothing else, ever). Refuses a file that is not a regular file, not an
 * erg journal, or that ends in unreadable bytes that are not a torn record
 * (damaged records at the end: the message says how to keep the valid
 * part). Damage followed by valid records stays where it is and is reported
 * in *scan. fsync_each: journal_sync() calls fdatasync. */
struct journal *journal_open(const char *path, bool fsync_each,
			     journal_visit_fn visit, void *ctx,
			     struct journal_scan *scan, char *err, size_t errlen);
/* Append one record with a single write. 0 or -1 with a message in err. */
int journal_append(struct journal *j, const struct journal_record *rec, char *err, size_t errlen);
/* Make what was appended durable (fdatasync) when fsync_each was set. */
int journal_sync(struct journal *j, char *err, size_t errlen);
/* Sync and close. 0 or -1 (with the message in err when err is not NULL). */
int journal_close(struct journal *j, char *err, size_t errlen);

#endif
