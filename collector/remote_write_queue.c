/*
 * The remote-write on-disk queue; see remote_write_queue.h for the file format.
 */
#include "collector/remote_write_queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/hash.h"
#include "collector/log.h"
#include "collector/xalloc.h"

#define QUEUE_MAGIC       "TOCSRWQ1"
#define QUEUE_MAGIC_SIZE  8
#define QUEUE_RECORD_HEAD 8                    /* u32 length, u32 checksum */
#define QUEUE_RECORD_MAX  (64 * 1024)          /* payload bytes of one sample */
#define QUEUE_BUFFER_MAX  (64 * 1024)          /* buffered bytes before a write(2) */
#define QUEUE_SEGMENT_MAX (8ULL * 1024 * 1024) /* a segment is closed past this size */
#define QUEUE_CHECKPOINT  "checkpoint"

struct segment {
	uint64_t seq;
	uint64_t bytes;   /* file size, plus the buffered records for the current one */
	uint64_t samples; /* records in the file */
};

struct remote_write_queue {
	char *dir;
	uint64_t max_bytes;
	uint64_t segment_max; /* max(16 KiB, min(8 MiB, max_bytes / 8)) */
	struct segment *segs; /* by seq; the last one is open for appending */
	size_t seg_count;
	size_t seg_capacity;
	int fd;             /* of the last segment */
	unsigned char *buf; /* records not yet written */
	size_t buf_len;
	size_t buf_capacity;
	/* The acknowledged position: the next unsent record. */
	uint64_t pos_seq;
	uint64_t pos_offset;
	uint64_t pos_index; /* records of pos_seq before pos_offset */
	uint64_t total_bytes;
	uint64_t dropped_samples;
	uint64_t dropped_segments;
};

static void put_u16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t checksum(const unsigned char *p, size_t len)
{
	return (uint32_t)hash_bytes(HASH_FNV_OFFSET, p, len);
}

static char *segment_path(const struct remote_write_queue *q, uint64_t seq)
{
	return xasprintf("%s/%016" PRIx64 ".seg", q->dir, seq);
}

static int mkdir_parents(const char *dir)
{
	char *copy = xstrdup(dir);
	int rc = 0;

	for (char *p = copy + 1; rc == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST)
			rc = -1;
		*p = saved;
		if (saved == '\0')
			break;
	}
	free(copy);
	return rc;
}

/* Reads the whole file into memory; NULL when it cannot be read. */
static unsigned char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	unsigned char *data;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	data = xmalloc((size_t)st.st_size + 1);
	n = pread(fd, data, (size_t)st.st_size, 0);
	close(fd);
	if (n < 0) {
		free(data);
		return NULL;
	}
	*len = (size_t)n;
	return data;
}

/* Offset of the end of the valid records of `data`, counting them in *samples and those
 * before `stop` in *before (stop UINT64_MAX: none). */
static uint64_t scan_records(const unsigned char *data, size_t len, uint64_t stop,
			     uint64_t *samples, uint64_t *before)
{
	uint64_t off = QUEUE_MAGIC_SIZE;

	*samples = 0;
	*before = 0;
	while (off + QUEUE_RECORD_HEAD <= len) {
		uint32_t plen = get_u32(data + off);

		if (plen < 18 || plen > QUEUE_RECORD_MAX || off + QUEUE_RECORD_HEAD + plen > len ||
		    checksum(data + off + QUEUE_RECORD_HEAD, plen) != get_u32(data + off + 4))
			break;
		if (off < stop)
			(*before)++;
		(*samples)++;
		off += QUEUE_RECORD_HEAD + plen;
	}
	return off;
}

/*
 * Loads one segment found at open: checks its magic, cuts a torn tail, and counts its
 * records. Empty or unreadable segments are deleted. Returns true when it was kept.
 */
