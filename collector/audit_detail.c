/*
 * The detail objects of the audit trail's config, silence and acknowledgement records
 * (see audit.h): file hashes, what a reload added, removed or changed, and the fields of
 * a silence or an acknowledgement that are safe to keep.
 */
#include "collector/audit.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "alerter/ack.h"
#include "alerter/silence.h"
#include "collector/config.h"
#include "collector/log.h"
#include "collector/rules.h"
#include "collector/utf8.h"
#include "collector/xalloc.h"

/* A probe or rule as a reload compares it: its name and a digest of what it does. */
struct audit_item {
	const char *name;
	unsigned char digest[32];
};

/* A JSON string of the first length bytes of text, invalid UTF-8 bytes shown as '?':
 * paths and config errors may hold any bytes, and jansson accepts only UTF-8. */
static json_t *text_value(const char *text, size_t length)
{
	char *copy = xmalloc(length + 1);
	json_t *value;

	memcpy(copy, text, length);
	copy[length] = '\0';
	utf8_repair(copy);
	value = json_string(copy);
	free(copy);
	return value;
}

static json_t *string_value(const char *text)
{
	return text_value(text != NULL ? text : "", text != NULL ? strlen(text) : 0);
}

static char *dump(json_t *detail)
{
	char *text = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(detail);
	if (text == NULL)
		log_fatal("audit", "out of memory while writing JSON");
	return text;
}

