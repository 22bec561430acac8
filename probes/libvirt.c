/*
 * The `libvirt` probe: per-domain state, CPU, memory, disk and interface counters of a
 * hypervisor, read over one persistent read-only libvirt connection per probe.
 *
 * libvirt's client calls block, so each probe instance has a worker thread that owns the
 * connection and does all libvirt work. A run posts a request to the worker. The worker
 * collects the statistics, stores the result and wakes the loop through an eventfd, and
 * the loop then emits the samples and finishes the run. A cancelled run (timeout) only
 * drops its claim on the request: the worker finishes the call and its result is discarded.
 * A run started while the worker is still busy with an abandoned request waits for it
 * and then gets a fresh collection. The connection is opened at the first run and
 * reopened at the next run after any error that leaves it dead.
 *
 * Statistics come from one virConnectGetAllDomainStats call (virDomainListGetStats when
 * `domains` names the domains). Where a driver leaves a group out of its records (the
 * test driver reports only the state), the worker reads that group with the per-domain
 * calls: virDomainGetInfo, virDomainGetVcpus, and virDomainBlockStats or
 * virDomainInterfaceStats for each device named in the domain's XML description.
 */
#include "probes/libvirt.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libvirt/virterror.h>

#include "collector/cfg.h"
#include "collector/log.h"
#include "collector/throttle.h"
#include "collector/xalloc.h"
#include "probes/probe.h"

#define LIBVIRT_REASON_MAX 256
#define LIBVIRT_STATS_GROUPS                                                                       \
	(VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON |          \
	 VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK)

static const struct metric_desc m_up = {
    "libvirt_up", "1 when the connection and the statistics call of this run succeeded.",
    METRIC_GAUGE};
static const struct metric_desc m_state = {
    "libvirt_domain_info_state",
    "State of the domain as a virDomainState number: 1 running, 3 paused, 5 shut off...",
    METRIC_GAUGE};
static const struct metric_desc m_domain_up = {
    "libvirt_domain_up", "1 when the domain is running, 0 in any other state.", METRIC_GAUGE};
static const struct metric_desc m_cpu_time = {"libvirt_domain_info_cpu_time_seconds_total",
					      "CPU time used by the domain, in seconds.",
					      METRIC_COUNTER};
static const struct metric_desc m_vcpus = {"libvirt_domain_info_virtual_cpus",
					   "Number of virtual CPUs of the domain.", METRIC_GAUGE};
static const struct metric_desc m_vcpu_time = {"libvirt_domain_vcpu_time_seconds_total",
					       "CPU time used by one virtual CPU, in seconds.",
					       METRIC_COUNTER};
static const struct metric_desc m_memory = {"libvirt_domain_info_memory_usage_bytes",
					    "Memory currently assigned to the domain, in bytes.",
					    METRIC_GAUGE};
static const struct metric_desc m_max_memory = {"libvirt_domain_info_maximum_memory_bytes",
						"Maximum memory of the domain, in bytes.",
						METRIC_GAUGE};
static const struct metric_desc m_balloon = {"libvirt_domain_memory_stats_actual_balloon_bytes",
					     "Current size of the memory balloon, in bytes.",
					     METRIC_GAUGE};

static const struct metric_desc m_block[LIBVIRT_COUNTER_COUNT] = {
    [LIBVIRT_COUNTER_BYTES_IN] = {"libvirt_domain_block_stats_read_bytes_total",
				  "Bytes read from the block device.", METRIC_COUNTER},
    [LIBVIRT_COUNTER_BYTES_OUT] = {"libvirt_domain_block_stats_write_bytes_total",
				   "Bytes written to the block device.", METRIC_COUNTER},
    [LIBVIRT_COUNTER_OPS_IN] = {"libvirt_domain_block_stats_read_requests_total",
				"Read requests to the block device.", METRIC_COUNTER},
    [LIBVIRT_COUNTER_OPS_OUT] = {"libvirt_domain_block_stats_write_requests_total",
				 "Write requests to the block device.", METRIC_COUNTER},
};

static const struct metric_desc m_interface[LIBVIRT_COUNTER_COUNT] = {
    [LIBVIRT_COUNTER_BYTES_IN] = {"libvirt_domain_interface_stats_receive_bytes_total",
				  "Bytes received on the network interface.", METRIC_COUNTER},
    [LIBVIRT_COUNTER_BYTES_OUT] = {"libvirt_domain_interface_stats_transmit_bytes_total",
				   "Bytes transmitted on the network interface.", METRIC_COUNTER},
    [LIBVIRT_COUNTER_OPS_IN] = {"libvirt_domain_interface_stats_receive_packets_total",
				"Packets received on the network interface.", METRIC_COUNTER},
    [LIBVIRT_COUNTER_OPS_OUT] = {"libvirt_domain_interface_stats_transmit_packets_total",
				 "Packets transmitted on the network interface.", METRIC_COUNTER},
};

/* Field suffixes of block.N.* and net.N.* in a bulk record, by counter. */
static const char *const block_fields[LIBVIRT_COUNTER_COUNT] = {"rd.bytes", "wr.bytes", "rd.reqs",
								"wr.reqs"};
static const char *const interface_fields[LIBVIRT_COUNTER_COUNT] = {"rx.bytes", "tx.bytes",
								    "rx.pkts", "tx.pkts"};

/* --- Bulk records and XML descriptions (pure, see libvirt.h) --- */