static bool load_segment(struct remote_write_queue *q, uint64_t seq, uint64_t cp_seq,
			 uint64_t cp_offset)
{
	char *path = segment_path(q, seq);
	size_t len = 0;
	unsigned char *data = read_file(path, &len);
	uint64_t end, samples, before;
	bool kept = false;

	if (data == NULL || len < QUEUE_MAGIC_SIZE ||
	    memcmp(data, QUEUE_MAGIC, QUEUE_MAGIC_SIZE) != 0) {
		if (data != NULL && len >= QUEUE_MAGIC_SIZE)
			log_warn("remote_write", NULL,
				 "%s is not a queue segment of this version; deleted it", path);
		unlink(path);
		goto out;
	}
	end = scan_records(data, len, seq == cp_seq ? cp_offset : UINT64_MAX, &samples, &before);
	if (end < len) {
		log_warn("remote_write", NULL,
			 "%s: %zu bytes after offset %" PRIu64
			 " are not a complete record (written during a crash?); cut them off",
			 path, len - (size_t)end, end);
		if (truncate(path, (off_t)end) < 0)
			log_warn_errno("remote_write", NULL, "cannot truncate %s", path);
	}
	/* Empty, or acknowledged to its end before the last stop. */
	if (samples == 0 || (seq == cp_seq && cp_offset >= end)) {
		unlink(path);
		goto out;
	}
	if (q->seg_count == q->seg_capacity) {
		q->seg_capacity = q->seg_capacity ? 2 * q->seg_capacity : 16;
		q->segs = xrealloc(q->segs, q->seg_capacity * sizeof(*q->segs));
	}
	q->segs[q->seg_count++] = (struct segment){seq, end, samples};
	q->total_bytes += end;
	if (seq == cp_seq) {
		q->pos_seq = seq;
		q->pos_offset = cp_offset < QUEUE_MAGIC_SIZE ? QUEUE_MAGIC_SIZE
				: cp_offset < end            ? cp_offset
							     : end;
		q->pos_index = before;
	}
	kept = true;
out:
	free(data);
	free(path);
	return kept;
}

/* Reads the checkpoint; 0,0 when there is none or it cannot be parsed. */
static void read_checkpoint(struct remote_write_queue *q, uint64_t *seq, uint64_t *offset)
{
	char *path = xasprintf("%s/" QUEUE_CHECKPOINT, q->dir);
	FILE *f = fopen(path, "re");

	*seq = 0;
	*offset = 0;
	if (f != NULL) {
		if (fscanf(f,
			   "tocsin remote-write checkpoint 1\nsegment %" SCNu64 "\noffset %" SCNu64,
			   seq, offset) != 2) {
			log_warn("remote_write", NULL,
				 "%s is not a valid checkpoint; resending the whole queue", path);
			*seq = 0;
			*offset = 0;
		}
		fclose(f);
	}
	free(path);
}

static int write_checkpoint(struct remote_write_queue *q)
{
	char *path = xasprintf("%s/" QUEUE_CHECKPOINT, q->dir);
	char *tmp = xasprintf("%s.tmp", path);
	char text[128];
	int len =
	    snprintf(text, sizeof(text),
		     "tocsin remote-write checkpoint 1\nsegment %" PRIu64 "\noffset %" PRIu64 "\n",
		     q->pos_seq, q->pos_offset);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = -1;

	if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) < 0) {
		log_error_errno("remote_write", NULL, "cannot write %s", tmp);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		log_error_errno("remote_write", NULL, "cannot rename %s to %s", tmp, path);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(path);
	return rc;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Lists the segment numbers in the directory, sorted. */
static uint64_t *list_segments(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t *seqs = NULL;
	size_t capacity = 0;

	*count = 0;
	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		uint64_t seq;
		int end = 0;

		if (strlen(e->d_name) != 20 ||
		    sscanf(e->d_name, "%16" SCNx64 ".seg%n", &seq, &end) != 1 || end != 20)
			continue;
		if (*count == capacity) {
			capacity = capacity ? 2 * capacity : 16;
			seqs = xrealloc(seqs, capacity * sizeof(*seqs));
		}
		seqs[(*count)++] = seq;
	}
	closedir(d);
	if (*count > 1)
		qsort(seqs, *count, sizeof(*seqs), compare_u64);
	return seqs;
}

/* Starts a new current segment after the last one. */
static int open_segment(struct remote_write_queue *q)
{
	uint64_t seq = q->seg_count > 0 ? q->segs[q->seg_count - 1].seq + 1 : 1;
	char *path = segment_path(q, seq);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, QUEUE_MAGIC, QUEUE_MAGIC_SIZE) != QUEUE_MAGIC_SIZE) {
		log_error_errno("remote_write", NULL, "cannot create queue segment %s", path);
		if (fd >= 0)
			close(fd);
		free(path);
		return -1;
	}
	free(path);
	if (q->seg_count == q->seg_capacity) {
		q->seg_capacity = q->seg_capacity ? 2 * q->seg_capacity : 16;
		q->segs = xrealloc(q->segs, q->seg_capacity * sizeof(*q->segs));
	}
	q->segs[q->seg_count++] = (struct segment){seq, QUEUE_MAGIC_SIZE, 0};
	q->total_bytes += QUEUE_MAGIC_SIZE;
	q->fd = fd;
	if (q->seg_count == 1) {
		q->pos_seq = seq;
		q->pos_offset = QUEUE_MAGIC_SIZE;
		q->pos_index = 0;
	}
	return 0;
}