/* {"path": PATH, "sha256": HEX}, or "error" in place of "sha256" when it cannot be read. */
static json_t *file_hash(const char *path)
{
	FILE *f = fopen(path, "rb");
	json_t *out = json_pack("{s:o}", "path", string_value(path));
	EVP_MD_CTX *ctx;
	unsigned char buf[8192];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int size = 0;
	char hex[AUDIT_HASH_SIZE];
	size_t n;

	if (f == NULL) {
		json_object_set_new(out, "error", json_string(strerror(errno)));
		return out;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		log_fatal("audit", "SHA-256 is not available in OpenSSL");
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		EVP_DigestUpdate(ctx, buf, n);
	if (ferror(f)) {
		json_object_set_new(out, "error", json_string(strerror(errno)));
	} else {
		EVP_DigestFinal_ex(ctx, digest, &size);
		for (unsigned int i = 0; i < size; i++)
			snprintf(hex + 2 * i, 3, "%02x", digest[i]);
		json_object_set_new(out, "sha256", json_string(hex));
	}
	EVP_MD_CTX_free(ctx);
	fclose(f);
	return out;
}

/*
 * Hashes the files a load read. NOTE: they are read again here, after the load, so a file
 * replaced in between is hashed in its new form.
 */
static json_t *files_read(const char *config_path, const struct rule_set *rules)
{
	json_t *files = json_array();

	if (config_path != NULL) {
		json_array_append_new(files, file_hash(config_path));
	} else {
		char hex[AUDIT_HASH_SIZE];

		audit_sha256_hex(tocsin_default_config, strlen(tocsin_default_config), hex);
		json_array_append_new(files,
				      json_pack("{s:s,s:s}", "path", "<embedded>", "sha256", hex));
	}
	for (size_t i = 0; rules != NULL && i < rules->file_count; i++)
		json_array_append_new(files, file_hash(rules->files[i]));
	return files;
}

static int compare_items(const void *a, const void *b)
{
	return strcmp(((const struct audit_item *)a)->name, ((const struct audit_item *)b)->name);
}

static struct audit_item *probe_items(const struct config *cfg, size_t *count)
{
	struct audit_item *items = xcalloc(cfg->probe_count + 1, sizeof(*items));

	for (size_t i = 0; i < cfg->probe_count; i++) {
		uint64_t fingerprint = cfg->probes[i].fingerprint;

		items[i].name = cfg->probes[i].name;
		for (size_t b = 0; b < 8; b++)
			items[i].digest[b] = (unsigned char)(fingerprint >> (8 * b));
	}
	*count = cfg->probe_count;
	qsort(items, *count, sizeof(*items), compare_items);
	return items;
}

static void digest_text(EVP_MD_CTX *ctx, const char *text)
{
	/* The NUL ends each field, so "ab","c" and "a","bc" differ. */
	if (text == NULL)
		text = "";
	EVP_DigestUpdate(ctx, text, strlen(text) + 1);
}

static void digest_format(EVP_MD_CTX *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void digest_format(EVP_MD_CTX *ctx, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	digest_text(ctx, buf);
}

static void digest_templates(EVP_MD_CTX *ctx, const struct rule_template *t, size_t count)
{
	digest_format(ctx, "%zu", count);
	for (size_t i = 0; i < count; i++) {
		digest_text(ctx, t[i].name);
		digest_text(ctx, t[i].text);
	}
}

/*
 * Rules carry no hash of their own, so this digests every field that changes what a rule
 * does: its group's interval and limit, kind, name, expression, parameters, labels and
 * annotations. Its location is left out: moving a rule within its file changes nothing.
 */
static void rule_digest(const struct rule_group *g, const struct rule *r, unsigned char out[32])
{
	const struct alert_params *p = &r->params;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int size = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		log_fatal("audit", "SHA-256 is not available in OpenSSL");
	digest_format(ctx, "%" PRId64 " %" PRIu64 " %d", g->interval_ms, g->limit, (int)r->kind);
	digest_text(ctx, r->name);
	digest_text(ctx, r->expr_text);
	digest_format(ctx, "%d %" PRId64 " %" PRId64 " %d %d %d %a %a %a %a", p->threshold,
		      p->for_ms, p->keep_firing_for_ms, p->direction_above, p->has_warn,
		      p->has_crit, p->warn, p->crit, p->clear_warn, p->clear_crit);
	digest_format(ctx, "%" PRId64 " %" PRId64 " %" PRId64 " %d %a %a", p->warn_for_ms,
		      p->crit_for_ms, p->clear_for_ms, (int)p->no_data, p->flap_low, p->flap_high);
	digest_templates(ctx, r->labels, r->label_count);
	digest_templates(ctx, r->annotations, r->annotation_count);
	if (EVP_DigestFinal_ex(ctx, out, &size) != 1 || size != 32)
		log_fatal("audit", "SHA-256 failed in OpenSSL");
	EVP_MD_CTX_free(ctx);
}

static struct audit_item *rule_items(const struct rule_set *set, size_t *count)
{
	size_t total = set != NULL ? rules_count(set) : 0;
	struct audit_item *items = xcalloc(total + 1, sizeof(*items));
	size_t n = 0;

	for (size_t g = 0; set != NULL && g < set->group_count; g++) {
		const struct rule_group *group = &set->groups[g];

		for (size_t i = 0; i < group->rule_count && n < total; i++) {
			items[n].name = group->rules[i].key;
			rule_digest(group, &group->rules[i], items[n].digest);
			n++;
		}
	}
	*count = n;
	qsort(items, n, sizeof(*items), compare_items);
	return items;
}

/* {"added": [...], "removed": [...], "changed": [...]}, names sorted, from a merge walk. */
static json_t *compare_sets(const struct audit_item *old, size_t old_count,
			    const struct audit_item *next, size_t next_count)
{
	json_t *added = json_array();
	json_t *removed = json_array();
	json_t *changed = json_array();
	size_t i = 0;
	size_t j = 0;

	while (i < old_count || j < next_count) {
		int c = i == old_count    ? 1
			: j == next_count ? -1
					  : strcmp(old[i].name, next[j].name);

		if (c < 0) {
			json_array_append_new(removed, string_value(old[i++].name));
		} else if (c > 0) {
			json_array_append_new(added, string_value(next[j++].name));
		} else {
			if (memcmp(old[i].digest, next[j].digest, sizeof old[i].digest) != 0)
				json_array_append_new(changed, string_value(next[j].name));
			i++;
			j++;
		}
	}
	return json_pack("{s:o,s:o,s:o}", "added", added, "removed", removed, "changed", changed);
}

static json_t *compare_probes(const struct config *old_cfg, const struct config *cfg)
{
	size_t old_count;
	size_t count;
	struct audit_item *old = probe_items(old_cfg, &old_count);
	struct audit_item *next = probe_items(cfg, &count);
	json_t *out = compare_sets(old, old_count, next, count);

	free(old);
	free(next);
	return out;
}

static json_t *compare_rules(const struct rule_set *old_rules, const struct rule_set *rules)
{
	size_t old_count;
	size_t count;
	struct audit_item *old = rule_items(old_rules, &old_count);
	struct audit_item *next = rule_items(rules, &count);
	json_t *out = compare_sets(old, old_count, next, count);

	free(old);
	free(next);
	return out;
}

void audit_config_loaded(struct audit *audit, const char *actor, const char *action,
			 const char *config_path, const struct config *old_cfg,
			 const struct rule_set *old_rules, const struct config *cfg,
			 const struct rule_set *rules)
{
	json_t *detail;
	char *text;

	if (audit == NULL)
		return;
	detail = json_pack("{s:s,s:o,s:I,s:I}", "result", old_cfg != NULL ? "applied" : "loaded",
			   "files", files_read(config_path, rules), "probe_count",
			   (json_int_t)cfg->probe_count, "rule_count",
			   (json_int_t)(rules != NULL ? rules_count(rules) : 0));
	if (old_cfg != NULL) {
		/* NOTE: SLOs are not itemized; a changed SLO shows in its file's hash. */
		json_object_set_new(detail, "probes", compare_probes(old_cfg, cfg));
		json_object_set_new(detail, "rules", compare_rules(old_rules, rules));
	}
	text = dump(detail);
	audit_record(audit, actor, NULL, action, text);
	free(text);
}

void audit_config_rejected(struct audit *audit, const char *actor, const char *config_path,
			   const char *errors)
{
	const char *end;
	json_t *detail;
	char *text;

	if (audit == NULL)
		return;
	if (errors == NULL)
		errors = "";
	end = strchr(errors, '\n');
	detail =
	    json_pack("{s:s,s:o,s:o}", "result", "rejected", "error",
		      text_value(errors, end != NULL ? (size_t)(end - errors) : strlen(errors)),
		      "files", files_read(config_path, NULL));
	text = dump(detail);
	audit_record(audit, actor, NULL, "config.reload_rejected", text);
	free(text);
}

char *audit_silence_detail(const struct silence *s)
{
	json_t *matchers = json_array();

	for (size_t i = 0; i < s->matcher_count; i++) {
		char *m = silence_matcher_format(&s->matchers[i]);

		json_array_append_new(matchers, string_value(m));
		free(m);
	}
	return dump(json_pack("{s:s,s:o,s:I,s:I,s:o,s:o}", "id", s->id, "matchers", matchers,
			      "starts_at_ms", (json_int_t)s->starts_at_ms, "ends_at_ms",
			      (json_int_t)s->ends_at_ms, "created_by", string_value(s->created_by),
			      "comment", string_value(s->comment)));
}

char *audit_ack_detail(const struct ack *a)
{
	char fingerprint[17];

	snprintf(fingerprint, sizeof fingerprint, "%016" PRIx64, a->fingerprint);
	return dump(json_pack("{s:o,s:s,s:o,s:o,s:I,s:I}", "rule", string_value(a->rule),
			      "fingerprint", fingerprint, "created_by", string_value(a->created_by),
			      "comment", string_value(a->comment), "created_at_ms",
			      (json_int_t)a->created_at_ms, "expires_at_ms",
			      (json_int_t)a->expires_at_ms));
}
