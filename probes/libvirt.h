/*
 * The libvirt probe's pure parts, declared for its unit tests: reading one domain's
 * bulk statistics record (virConnectGetAllDomainStats) into a struct, and finding the
 * device names of a domain's XML description. Neither calls libvirt.
 */
#ifndef TOCSIN_LIBVIRT_H
#define TOCSIN_LIBVIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

/* Counters of one disk or network interface, in this order for each kind. */
enum libvirt_counter {
	LIBVIRT_COUNTER_BYTES_IN,  /* block: rd.bytes, interface: rx.bytes */
	LIBVIRT_COUNTER_BYTES_OUT, /* block: wr.bytes, interface: tx.bytes */
	LIBVIRT_COUNTER_OPS_IN,    /* block: rd.reqs, interface: rx.pkts */
	LIBVIRT_COUNTER_OPS_OUT,   /* block: wr.reqs, interface: tx.pkts */
	LIBVIRT_COUNTER_COUNT,
};

struct libvirt_device {
	char *name; /* target device ("vda", "vnet0"); NULL when the record lacks it */
	uint64_t counters[LIBVIRT_COUNTER_COUNT];
	unsigned present; /* bit (1 << enum libvirt_counter) per counter the driver reported */
};

/* CPU time of one virtual CPU; has_time is false for a vCPU the driver gave no time for. */
struct libvirt_vcpu {
	bool has_time;
	uint64_t time_ns;
};

/* One domain's figures; each has_* flag is true when the driver reported the field. */
struct libvirt_domain_stats {
	bool has_state;
	int state; /* a virDomainState value */
	bool has_cpu_time;
	uint64_t cpu_time_ns;
	bool has_vcpus;
	uint64_t vcpus;
	bool has_vcpu_times;             /* at least one vcpu.N.time was reported */
	struct libvirt_vcpu *vcpu_times; /* indexed by vCPU number */
	size_t vcpu_time_count;
	bool has_memory;
	uint64_t memory_kib; /* current balloon size */
	bool has_max_memory;
	uint64_t max_memory_kib;
	bool has_blocks; /* the record had the block group (block.count), maybe with 0 disks */
	struct libvirt_device *blocks;
	size_t block_count;
	bool has_interfaces; /* the record had the interface group (net.count) */
	struct libvirt_device *interfaces;
	size_t interface_count;
};

/* Most devices of one kind read from a record or an XML description; more are ignored. */
#define LIBVIRT_DEVICES_MAX 1024
/* vCPU numbers from this one on are ignored, which bounds the array indexed by vCPU number. */
#define LIBVIRT_VCPUS_MAX 4096

/*
 * Fills `out` (zeroed first) from a bulk statistics record's typed parameters: state.state,
 * cpu.time, vcpu.current, vcpu.N.time, balloon.current, balloon.maximum, block.* and
 * net.*. Fields of an unexpected type, device indexes of LIBVIRT_DEVICES_MAX or more and
 * vCPU numbers of LIBVIRT_VCPUS_MAX or more are ignored.
 * Release with libvirt_domain_stats_clear().
 */
void libvirt_stats_from_params(const virTypedParameter *params, int count,
			       struct libvirt_domain_stats *out);
void libvirt_domain_stats_clear(struct libvirt_domain_stats *stats);

/*
 * Finds the `dev` attribute of the <target> element inside each `element` ("disk" or
 * "interface") of a domain's XML description, in document order. Returns the number of
 * names and sets *names to a NULL-terminated array (free it with cfg_strv_free), or
 * returns 0 and sets *names to NULL when there is none.
 */
size_t libvirt_xml_targets(const char *xml, const char *element, char ***names);

#endif