struct remote_write_queue *remote_write_queue_open(const char *dir, uint64_t max_bytes,
						   char **error)
{
	struct remote_write_queue *q;
	uint64_t cp_seq, cp_offset;
	uint64_t *seqs;
	size_t count;

	if (mkdir_parents(dir) < 0) {
		*error = xasprintf("cannot create the queue directory %s: %s; create it or set "
				   "queue_dir",
				   dir, strerror(errno));
		return NULL;
	}
	q = xcalloc(1, sizeof(*q));
	q->dir = xstrdup(dir);
	q->fd = -1;
	q->max_bytes = max_bytes;
	q->segment_max = max_bytes / 8 < QUEUE_SEGMENT_MAX ? max_bytes / 8 : QUEUE_SEGMENT_MAX;
	if (q->segment_max < 16 * 1024)
		q->segment_max = 16 * 1024;

	read_checkpoint(q, &cp_seq, &cp_offset);
	seqs = list_segments(dir, &count);
	for (size_t i = 0; i < count; i++) {
		if (seqs[i] < cp_seq) {
			/* Acknowledged before the last stop, deleted only now. */
			char *path = segment_path(q, seqs[i]);

			unlink(path);
			free(path);
			continue;
		}
		load_segment(q, seqs[i], cp_seq, cp_offset);
	}
	free(seqs);
	/* No segment contains the checkpoint (it was acknowledged whole or dropped), so
	 * start at the first one kept. */
	if (q->seg_count > 0 && q->segs[0].seq != q->pos_seq) {
		q->pos_seq = q->segs[0].seq;
		q->pos_offset = QUEUE_MAGIC_SIZE;
		q->pos_index = 0;
	}
	if (open_segment(q) < 0) {
		*error = xasprintf("cannot create a segment file in %s: %s", dir, strerror(errno));
		remote_write_queue_close(q);
		return NULL;
	}
	return q;
}

int remote_write_queue_flush(struct remote_write_queue *q)
{
	size_t done = 0;

	while (done < q->buf_len) {
		ssize_t n = write(q->fd, q->buf + done, q->buf_len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error_errno("remote_write", NULL,
					"cannot write %zu bytes to the queue segment in %s",
					q->buf_len - done, q->dir);
			/* Keep what is unwritten out of the file's accounting. */
			memmove(q->buf, q->buf + done, q->buf_len - done);
			q->buf_len -= done;
			return -1;
		}
		done += (size_t)n;
	}
	q->buf_len = 0;
	return 0;
}

/*
 * Deletes the segment at index i (never the current one), counting unsent samples.
 * NOTE: samples of a batch in flight count as dropped too, although the receiver may
 * still acknowledge them.
 */
static void drop_segment(struct remote_write_queue *q, size_t i)
{
	struct segment *s = &q->segs[i];
	char *path = segment_path(q, s->seq);
	uint64_t unsent = s->samples;

	if (s->seq == q->pos_seq)
		unsent -= q->pos_index;
	else if (s->seq < q->pos_seq)
		unsent = 0;
	q->dropped_samples += unsent;
	if (unsent > 0)
		q->dropped_segments++;
	unlink(path);
	free(path);
	q->total_bytes -= s->bytes;
	memmove(&q->segs[i], &q->segs[i + 1], (q->seg_count - i - 1) * sizeof(*q->segs));
	q->seg_count--;
	if (q->pos_seq < q->segs[0].seq) {
		q->pos_seq = q->segs[0].seq;
		q->pos_offset = QUEUE_MAGIC_SIZE;
		q->pos_index = 0;
	}
}

/* Closes the current segment (written and fsync'ed) and starts the next. */
static int rotate(struct remote_write_queue *q)
{
	int rc = remote_write_queue_flush(q);

	if (fsync(q->fd) < 0)
		log_warn_errno("remote_write", NULL, "cannot fsync a queue segment in %s", q->dir);
	close(q->fd);
	q->fd = -1;
	if (open_segment(q) < 0)
		return -1;
	return rc;
}