static bool param_unsigned(const virTypedParameter *p, uint64_t *out)
{
	switch (p->type) {
	case VIR_TYPED_PARAM_UINT:
		*out = p->value.ui;
		return true;
	case VIR_TYPED_PARAM_ULLONG:
		*out = p->value.ul;
		return true;
	case VIR_TYPED_PARAM_INT:
		*out = (uint64_t)p->value.i;
		return p->value.i >= 0;
	case VIR_TYPED_PARAM_LLONG:
		*out = (uint64_t)p->value.l;
		return p->value.l >= 0;
	default:
		return false;
	}
}

/* Returns the device at `index`, growing the array; NULL when the index is too large. */
static struct libvirt_device *device_at(struct libvirt_device **devices, size_t *count,
					size_t index)
{
	if (index >= LIBVIRT_DEVICES_MAX)
		return NULL;
	if (index >= *count) {
		*devices = xrealloc(*devices, (index + 1) * sizeof **devices);
		memset(*devices + *count, 0, (index + 1 - *count) * sizeof **devices);
		*count = index + 1;
	}
	return *devices + index;
}

/* Reads the N of "N.FIELD" at `rest`; *end points after it. */
static bool param_index(const char *rest, unsigned long *index, char **end)
{
	if (rest[0] < '0' || rest[0] > '9')
		return false;
	errno = 0;
	*index = strtoul(rest, end, 10);
	return errno == 0;
}

/* Reads one "PREFIX.N.FIELD" parameter (prefix already skipped) into the device list. */
static void device_param(const virTypedParameter *p, const char *rest,
			 const char *const fields[LIBVIRT_COUNTER_COUNT],
			 struct libvirt_device **devices, size_t *count)
{
	struct libvirt_device *device;
	unsigned long index;
	char *end;
	uint64_t value;

	if (!param_index(rest, &index, &end) || *end != '.' ||
	    (device = device_at(devices, count, index)) == NULL)
		return;
	end++;
	if (strcmp(end, "name") == 0) {
		if (p->type == VIR_TYPED_PARAM_STRING && p->value.s != NULL && device->name == NULL)
			device->name = xstrdup(p->value.s);
		return;
	}
	for (int c = 0; c < LIBVIRT_COUNTER_COUNT; c++) {
		if (strcmp(end, fields[c]) == 0 && param_unsigned(p, &value)) {
			device->counters[c] = value;
			device->present |= 1u << c;
			return;
		}
	}
}

/* Returns the vCPU entry for `number`, growing the array, or NULL when the number is too large. */
static struct libvirt_vcpu *vcpu_at(struct libvirt_domain_stats *s, uint64_t number)
{
	if (number >= LIBVIRT_VCPUS_MAX)
		return NULL;
	if (number >= s->vcpu_time_count) {
		s->vcpu_times = xrealloc(s->vcpu_times, (number + 1) * sizeof *s->vcpu_times);
		memset(s->vcpu_times + s->vcpu_time_count, 0,
		       (number + 1 - s->vcpu_time_count) * sizeof *s->vcpu_times);
		s->vcpu_time_count = number + 1;
	}
	return s->vcpu_times + number;
}

/* Reads one "vcpu.N.time" parameter (the "vcpu." prefix already skipped); ignores the
 * other vcpu.N fields. */
static void vcpu_param(const virTypedParameter *p, const char *rest,
		       struct libvirt_domain_stats *out)
{
	struct libvirt_vcpu *vcpu;
	unsigned long number;
	char *end;
	uint64_t value;

	if (!param_index(rest, &number, &end) || strcmp(end, ".time") != 0 ||
	    !param_unsigned(p, &value) || (vcpu = vcpu_at(out, number)) == NULL)
		return;
	vcpu->has_time = true;
	vcpu->time_ns = value;
	out->has_vcpu_times = true;
}

void libvirt_stats_from_params(const virTypedParameter *params, int count,
			       struct libvirt_domain_stats *out)
{
	memset(out, 0, sizeof *out);
	for (int i = 0; i < count; i++) {
		const virTypedParameter *p = &params[i];
		uint64_t value;

		if (strcmp(p->field, "state.state") == 0 && p->type == VIR_TYPED_PARAM_INT) {
			out->has_state = true;
			out->state = p->value.i;
		} else if (strcmp(p->field, "cpu.time") == 0) {
			out->has_cpu_time = param_unsigned(p, &out->cpu_time_ns);
		} else if (strcmp(p->field, "vcpu.current") == 0) {
			out->has_vcpus = param_unsigned(p, &out->vcpus);
		} else if (strncmp(p->field, "vcpu.", 5) == 0) {
			vcpu_param(p, p->field + 5, out);
		} else if (strcmp(p->field, "balloon.current") == 0) {
			out->has_memory = param_unsigned(p, &out->memory_kib);
		} else if (strcmp(p->field, "balloon.maximum") == 0) {
			out->has_max_memory = param_unsigned(p, &out->max_memory_kib);
		} else if (strcmp(p->field, "block.count") == 0) {
			out->has_blocks = param_unsigned(p, &value);
		} else if (strcmp(p->field, "net.count") == 0) {
			out->has_interfaces = param_unsigned(p, &value);
		} else if (strncmp(p->field, "block.", 6) == 0) {
			device_param(p, p->field + 6, block_fields, &out->blocks,
				     &out->block_count);
		} else if (strncmp(p->field, "net.", 4) == 0) {
			device_param(p, p->field + 4, interface_fields, &out->interfaces,
				     &out->interface_count);
		}
	}
}

static void devices_free(struct libvirt_device *devices, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(devices[i].name);
	free(devices);
}

