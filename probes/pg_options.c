/*
 * Parsing of the postgres probe's options (see pg_options.h), including the password
 * file and the user-defined queries.
 */
#include "probes/pg_options.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"
#include "probes/dns.h"

#define PASSWORD_MAX 1024

static const char *const sslmodes[] = {"disable", "allow",     "prefer",
				       "require", "verify-ca", "verify-full"};

static const struct {
	const char *name;
	unsigned bit;
} collect_names[] = {
    {"activity", PG_COLLECT_ACTIVITY},     {"databases", PG_COLLECT_DATABASES},
    {"locks", PG_COLLECT_LOCKS},           {"replication", PG_COLLECT_REPLICATION},
    {"statements", PG_COLLECT_STATEMENTS},
};

static bool name_valid(const char *s, bool colons)
{
	if (s == NULL || *s == '\0')
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		bool letter = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			      (colons && *p == ':');

		if (!letter && !(p > s && *p >= '0' && *p <= '9'))
			return false;
	}
	return true;
}

static void wipe_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

/*
 * Reads the password from `path`. The file must be a regular file that others cannot
 * read or write, as libpq requires of ~/.pgpass. Group read is accepted, so that a
 * package can give tocsind's group access to a root-owned file.
 */
static int password_read(struct cfg_map *m, const char *path, char **out)
{
	char buf[PASSWORD_MAX + 2];
	struct stat st;
	ssize_t got;
	size_t length;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		cfg_error(m, "password_file", "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cfg_error(m, "password_file", "'%s' is not a regular file", path);
		close(fd);
		return -1;
	}
	if ((st.st_mode & S_IRWXO) != 0) {
		cfg_error(m, "password_file",
			  "'%s' is accessible by others (mode %04o); run chmod o-rwx on it", path,
			  (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	got = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (got < 0) {
		cfg_error(m, "password_file", "cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	length = (size_t)got;
	if (length > PASSWORD_MAX) {
		explicit_bzero(buf, sizeof buf);
		cfg_error(m, "password_file", "'%s' is longer than %d bytes", path, PASSWORD_MAX);
		return -1;
	}
	/* One line: a trailing newline (as editors and echo write it) is not part of it. */
	while (length > 0 && (buf[length - 1] == '\n' || buf[length - 1] == '\r'))
		length--;
	buf[length] = '\0';
	if (length == 0 || memchr(buf, '\0', length) != NULL || strchr(buf, '\n') != NULL) {
		explicit_bzero(buf, sizeof buf);
		cfg_error(m, "password_file",
			  "'%s' must hold the password on one line, without NUL bytes", path);
		return -1;
	}
	*out = xstrdup(buf);
	explicit_bzero(buf, sizeof buf);
	return 0;
}

static int host_parse(struct cfg_map *m, struct pg_options *opt)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char quoted[CFG_QUOTE_SIZE];
	int got = cfg_get_string(m, "host", &opt->host);

	if (got <= 0)
		return got;
	if (opt->host[0] == '\0') {
		cfg_error(m, "host",
			  "empty host: expected a host name, an IP address or a "
			  "unix socket directory");
		return -1;
	}
	/* libpq reads commas as a list of hosts, but the probe resolves and reports one host. */
	if (strchr(opt->host, ',') != NULL) {
		cfg_error(m, "host",
			  "invalid host %s: a list of hosts is not supported. Give one host "
			  "name, IP address or unix socket directory, and one probe per server",
			  cfg_quote(opt->host, quoted, sizeof quoted));
		return -1;
	}
	/*
	 * An IP address goes to libpq as hostaddr as well, so PQconnectStartParams never
	 * calls the blocking getaddrinfo for it.
	 */
	if (inet_pton(AF_INET, opt->host, addr) == 1 || inet_pton(AF_INET6, opt->host, addr) == 1)
		opt->hostaddr = xstrdup(opt->host);
	return 0;
}

static int dns_server_parse(struct cfg_map *m, struct pg_options *opt)
{
	int family;

	return dns_server_option(m, "dns_server", &opt->dns_server, &family) < 0 ? -1 : 0;
}

static int sslmode_parse(struct cfg_map *m, struct pg_options *opt)
{
	char quoted[CFG_QUOTE_SIZE];
	int got = cfg_get_string(m, "sslmode", &opt->sslmode);

	if (got <= 0)
		return got;
	for (size_t i = 0; i < sizeof sslmodes / sizeof sslmodes[0]; i++) {
		if (strcmp(opt->sslmode, sslmodes[i]) == 0)
			return 0;
	}
	cfg_error(m, "sslmode",
		  "invalid sslmode %s: expected disable, allow, prefer, require, verify-ca or "
		  "verify-full",
		  cfg_quote(opt->sslmode, quoted, sizeof quoted));
	return -1;
}

/* A certificate or key path: checked for readability now, read by libpq on connect. */
static int path_parse(struct cfg_map *m, const char *key, char **out)
{
	int got = cfg_get_string(m, key, out);

	if (got <= 0)
		return got;
	if (access(*out, R_OK) < 0) {
		cfg_error(m, key, "cannot read '%s': %s", *out, strerror(errno));
		return -1;
	}
	return 0;
}

static int collect_parse(struct cfg_map *m, struct pg_options *opt)
{
	char quoted[CFG_QUOTE_SIZE];
	char **names = NULL;
	size_t count = 0;
	int rc = 0;
	int got;

	opt->collect = PG_COLLECT_ALL;
	got = cfg_get_string_list(m, "collect", &names, &count);
	if (got <= 0)
		return got;
	opt->collect = 0;
	for (size_t i = 0; i < count; i++) {
		size_t k;

		for (k = 0; k < sizeof collect_names / sizeof collect_names[0]; k++) {
			if (strcmp(names[i], collect_names[k].name) == 0)
				break;
		}
		if (k == sizeof collect_names / sizeof collect_names[0]) {
			cfg_error(m, "collect",
				  "unknown query group %s: expected activity, databases, locks, "
				  "replication or statements",
				  cfg_quote(names[i], quoted, sizeof quoted));
			rc = -1;
			continue;
		}
		opt->collect |= collect_names[k].bit;
	}
	cfg_strv_free(names);
	return rc;
}

static int value_add(struct cfg_map *m, const char *key, struct pg_user_query *q,
		     const char *column, const char *metric, const char *type, const char *help)
{
	char quoted[CFG_QUOTE_SIZE];
	struct pg_user_value *v;
	char *name;

	name = metric != NULL ? xstrdup(metric) : xasprintf("%s_%s", q->name, column);
	if (!name_valid(name, true)) {
		cfg_error(m, key,
			  "invalid metric name %s for column '%s': expected letters, digits, '_' "
			  "and ':', not starting with a digit",
			  cfg_quote(name, quoted, sizeof quoted), column);
		free(name);
		return -1;
	}
	q->values = xrealloc(q->values, (q->value_count + 1) * sizeof *q->values);
	v = &q->values[q->value_count++];
	v->column = xstrdup(column);
	v->desc.name = name;
	v->desc.help = help != NULL
			   ? xstrdup(help)
			   : xasprintf("Column %s of the postgres query %s.", column, q->name);
	v->desc.type = type != NULL && strcmp(type, "counter") == 0 ? METRIC_COUNTER : METRIC_GAUGE;
	return 0;
}

/* One entry of the mapping form: `column: metric_name` or `column: {metric, type, help}`. */
static int value_spec_parse(struct cfg_map *values, const char *column, struct pg_user_query *q)
{
	char quoted[CFG_QUOTE_SIZE];
	char *metric = NULL;
	char *type = NULL;
	char *help = NULL;
	struct cfg_map spec;
	int rc = -1;

	if (cfg_kind(values, column) == CFG_KIND_SCALAR) {
		if (cfg_get_string(values, column, &metric) > 0)
			rc = value_add(values, column, q, column, metric, NULL, NULL);
		free(metric);
		return rc;
	}
	if (cfg_get_map(values, column, &spec) <= 0) {
		cfg_error(values, column,
			  "expected a metric name or a mapping with metric, type "
			  "and help");
		cfg_map_finish(&spec);
		return -1;
	}
	rc = 0;
	if (cfg_get_string(&spec, "metric", &metric) < 0 ||
	    cfg_get_string(&spec, "help", &help) < 0)
		rc = -1;
	if (cfg_get_string(&spec, "type", &type) > 0 && strcmp(type, "gauge") != 0 &&
	    strcmp(type, "counter") != 0) {
		cfg_error(&spec, "type", "invalid metric type %s: expected gauge or counter",
			  cfg_quote(type, quoted, sizeof quoted));
		rc = -1;
	}
	if (rc == 0)
		rc = value_add(&spec, metric != NULL ? "metric" : NULL, q, column, metric, type,
			       help);
	cfg_map_finish(&spec);
	free(metric);
	free(type);
	free(help);
	return rc;
}

static int values_parse(struct cfg_map *item, struct pg_user_query *q)
{
	struct cfg_map values;
	char **columns = NULL;
	size_t count = 0;
	int rc = 0;

	if (cfg_kind(item, "values") == CFG_KIND_SEQUENCE) {
		if (cfg_get_string_list(item, "values", &columns, &count) < 0)
			return -1;
		for (size_t i = 0; i < count; i++) {
			if (value_add(item, "values", q, columns[i], NULL, NULL, NULL) < 0)
				rc = -1;
		}
		cfg_strv_free(columns);
	} else {
		int got = cfg_get_map(item, "values", &values);

		for (size_t i = 0; got > 0 && i < cfg_map_size(&values); i++) {
			const char *column = cfg_map_key(&values, i);

			if (column != NULL && value_spec_parse(&values, column, q) < 0)
				rc = -1;
		}
		cfg_map_finish(&values);
		if (got < 0)
			return -1;
	}
	if (rc == 0 && q->value_count == 0) {
		cfg_error(item, NULL, "values: missing: list the result columns that hold numbers");
		return -1;
	}
	return rc;
}

static int labels_parse(struct cfg_map *item, struct pg_user_query *q)
{
	char quoted[CFG_QUOTE_SIZE];
	int rc = 0;

	if (cfg_get_string_list(item, "labels", &q->labels, &q->label_count) < 0)
		return -1;
	for (size_t i = 0; i < q->label_count; i++) {
		/* "probe" is the scheduler's label; "__" names are reserved by Prometheus. */
		if (!name_valid(q->labels[i], false) || strcmp(q->labels[i], "probe") == 0 ||
		    strncmp(q->labels[i], "__", 2) == 0) {
			cfg_error(item, "labels",
				  "invalid label column %s: expected letters, digits and '_', not "
				  "starting with a digit or '__', and not 'probe'",
				  cfg_quote(q->labels[i], quoted, sizeof quoted));
			rc = -1;
		}
	}
	return rc;
}

static int query_parse(struct cfg_map *item, struct pg_options *opt, struct pg_user_query *q)
{
	char quoted[CFG_QUOTE_SIZE];
	int rc = 0;

	if (cfg_get_string(item, "name", &q->name) <= 0) {
		if (!cfg_has(item, "name"))
			cfg_error(item, NULL, "name: missing");
		rc = -1;
	} else if (!name_valid(q->name, false)) {
		cfg_error(item, "name",
			  "invalid query name %s: expected letters, digits and '_', not starting "
			  "with a digit",
			  cfg_quote(q->name, quoted, sizeof quoted));
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < opt->query_count; i++) {
		if (strcmp(opt->queries[i].name, q->name) == 0) {
			cfg_error(item, "name", "duplicate query name '%s'", q->name);
			rc = -1;
		}
	}
	if (cfg_get_string(item, "sql", &q->sql) <= 0) {
		if (!cfg_has(item, "sql"))
			cfg_error(item, NULL, "sql: missing");
		rc = -1;
	}
	if (cfg_get_bool(item, "required", &q->required) < 0)
		rc = -1;
	if (labels_parse(item, q) < 0)
		rc = -1;
	if (q->name != NULL && values_parse(item, q) < 0)
		rc = -1;
	return rc;
}

static void query_free(struct pg_user_query *q)
{
	free(q->name);
	free(q->sql);
	cfg_strv_free(q->labels);
	for (size_t i = 0; i < q->value_count; i++) {
		free(q->values[i].column);
		free((char *)q->values[i].desc.name);
		free((char *)q->values[i].desc.help);
	}
	free(q->values);
}

static int queries_parse(struct cfg_map *m, struct pg_options *opt)
{
	struct cfg_seq seq;
	int rc = 0;
	int got;

	got = cfg_get_seq(m, "queries", &seq);
	if (got <= 0)
		return got;
	opt->queries = xcalloc(cfg_seq_count(&seq) + 1, sizeof *opt->queries);
	for (size_t i = 0; i < cfg_seq_count(&seq); i++) {
		struct pg_user_query q = {0};
		struct cfg_map item;

		if (cfg_seq_map(&seq, i, &item) <= 0 || query_parse(&item, opt, &q) < 0) {
			query_free(&q);
			rc = -1;
		} else {
			opt->queries[opt->query_count++] = q;
		}
		cfg_map_finish(&item);
	}
	return rc;
}

static int strings_parse(struct cfg_map *m, struct pg_options *opt)
{
	int64_t port = 5432;
	int rc = 0;

	if (host_parse(m, opt) < 0)
		rc = -1;
	if (dns_server_parse(m, opt) < 0)
		rc = -1;
	if (cfg_get_int(m, "port", 1, 65535, &port) < 0)
		rc = -1;
	opt->port = xasprintf("%lld", (long long)port);
	if (cfg_get_string(m, "dbname", &opt->dbname) < 0)
		rc = -1;
	if (opt->dbname == NULL)
		opt->dbname = xstrdup("postgres");
	if (cfg_get_string(m, "user", &opt->user) < 0)
		rc = -1;
	if (cfg_get_string(m, "application_name", &opt->application_name) < 0)
		rc = -1;
	if (opt->application_name == NULL)
		opt->application_name = xstrdup("tocsin");
	return rc;
}

int pg_options_parse(struct cfg_map *m, struct pg_options *opt)
{
	char *password_file = NULL;
	int64_t top = 10;
	int rc = 0;

	memset(opt, 0, sizeof *opt);
	opt->connect_timeout_ms = 5000;
	opt->statement_timeout_ms = 5000;

	/* Ask for every option even after an error, so that one load reports them all. */
	if (strings_parse(m, opt) < 0)
		rc = -1;
	if (cfg_get_string(m, "password_file", &password_file) < 0)
		rc = -1;
	if (password_file != NULL && password_read(m, password_file, &opt->password) < 0)
		rc = -1;
	free(password_file);
	if (sslmode_parse(m, opt) < 0)
		rc = -1;
	if (path_parse(m, "sslrootcert", &opt->sslrootcert) < 0)
		rc = -1;
	if (path_parse(m, "sslcert", &opt->sslcert) < 0)
		rc = -1;
	if (path_parse(m, "sslkey", &opt->sslkey) < 0)
		rc = -1;
	if (cfg_get_duration_ms(m, "connect_timeout", &opt->connect_timeout_ms) < 0)
		rc = -1;
	if (opt->connect_timeout_ms == 0) {
		cfg_error(m, "connect_timeout", "must be greater than 0");
		rc = -1;
	}
	if (cfg_get_duration_ms(m, "statement_timeout", &opt->statement_timeout_ms) < 0)
		rc = -1;
	if (cfg_get_int(m, "top_statements", 0, PG_TOP_STATEMENTS_MAX, &top) < 0)
		rc = -1;
	opt->top_statements = (unsigned)top;
	if (collect_parse(m, opt) < 0)
		rc = -1;
	if (queries_parse(m, opt) < 0)
		rc = -1;
	return rc;
}

void pg_options_free(struct pg_options *opt)
{
	free(opt->host);
	free(opt->hostaddr);
	free(opt->dns_server);
	free(opt->port);
	free(opt->dbname);
	free(opt->user);
	wipe_free(opt->password);
	free(opt->sslmode);
	free(opt->sslrootcert);
	free(opt->sslcert);
	free(opt->sslkey);
	free(opt->application_name);
	for (size_t i = 0; i < opt->query_count; i++)
		query_free(&opt->queries[i]);
	free(opt->queries);
	memset(opt, 0, sizeof *opt);
}

bool pg_options_host_is_name(const struct pg_options *opt)
{
	/* libpq 15 takes a host starting with '/' or '@' as a unix socket (is_unixsock_path). */
	return opt->host != NULL && opt->hostaddr == NULL && opt->host[0] != '/' &&
	       opt->host[0] != '@';
}

void pg_options_keywords(const struct pg_options *opt, const char *hostaddr, const char **keywords,
			 const char **values, char *options_buf, size_t options_size)
{
	size_t n = 0;

#define PG_KEYWORD_ADD(key, value)                                                                 \
	do {                                                                                       \
		if ((value) != NULL) {                                                             \
			keywords[n] = (key);                                                       \
			values[n] = (value);                                                       \
			n++;                                                                       \
		}                                                                                  \
	} while (0)

	PG_KEYWORD_ADD("host", opt->host);
	PG_KEYWORD_ADD("hostaddr", hostaddr != NULL ? hostaddr : opt->hostaddr);
	PG_KEYWORD_ADD("port", opt->port);
	PG_KEYWORD_ADD("dbname", opt->dbname);
	PG_KEYWORD_ADD("user", opt->user);
	PG_KEYWORD_ADD("password", opt->password);
	PG_KEYWORD_ADD("sslmode", opt->sslmode);
	PG_KEYWORD_ADD("sslrootcert", opt->sslrootcert);
	PG_KEYWORD_ADD("sslcert", opt->sslcert);
	PG_KEYWORD_ADD("sslkey", opt->sslkey);
	PG_KEYWORD_ADD("application_name", opt->application_name);
	/*
	 * Server settings for the whole session, sent in the startup packet: no extra round
	 * trip, and every query runs read-only with the statement timeout.
	 */
	snprintf(options_buf, options_size,
		 "-c statement_timeout=%llu -c default_transaction_read_only=on",
		 (unsigned long long)opt->statement_timeout_ms);
	PG_KEYWORD_ADD("options", options_buf);
	/* libpq ignores connect_timeout with PQconnectPoll: the probe keeps its own timer. */
	keywords[n] = NULL;
	values[n] = NULL;
#undef PG_KEYWORD_ADD
}

const char *pg_options_target(const struct pg_options *opt, char *buf, size_t size)
{
	const char *host = opt->host != NULL ? opt->host : "(default socket)";

	if (strchr(host, ':') != NULL && host[0] != '/')
		snprintf(buf, size, "[%s]:%s/%s", host, opt->port, opt->dbname);
	else
		snprintf(buf, size, "%s:%s/%s", host, opt->port, opt->dbname);
	return buf;
}