/* Encodes the record into the write buffer. Returns its size, or 0 when too large. */
static size_t encode_record(struct remote_write_queue *q, const struct remote_write_sample *s)
{
	size_t plen = 8 + 8 + 2;
	unsigned char *p;
	uint64_t bits;

	for (size_t i = 0; i < s->label_count; i++)
		plen += 2 + strlen(s->labels[i].name) + 1 + 2 + strlen(s->labels[i].value) + 1;
	if (plen > QUEUE_RECORD_MAX || s->label_count > UINT16_MAX)
		return 0;
	if (q->buf_len + QUEUE_RECORD_HEAD + plen > q->buf_capacity) {
		q->buf_capacity = q->buf_len + QUEUE_RECORD_HEAD + plen + QUEUE_BUFFER_MAX;
		q->buf = xrealloc(q->buf, q->buf_capacity);
	}
	p = q->buf + q->buf_len + QUEUE_RECORD_HEAD;
	memcpy(&bits, &s->value, sizeof(bits));
	put_u64(p, (uint64_t)s->time_ms);
	put_u64(p + 8, bits);
	put_u16(p + 16, (uint16_t)s->label_count);
	p += 18;
	for (size_t i = 0; i < s->label_count; i++) {
		const char *text[2] = {s->labels[i].name, s->labels[i].value};

		for (int k = 0; k < 2; k++) {
			size_t len = strlen(text[k]);

			put_u16(p, (uint16_t)len);
			memcpy(p + 2, text[k], len + 1);
			p += 2 + len + 1;
		}
	}
	p = q->buf + q->buf_len;
	put_u32(p, (uint32_t)plen);
	put_u32(p + 4, checksum(p + QUEUE_RECORD_HEAD, plen));
	return QUEUE_RECORD_HEAD + plen;
}

int remote_write_queue_append(struct remote_write_queue *q, const struct remote_write_sample *s)
{
	struct segment *cur;
	size_t len;

	if (q->fd < 0 && open_segment(q) < 0)
		return -1;
	cur = &q->segs[q->seg_count - 1];
	if (cur->samples > 0 && cur->bytes >= q->segment_max) {
		if (rotate(q) < 0)
			return -1;
		cur = &q->segs[q->seg_count - 1];
	}
	len = encode_record(q, s);
	if (len == 0) {
		log_warn("remote_write", NULL,
			 "a sample with %zu labels is larger than %d bytes; not queued",
			 s->label_count, QUEUE_RECORD_MAX);
		return -1;
	}
	/* Full: the oldest segments go first, the current one never. */
	while (q->total_bytes + len > q->max_bytes && q->seg_count > 1)
		drop_segment(q, 0);
	cur = &q->segs[q->seg_count - 1];
	q->buf_len += len;
	cur->bytes += len;
	cur->samples++;
	q->total_bytes += len;
	if (q->buf_len >= QUEUE_BUFFER_MAX)
		return remote_write_queue_flush(q);
	return 0;
}

static void batch_reserve(struct remote_write_batch *b, size_t extra)
{
	if (b->data_len + extra > b->data_capacity) {
		b->data_capacity = 2 * (b->data_len + extra);
		b->data = xrealloc(b->data, b->data_capacity);
	}
}

/* Appends records of segment `s` from *offset to the batch until it contains `max`. */
static void read_segment(struct remote_write_queue *q, const struct segment *s, uint64_t *offset,
			 uint64_t *index, size_t max, struct remote_write_batch *b, size_t *count)
{
	char *path = segment_path(q, s->seq);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char head[QUEUE_RECORD_HEAD];

	if (fd < 0) {
		log_error_errno("remote_write", NULL, "cannot open queue segment %s", path);
		free(path);
		return;
	}
	while (*count < max && *offset + QUEUE_RECORD_HEAD <= s->bytes) {
		uint32_t plen;

		if (pread(fd, head, sizeof(head), (off_t)*offset) != (ssize_t)sizeof(head))
			break;
		plen = get_u32(head);
		if (plen > QUEUE_RECORD_MAX)
			break;
		batch_reserve(b, plen + sizeof(size_t));
		if (pread(fd, b->data + b->data_len, plen, (off_t)(*offset + sizeof(head))) !=
		    (ssize_t)plen)
			break;
		b->data_len += plen;
		*offset += sizeof(head) + plen;
		(*index)++;
		(*count)++;
	}
	close(fd);
	free(path);
}