void libvirt_domain_stats_clear(struct libvirt_domain_stats *stats)
{
	devices_free(stats->blocks, stats->block_count);
	devices_free(stats->interfaces, stats->interface_count);
	free(stats->vcpu_times);
	memset(stats, 0, sizeof *stats);
}

/* Copies an attribute value, decoding the five entities libvirt's formatter writes. */
static char *xml_attribute_copy(const char *value, size_t length)
{
	static const struct {
		const char *entity;
		char c;
	} entities[] = {
	    {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&quot;", '"'}};
	char *copy = xmalloc(length + 1);
	size_t out = 0;

	for (size_t i = 0; i < length; i++) {
		size_t e = 0;

		if (value[i] == '&') {
			for (; e < sizeof entities / sizeof entities[0]; e++) {
				size_t n = strlen(entities[e].entity);

				if (i + n <= length &&
				    strncmp(value + i, entities[e].entity, n) == 0) {
					copy[out++] = entities[e].c;
					i += n - 1;
					break;
				}
			}
			if (e < sizeof entities / sizeof entities[0])
				continue;
		}
		copy[out++] = value[i];
	}
	copy[out] = '\0';
	return copy;
}

/* Finds `<name` followed by a space, '>' or '/' in [from, to); NULL when absent. */
static const char *xml_find_start(const char *from, const char *to, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = from; p != NULL && p + n + 1 < to; p = strchr(p + 1, '<')) {
		if (*p == '<' && strncmp(p + 1, name, n) == 0 &&
		    (p[n + 1] == ' ' || p[n + 1] == '>' || p[n + 1] == '/' || p[n + 1] == '\n'))
			return p;
	}
	return NULL;
}

/* The `dev` value of the first <target> in [from, to), or NULL. */
static char *xml_target_dev(const char *from, const char *to)
{
	const char *target = xml_find_start(from, to, "target");
	const char *tag_end;
	const char *attr;
	const char *value_end;

	if (target == NULL || (tag_end = memchr(target, '>', (size_t)(to - target))) == NULL)
		return NULL;
	for (attr = target; (attr = strstr(attr, "dev=")) != NULL && attr < tag_end; attr += 4) {
		char quote = attr[4];

		if ((attr[-1] != ' ' && attr[-1] != '\n') || (quote != '\'' && quote != '"'))
			continue;
		value_end = memchr(attr + 5, quote, (size_t)(tag_end - (attr + 5)));
		if (value_end == NULL || value_end == attr + 5)
			return NULL;
		return xml_attribute_copy(attr + 5, (size_t)(value_end - (attr + 5)));
	}
	return NULL;
}

/*
 * NOTE: this is a scanner for the XML that libvirt itself formats (one element per tag,
 * attributes quoted, no comments or CDATA inside <devices>), not a general XML parser.
 * It only names devices for the per-device fallback calls.
 */
size_t libvirt_xml_targets(const char *xml, const char *element, char ***names)
{
	const char *end = xml + strlen(xml);
	char close[32];
	const char *p = xml;
	size_t count = 0;

	*names = NULL;
	snprintf(close, sizeof close, "</%s>", element);
	while (count < LIBVIRT_DEVICES_MAX && (p = xml_find_start(p, end, element)) != NULL) {
		const char *tag_end = strchr(p, '>');
		const char *element_end;
		char *dev;

		if (tag_end == NULL)
			break;
		if (tag_end[-1] == '/') {
			p = tag_end; /* an empty element has no <target> */
			continue;
		}
		element_end = strstr(tag_end, close);
		if (element_end == NULL)
			break;
		dev = xml_target_dev(tag_end, element_end);
		if (dev != NULL) {
			*names = xrealloc(*names, (count + 2) * sizeof **names);
			(*names)[count++] = dev;
			(*names)[count] = NULL;
		}
		p = element_end;
	}
	return count;
}

/* --- The worker thread --- */

/* One collected domain. */
struct lv_domain {
	char *name;
	struct libvirt_domain_stats stats;
};

/* The outcome of one request, made by the worker and consumed by the loop. */
struct lv_result {
	uint64_t seq; /* sequence number of the request it belongs to */
	enum probe_status status;
	char reason[LIBVIRT_REASON_MAX];
	struct lv_domain *domains;
	size_t domain_count;
};

/*
 * State shared by the loop and one worker thread. The fields under "lock" are read and
 * written with `lock` held; the constant ones are set before the thread starts; `conn`
 * is the worker's alone. Freed by the loop after pthread_join, or by the worker itself
 * when the probe was freed while a call was in progress (`detached`).
 */
struct lv_worker {
	/* constant */
	char *uri;
	char **domains; /* NULL when every domain is collected */
	size_t domain_count;
	char ids[256];
	int notify_fd; /* eventfd the worker increments when a result is ready */
	pthread_t thread;

	/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	uint64_t request_seq; /* of the newest request */
	bool requested;       /* request_seq not taken yet */
	bool busy;            /* a collection is in progress */
	uint64_t busy_seq;    /* the request it serves */
	const char *phase;    /* a string literal naming the step in progress */
	bool stopping;
	bool detached;
	struct lv_result *result; /* ready, not yet taken by the loop */

	/* worker thread only */
	virConnectPtr conn;
};

static void result_free(struct lv_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->domain_count; i++) {
		free(res->domains[i].name);
		libvirt_domain_stats_clear(&res->domains[i].stats);
	}
	free(res->domains);
	free(res);
}

static void worker_set_phase(struct lv_worker *w, const char *phase)
{
	pthread_mutex_lock(&w->lock);
	w->phase = phase;
	pthread_mutex_unlock(&w->lock);
}

/* libvirt's last error on this thread, as text for a reason or a log line. */
static const char *error_message(void)
{
	const virError *e = virGetLastError();

	return e != NULL && e->message != NULL ? e->message : "unknown libvirt error";
}

static int error_code(void)
{
	const virError *e = virGetLastError();

	return e != NULL ? e->code : VIR_ERR_OK;
}

static enum probe_status error_status(int code)
{
	switch (code) {
	case VIR_ERR_AUTH_FAILED:
	case VIR_ERR_AUTH_CANCELLED:
	case VIR_ERR_AUTH_UNAVAILABLE:
		return PROBE_STATUS_AUTH_FAILED;
	case VIR_ERR_OPERATION_DENIED:
	case VIR_ERR_ACCESS_DENIED:
		return PROBE_STATUS_NOT_PERMITTED;
	case VIR_ERR_OPERATION_TIMEOUT:
		return PROBE_STATUS_TIMEOUT;
	default:
		return PROBE_STATUS_UNAVAILABLE;
	}
}

static void result_fail(struct lv_result *res, enum probe_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void result_fail(struct lv_result *res, enum probe_status status, const char *fmt, ...)
{
	va_list ap;

	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof res->reason, fmt, ap);
	va_end(ap);
}

/*
 * Closes the connection unless it is still usable, so that the next run reopens it.
 * Returns true when it was closed.
 */
static bool connection_check(struct lv_worker *w)
{
	if (w->conn == NULL || virConnectIsAlive(w->conn) == 1)
		return false;
	log_info("libvirt", w->ids, "connection lost, reconnecting at the next run");
	virConnectClose(w->conn);
	w->conn = NULL;
	return true;
}

static bool domain_active(const struct libvirt_domain_stats *stats)
{
	return stats->has_state && stats->state != VIR_DOMAIN_SHUTOFF &&
	       stats->state != VIR_DOMAIN_CRASHED && stats->state != VIR_DOMAIN_NOSTATE;
}

/* Fills the fields of the info group that the bulk record lacked from virDomainGetInfo. */
static void fallback_info(virDomainPtr dom, struct libvirt_domain_stats *s)
{
	virDomainInfo info;

	if (s->has_state && s->has_cpu_time && s->has_vcpus && s->has_memory && s->has_max_memory)
		return;
	if (virDomainGetInfo(dom, &info) < 0) {
		/* The domain may have been undefined meanwhile: report what the record had. */
		virResetLastError();
		return;
	}
	if (!s->has_state) {
		s->has_state = true;
		s->state = info.state;
	}
	if (!s->has_cpu_time) {
		s->has_cpu_time = true;
		s->cpu_time_ns = info.cpuTime;
	}
	if (!s->has_vcpus) {
		s->has_vcpus = true;
		s->vcpus = info.nrVirtCpu;
	}
	if (!s->has_memory) {
		s->has_memory = true;
		s->memory_kib = info.memory;
	}
	if (!s->has_max_memory) {
		s->has_max_memory = true;
		s->max_memory_kib = info.maxMem;
	}
}

/*
 * Reads the vCPU times with virDomainGetVcpus for an active domain whose record had none.
 * libvirt's test driver (9.0) reports them only there, and so does a driver without the
 * bulk call.
 */
static void fallback_vcpus(virDomainPtr dom, struct libvirt_domain_stats *s)
{
	virVcpuInfoPtr info;
	int maxinfo;
	int n;

	if (s->has_vcpu_times || !domain_active(s) || !s->has_vcpus || s->vcpus == 0)
		return;
	maxinfo = s->vcpus < LIBVIRT_VCPUS_MAX ? (int)s->vcpus : LIBVIRT_VCPUS_MAX;
	info = xcalloc((size_t)maxinfo, sizeof *info);
	n = virDomainGetVcpus(dom, info, maxinfo, NULL, 0);
	if (n < 0)
		virResetLastError(); /* not supported, or the domain stopped meanwhile */
	for (int i = 0; i < n; i++) {
		struct libvirt_vcpu *vcpu = vcpu_at(s, info[i].number);

		if (vcpu == NULL)
			continue;
		vcpu->has_time = true;
		vcpu->time_ns = info[i].cpuTime;
		s->has_vcpu_times = true;
	}
	free(info);
}

/* Stores a per-device counter unless the driver returned -1 (not supported). */
static void counter_set(struct libvirt_device *d, enum libvirt_counter c, long long value)
{
	if (value < 0)
		return;
	d->counters[c] = (uint64_t)value;
	d->present |= 1u << c;
}

static void fallback_blocks(virDomainPtr dom, const char *xml, struct libvirt_domain_stats *s)
{
	char **names;
	size_t count = libvirt_xml_targets(xml, "disk", &names);

	s->has_blocks = true;
	s->blocks = xcalloc(count > 0 ? count : 1, sizeof *s->blocks);
	for (size_t i = 0; i < count; i++) {
		struct libvirt_device *d = &s->blocks[s->block_count++];
		virDomainBlockStatsStruct st;

		d->name = xstrdup(names[i]);
		if (virDomainBlockStats(dom, names[i], &st, sizeof st) < 0) {
			virResetLastError(); /* an empty CD-ROM drive has no statistics */
			continue;
		}
		counter_set(d, LIBVIRT_COUNTER_BYTES_IN, st.rd_bytes);
		counter_set(d, LIBVIRT_COUNTER_BYTES_OUT, st.wr_bytes);
		counter_set(d, LIBVIRT_COUNTER_OPS_IN, st.rd_req);
		counter_set(d, LIBVIRT_COUNTER_OPS_OUT, st.wr_req);
	}
	cfg_strv_free(names);
}