/* Points the batch's samples and labels into its payload bytes. */
static void batch_parse(struct remote_write_batch *b, size_t count)
{
	size_t off = 0;
	size_t nlabels = 0;

	if (count > b->capacity) {
		b->capacity = count;
		b->samples = xrealloc(b->samples, count * sizeof(*b->samples));
	}
	/* Two passes: label pointers are stable only once the label array has its size. */
	for (size_t i = 0; i < count; i++) {
		const unsigned char *p = b->data + off;
		uint16_t n = get_u16(p + 16);

		nlabels += n;
		p += 18;
		for (uint16_t k = 0; k < 2 * n; k++)
			p += 2 + get_u16(p) + 1;
		off = (size_t)(p - b->data);
	}
	if (nlabels > b->label_capacity) {
		b->label_capacity = nlabels;
		b->labels = xrealloc(b->labels, nlabels * sizeof(*b->labels));
	}
	off = 0;
	nlabels = 0;
	for (size_t i = 0; i < count; i++) {
		const unsigned char *p = b->data + off;
		struct remote_write_sample *s = &b->samples[i];
		uint64_t bits = get_u64(p + 8);

		s->time_ms = (int64_t)get_u64(p);
		memcpy(&s->value, &bits, sizeof(bits));
		s->label_count = get_u16(p + 16);
		s->labels = &b->labels[nlabels];
		p += 18;
		for (size_t k = 0; k < s->label_count; k++) {
			struct label *l = &b->labels[nlabels++];

			l->name = (const char *)p + 2;
			p += 2 + get_u16(p) + 1;
			l->value = (const char *)p + 2;
			p += 2 + get_u16(p) + 1;
		}
		off = (size_t)(p - b->data);
	}
	b->count = count;
}

size_t remote_write_queue_read(struct remote_write_queue *q, size_t max,
			       struct remote_write_batch *b)
{
	uint64_t seq = q->pos_seq, offset = q->pos_offset, index = q->pos_index;
	size_t count = 0;

	b->count = 0;
	b->data_len = 0;
	if (q->buf_len > 0 && remote_write_queue_flush(q) < 0)
		return 0;
	for (size_t i = 0; i < q->seg_count && count < max; i++) {
		const struct segment *s = &q->segs[i];

		if (s->seq < seq)
			continue;
		if (s->seq > seq) {
			seq = s->seq;
			offset = QUEUE_MAGIC_SIZE;
			index = 0;
		}
		read_segment(q, s, &offset, &index, max, b, &count);
		if (offset < s->bytes)
			break; /* stopped early: max reached, or a read error */
	}
	batch_parse(b, count);
	b->end_segment = seq;
	b->end_offset = offset;
	b->end_index = index;
	return count;
}

int remote_write_queue_ack(struct remote_write_queue *q, const struct remote_write_batch *b)
{
	if (b->end_segment > q->pos_seq ||
	    (b->end_segment == q->pos_seq && b->end_offset > q->pos_offset)) {
		q->pos_seq = b->end_segment;
		q->pos_offset = b->end_offset;
		q->pos_index = b->end_index;
	}
	/* Closed segments read to their end are done. */
	while (q->seg_count > 1 &&
	       (q->segs[0].seq < q->pos_seq ||
		(q->segs[0].seq == q->pos_seq && q->pos_offset >= q->segs[0].bytes))) {
		if (q->segs[0].seq == q->pos_seq) {
			q->pos_seq = q->segs[1].seq;
			q->pos_offset = QUEUE_MAGIC_SIZE;
			q->pos_index = 0;
		}
		drop_segment(q, 0); /* nothing unsent in it: not counted */
	}
	return write_checkpoint(q);
}

void remote_write_queue_get_stats(const struct remote_write_queue *q,
				  struct remote_write_queue_stats *out)
{
	uint64_t samples = 0;

	for (size_t i = 0; i < q->seg_count; i++)
		if (q->segs[i].seq >= q->pos_seq)
			samples += q->segs[i].samples;
	out->bytes = q->total_bytes;
	out->samples = samples - q->pos_index;
	out->dropped_samples = q->dropped_samples;
	out->dropped_segments = q->dropped_segments;
}

void remote_write_queue_close(struct remote_write_queue *q)
{
	if (q == NULL)
		return;
	if (q->fd >= 0) {
		struct segment *cur = &q->segs[q->seg_count - 1];

		remote_write_queue_flush(q);
		if (fsync(q->fd) < 0)
			log_warn_errno("remote_write", NULL, "cannot fsync a queue segment in %s",
				       q->dir);
		close(q->fd);
		if (cur->samples == 0) {
			char *path = segment_path(q, cur->seq);

			unlink(path);
			free(path);
		}
	}
	free(q->segs);
	free(q->buf);
	free(q->dir);
	free(q);
}

void remote_write_batch_free(struct remote_write_batch *b)
{
	free(b->samples);
	free(b->labels);
	free(b->data);
	*b = (struct remote_write_batch){0};
}