static void fallback_interfaces(virDomainPtr dom, const char *xml, struct libvirt_domain_stats *s)
{
	char **names;
	size_t count = libvirt_xml_targets(xml, "interface", &names);

	s->has_interfaces = true;
	s->interfaces = xcalloc(count > 0 ? count : 1, sizeof *s->interfaces);
	for (size_t i = 0; i < count; i++) {
		struct libvirt_device *d = &s->interfaces[s->interface_count++];
		virDomainInterfaceStatsStruct st;

		d->name = xstrdup(names[i]);
		if (virDomainInterfaceStats(dom, names[i], &st, sizeof st) < 0) {
			virResetLastError();
			continue;
		}
		counter_set(d, LIBVIRT_COUNTER_BYTES_IN, st.rx_bytes);
		counter_set(d, LIBVIRT_COUNTER_BYTES_OUT, st.tx_bytes);
		counter_set(d, LIBVIRT_COUNTER_OPS_IN, st.rx_packets);
		counter_set(d, LIBVIRT_COUNTER_OPS_OUT, st.tx_packets);
	}
	cfg_strv_free(names);
}

/* Reads the device groups the bulk record lacked, for a domain that has devices live. */
static void fallback_devices(virDomainPtr dom, struct libvirt_domain_stats *s)
{
	char *xml;

	if ((s->has_blocks && s->has_interfaces) || !domain_active(s))
		return;
	xml = virDomainGetXMLDesc(dom, 0);
	if (xml == NULL) {
		virResetLastError();
		return;
	}
	if (!s->has_blocks)
		fallback_blocks(dom, xml, s);
	if (!s->has_interfaces)
		fallback_interfaces(dom, xml, s);
	free(xml);
}

static void domain_add(struct lv_result *res, virDomainPtr dom, const virTypedParameter *params,
		       int count)
{
	const char *name = virDomainGetName(dom);
	struct lv_domain *d;

	if (name == NULL) {
		virResetLastError();
		return;
	}
	res->domains = xrealloc(res->domains, (res->domain_count + 1) * sizeof *res->domains);
	d = &res->domains[res->domain_count++];
	d->name = xstrdup(name);
	libvirt_stats_from_params(params, count, &d->stats);
	fallback_info(dom, &d->stats);
	fallback_vcpus(dom, &d->stats);
	fallback_devices(dom, &d->stats);
}

/*
 * Looks up the configured domains. Returns the number found, or -1 with the result
 * failed. An undefined domain is skipped, so it has no samples.
 */
static int domains_lookup(struct lv_worker *w, virDomainPtr *doms, struct lv_result *res)
{
	int found = 0;

	for (size_t i = 0; i < w->domain_count; i++) {
		virDomainPtr dom = virDomainLookupByName(w->conn, w->domains[i]);

		if (dom != NULL) {
			doms[found++] = dom;
			continue;
		}
		if (error_code() == VIR_ERR_NO_DOMAIN) {
			virResetLastError();
			continue;
		}
		result_fail(res, error_status(error_code()), "looking up domain %s failed: %s",
			    w->domains[i], error_message());
		while (found > 0)
			virDomainFree(doms[--found]);
		return -1;
	}
	return found;
}

/*
 * Reads the statistics of every wanted domain into `res`. The bulk call is preferred; a
 * driver without it (VIR_ERR_NO_SUPPORT) is read with the per-domain calls.
 */
static void collect_domains(struct lv_worker *w, struct lv_result *res)
{
	virDomainStatsRecordPtr *records = NULL;
	virDomainPtr *doms = NULL;
	int dom_count = 0;
	int n;

	worker_set_phase(w, "domain statistics");
	if (w->domains != NULL) {
		doms = xcalloc(w->domain_count + 1, sizeof *doms);
		dom_count = domains_lookup(w, doms, res);
		if (dom_count < 0) {
			dom_count = 0;
			goto out;
		}
		n = dom_count > 0 ? virDomainListGetStats(doms, LIBVIRT_STATS_GROUPS, &records, 0)
				  : 0;
	} else {
		n = virConnectGetAllDomainStats(w->conn, LIBVIRT_STATS_GROUPS, &records, 0);
	}
	if (n >= 0) {
		worker_set_phase(w, "domain details");
		for (int i = 0; i < n; i++)
			domain_add(res, records[i]->dom, records[i]->params, records[i]->nparams);
		goto out;
	}
	if (error_code() != VIR_ERR_NO_SUPPORT) {
		result_fail(res, error_status(error_code()), "domain statistics of %s failed: %s",
			    w->uri, error_message());
		goto out;
	}
	virResetLastError();
	if (w->domains == NULL) {
		dom_count = virConnectListAllDomains(w->conn, &doms, 0);
		if (dom_count < 0) {
			dom_count = 0;
			result_fail(res, error_status(error_code()),
				    "listing domains of %s failed: %s", w->uri, error_message());
			goto out;
		}
	}
	worker_set_phase(w, "domain details");
	for (int i = 0; i < dom_count; i++)
		domain_add(res, doms[i], NULL, 0);
out:
	if (records != NULL)
		virDomainStatsRecordListFree(records);
	for (int i = 0; i < dom_count; i++)
		virDomainFree(doms[i]);
	free(doms);
}

static struct lv_result *collect(struct lv_worker *w, uint64_t seq)
{
	struct lv_result *res = xcalloc(1, sizeof *res);

	res->seq = seq;
	res->status = PROBE_STATUS_OK;
	if (w->conn == NULL) {
		worker_set_phase(w, "connect");
		w->conn = virConnectOpenReadOnly(w->uri);
		if (w->conn == NULL) {
			result_fail(res, error_status(error_code()), "connecting to %s failed: %s",
				    w->uri, error_message());
			virResetLastError();
			return res;
		}
		log_info("libvirt", w->ids, "connected to %s", w->uri);
	}
	collect_domains(w, res);
	virResetLastError();
	if (connection_check(w)) {
		/* A failed call's own message (in the reason) says more than "lost". */
		if (res->status == PROBE_STATUS_OK)
			result_fail(res, PROBE_STATUS_CONNECTION_LOST, "connection to %s lost",
				    w->uri);
		res->status = PROBE_STATUS_CONNECTION_LOST;
	}
	return res;
}

static void worker_destroy(struct lv_worker *w)
{
	if (w->conn != NULL)
		virConnectClose(w->conn);
	result_free(w->result);
	close(w->notify_fd);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	cfg_strv_free(w->domains);
	free(w->uri);
	free(w);
}

static void *worker_main(void *arg)
{
	struct lv_worker *w = arg;
	bool detached;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct lv_result *res;
		uint64_t seq;
		uint64_t one = 1;

		while (!w->requested && !w->stopping)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->stopping)
			break;
		w->requested = false;
		w->busy = true;
		seq = w->busy_seq = w->request_seq;
		pthread_mutex_unlock(&w->lock);

		res = collect(w, seq);

		pthread_mutex_lock(&w->lock);
		w->busy = false;
		w->phase = NULL;
		if (w->stopping) {
			result_free(res);
			break;
		}
		result_free(w->result); /* an older result the loop never took */
		w->result = res;
		/* The fd stays open until this thread is joined or has freed the worker. */
		if (write(w->notify_fd, &one, sizeof one) < 0 && errno != EAGAIN)
			log_warn_errno("libvirt", w->ids, "cannot wake the event loop");
	}
	detached = w->detached;
	pthread_mutex_unlock(&w->lock);
	if (detached) {
		/* The probe is gone: nothing else refers to the worker any more. */
		log_debug("libvirt", w->ids, "call returned after the probe was removed");
		worker_destroy(w);
	}
	return NULL;
}

/* --- The probe, on the loop thread --- */

struct lv_state {
	char *uri;
	char **domains; /* NULL-terminated, NULL when every domain is collected */
	size_t domain_count;
	struct lv_worker *worker; /* started at the first run */
	struct event *notify;
	struct probe_run *run;
	uint64_t waiting_seq; /* the request the run in flight waits for */
	char ids[256];
	struct throttle throttle;
	char **seen; /* domains of the last successful run, NULL-terminated */
	size_t seen_count;
	bool collected; /* a run succeeded before */
};

/*
 * Stops the worker without blocking the loop. An idle worker is joined at once. A busy
 * one is detached and frees itself when its libvirt call returns.
 */
static void worker_release(struct lv_worker *w)
{
	pthread_t thread = w->thread;
	bool busy;

	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	busy = w->busy;
	w->detached = busy;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	if (busy) {
		pthread_detach(thread);
		return;
	}
	pthread_join(thread, NULL);
	worker_destroy(w);
}

static char **strv_copy(char *const *v, size_t count)
{
	char **copy;

	if (v == NULL)
		return NULL;
	copy = xcalloc(count + 1, sizeof *copy);
	for (size_t i = 0; i < count; i++)
		copy[i] = xstrdup(v[i]);
	return copy;
}

static struct lv_worker *worker_start(struct lv_state *st, char *reason, size_t size)
{
	struct lv_worker *w = xcalloc(1, sizeof *w);
	sigset_t all;
	sigset_t old;
	int rc;

	w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->notify_fd < 0) {
		snprintf(reason, size, "cannot create an eventfd: %s", strerror(errno));
		free(w);
		return NULL;
	}
	w->uri = xstrdup(st->uri);
	w->domains = strv_copy(st->domains, st->domain_count);
	w->domain_count = st->domain_count;
	snprintf(w->ids, sizeof w->ids, "%s", st->ids);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);

	/* Signals stay with the loop thread: the worker starts with all of them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(reason, size, "cannot start a worker thread: %s", strerror(rc));
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		close(w->notify_fd);
		cfg_strv_free(w->domains);
		free(w->uri);
		free(w);
		return NULL;
	}
	return w;
}

static bool strv_contains(char *const *v, size_t count, const char *s)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static bool result_has_domain(const struct lv_result *res, const char *name)
{
	for (size_t i = 0; i < res->domain_count; i++)
		if (strcmp(res->domains[i].name, name) == 0)
			return true;
	return false;
}

/*
 * Logs the domains that vanished since the last successful run, whose series go stale.
 * At the first successful run it also logs the configured domains that are not defined.
 * Then it stores this run's domain names for the next comparison.
 */
static void domains_compare(struct lv_state *st, const struct lv_result *res)
{
	for (size_t i = 0; i < st->seen_count; i++) {
		if (!result_has_domain(res, st->seen[i]))
			log_notice("libvirt", st->ids,
				   "domain %s is no longer defined; its series stop", st->seen[i]);
	}
	for (size_t i = 0; i < res->domain_count; i++) {
		if (st->collected && !strv_contains(st->seen, st->seen_count, res->domains[i].name))
			log_info("libvirt", st->ids, "domain %s appeared", res->domains[i].name);
	}
	for (size_t i = 0; !st->collected && i < st->domain_count; i++) {
		if (!result_has_domain(res, st->domains[i]))
			log_notice("libvirt", st->ids, "domain %s listed in domains is not defined",
				   st->domains[i]);
	}
	cfg_strv_free(st->seen);
	st->seen = xcalloc(res->domain_count + 1, sizeof *st->seen);
	for (size_t i = 0; i < res->domain_count; i++)
		st->seen[i] = xstrdup(res->domains[i].name);
	st->seen_count = res->domain_count;
	st->collected = true;
}

static void emit_devices(struct probe_run *run, const char *domain,
			 const struct libvirt_device *devices, size_t count,
			 const struct metric_desc metrics[LIBVIRT_COUNTER_COUNT])
{
	for (size_t i = 0; i < count; i++) {
		const struct libvirt_device *d = &devices[i];
		struct label labels[2] = {{"domain", domain}, {"target_device", d->name}};

		if (d->name == NULL)
			continue;
		for (int c = 0; c < LIBVIRT_COUNTER_COUNT; c++)
			if ((d->present & (1u << c)) != 0)
				probe_run_emit(run, &metrics[c], labels, 2, (double)d->counters[c]);
	}
}

static void emit_domain(struct probe_run *run, const struct lv_domain *d)
{
	const struct libvirt_domain_stats *s = &d->stats;
	struct label label = {"domain", d->name};

	if (s->has_state) {
		probe_run_emit(run, &m_state, &label, 1, s->state);
		probe_run_emit(run, &m_domain_up, &label, 1, s->state == VIR_DOMAIN_RUNNING);
	}
	if (s->has_cpu_time)
		probe_run_emit(run, &m_cpu_time, &label, 1, (double)s->cpu_time_ns / 1e9);
	if (s->has_vcpus)
		probe_run_emit(run, &m_vcpus, &label, 1, (double)s->vcpus);
	for (size_t i = 0; i < s->vcpu_time_count; i++) {
		char number[24];
		struct label labels[2] = {{"domain", d->name}, {"vcpu", number}};

		if (!s->vcpu_times[i].has_time)
			continue;
		snprintf(number, sizeof number, "%zu", i);
		probe_run_emit(run, &m_vcpu_time, labels, 2,
			       (double)s->vcpu_times[i].time_ns / 1e9);
	}
	if (s->has_memory) {
		probe_run_emit(run, &m_memory, &label, 1, (double)s->memory_kib * 1024);
		probe_run_emit(run, &m_balloon, &label, 1, (double)s->memory_kib * 1024);
	}
	if (s->has_max_memory)
		probe_run_emit(run, &m_max_memory, &label, 1, (double)s->max_memory_kib * 1024);
	emit_devices(run, d->name, s->blocks, s->block_count, m_block);
	emit_devices(run, d->name, s->interfaces, s->interface_count, m_interface);
}

static void result_deliver(struct lv_state *st, struct lv_result *res)
{
	struct probe_run *run = st->run;
	uint64_t suppressed = 0;
	uint64_t failures = 0;

	st->run = NULL;
	if (res->status != PROBE_STATUS_OK) {
		if (throttle_fail(&st->throttle, probe_now_ms(), &suppressed))
			log_warn("libvirt", st->ids, "%s (%llu similar suppressed)", res->reason,
				 (unsigned long long)suppressed);
		probe_run_emit(run, &m_up, NULL, 0, 0);
		probe_run_finish(run, res->status, "%s", res->reason);
		return;
	}
	if (throttle_ok(&st->throttle, &failures))
		log_notice("libvirt", st->ids, "statistics read again after %llu failed runs",
			   (unsigned long long)failures);
	domains_compare(st, res);
	probe_run_emit(run, &m_up, NULL, 0, 1);
	for (size_t i = 0; i < res->domain_count; i++)
		emit_domain(run, &res->domains[i]);
	probe_run_finish(run, PROBE_STATUS_OK, "%s", "");
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct lv_state *st = arg;
	struct lv_result *res;
	uint64_t count;

	(void)what;
	if (read(fd, &count, sizeof count) < 0 && errno != EAGAIN)
		log_warn_errno("libvirt", st->ids, "cannot read the worker's eventfd");
	pthread_mutex_lock(&st->worker->lock);
	res = st->worker->result;
	st->worker->result = NULL;
	pthread_mutex_unlock(&st->worker->lock);
	if (res == NULL)
		return;
	/* A result for a cancelled run is dropped; the run in flight waits for its own. */
	if (st->run != NULL && res->seq == st->waiting_seq)
		result_deliver(st, res);
	result_free(res);
}

/* Starts the worker and its wake-up event at the first run, when the loop is known. */
static int worker_ensure(struct lv_state *st, struct probe_run *run, char *reason, size_t size)
{
	if (st->worker != NULL && event_get_base(st->notify) == probe_run_base(run))
		return 0;
	if (st->worker != NULL) {
		/* The event belongs to the loop of an earlier run: start over on this one. */
		event_free(st->notify);
		st->notify = NULL;
		worker_release(st->worker);
		st->worker = NULL;
	}
	log_ids(st->ids, sizeof st->ids, "probe", probe_run_probe_name(run), "target", st->uri,
		NULL);
	st->worker = worker_start(st, reason, size);
	if (st->worker == NULL)
		return -1;
	st->notify = event_new(probe_run_base(run), st->worker->notify_fd, EV_READ | EV_PERSIST,
			       on_notify, st);
	if (st->notify == NULL || event_add(st->notify, NULL) < 0) {
		snprintf(reason, size, "%s", "cannot register the worker's eventfd");
		if (st->notify != NULL)
			event_free(st->notify);
		st->notify = NULL;
		worker_release(st->worker);
		st->worker = NULL;
		return -1;
	}
	return 0;
}

static void libvirt_start(struct probe_run *run, void *state)
{
	struct lv_state *st = state;
	char reason[LIBVIRT_REASON_MAX];
	bool busy;

	if (worker_ensure(st, run, reason, sizeof reason) < 0) {
		log_error("libvirt", st->ids, "%s", reason);
		probe_run_emit(run, &m_up, NULL, 0, 0);
		probe_run_finish(run, PROBE_STATUS_INTERNAL_ERROR, "%s", reason);
		return;
	}
	st->run = run;
	pthread_mutex_lock(&st->worker->lock);
	st->waiting_seq = ++st->worker->request_seq;
	st->worker->requested = true;
	busy = st->worker->busy;
	pthread_cond_signal(&st->worker->wake);
	pthread_mutex_unlock(&st->worker->lock);
	probe_run_set_phase(run, busy ? "waiting for the previous call" : "collect");
}

/* Sets the run's phase to the worker's step and detaches the run, so the worker finishes
 * its call and the result is discarded. */
static void libvirt_cancel(struct probe_run *run, void *state)
{
	struct lv_state *st = state;
	const char *phase;

	if (st->run == NULL)
		return;
	pthread_mutex_lock(&st->worker->lock);
	if (st->worker->busy && st->worker->busy_seq != st->waiting_seq)
		phase = "waiting for the previous call";
	else
		phase = st->worker->phase;
	pthread_mutex_unlock(&st->worker->lock);
	if (phase != NULL)
		probe_run_set_phase(run, phase);
	/* The run is not finished yet, so its samples still count. */
	probe_run_emit(run, &m_up, NULL, 0, 0);
	st->run = NULL;
}

static void libvirt_free(void *state)
{
	struct lv_state *st = state;

	if (st == NULL)
		return;
	if (st->notify != NULL)
		event_free(st->notify);
	if (st->worker != NULL)
		worker_release(st->worker);
	cfg_strv_free(st->seen);
	cfg_strv_free(st->domains);
	free(st->uri);
	free(st);
}

/* Ignores libvirt's errors here: each call's error is read with virGetLastError. */
static void libvirt_error_ignore(void *data, virErrorPtr error)
{
	(void)data;
	(void)error;
}

static void library_init(void)
{
	static bool initialized;

	if (initialized)
		return;
	initialized = true;
	/* On the loop thread, before any worker thread makes a libvirt call. */
	if (virInitialize() < 0)
		log_warn("libvirt", NULL, "virInitialize failed: %s", error_message());
	/* Without this, libvirt also prints every error on stderr. */
	virSetErrorFunc(NULL, libvirt_error_ignore);
}

static int domains_parse(struct cfg_map *options, struct lv_state *st)
{
	struct cfg_seq seq;
	int got = cfg_get_seq(options, "domains", &seq);
	size_t count;
	int rc = 0;

	if (got <= 0)
		return got;
	count = cfg_seq_count(&seq);
	if (count == 0) {
		cfg_error(options, "domains",
			  "empty list: name at least one domain, or remove domains to read every "
			  "domain");
		return -1;
	}
	st->domains = xcalloc(count + 1, sizeof *st->domains);
	for (size_t i = 0; i < count; i++) {
		char *name = NULL;

		if (cfg_seq_string(&seq, i, &name) < 0) {
			rc = -1;
			continue;
		}
		if (name[0] == '\0') {
			cfg_seq_error(&seq, i, "empty domain name");
			rc = -1;
			free(name);
		} else if (strv_contains(st->domains, st->domain_count, name)) {
			cfg_seq_error(&seq, i, "duplicate domain name '%s'", name);
			rc = -1;
			free(name);
		} else {
			st->domains[st->domain_count++] = name;
		}
	}
	return rc;
}

static int libvirt_parse(struct cfg_map *options, void **state)
{
	struct lv_state *st = xcalloc(1, sizeof *st);
	int got = cfg_get_string(options, "uri", &st->uri);
	int rc = 0;

	if (got == 0) {
		cfg_error(options, NULL,
			  "uri: missing: give the hypervisor's libvirt URI, such as "
			  "qemu:///system");
		rc = -1;
	} else if (got < 0) {
		rc = -1;
	} else if (st->uri[0] == '\0') {
		cfg_error(options, "uri",
			  "empty URI: expected a libvirt URI such as qemu:///system");
		rc = -1;
	}
	if (domains_parse(options, st) < 0)
		rc = -1;
	if (rc < 0) {
		libvirt_free(st);
		return -1;
	}
	throttle_init(&st->throttle, THROTTLE_DEFAULT_INITIAL_MS, THROTTLE_DEFAULT_MAX_MS);
	library_init();
	*state = st;
	return 0;
}

static const char *libvirt_target(const void *state)
{
	const struct lv_state *st = state;

	return st->uri;
}

const struct probe_type probe_type_libvirt = {
    .name = "libvirt",
    .parse = libvirt_parse,
    .start = libvirt_start,
    .cancel = libvirt_cancel,
    .free = libvirt_free,
    .target = libvirt_target,
};
