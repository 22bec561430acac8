/*
 * Tests of the libvirt probe's parts that need no hypervisor: option parsing and its
 * error messages, reading bulk statistics records built by hand, and finding device
 * names in domain XML descriptions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"
#include "probes/libvirt.h"
#include "probes/probe.h"

/* Options */

/* Parses `yaml` as the probe's options; returns the recorded errors (owned) and rc. */
static char *parse_options(const char *yaml, void **state, int *rc)
{
	const struct probe_type *type = probe_type_find("libvirt");
	struct cfg *cfg = cfg_parse_string("test.yml", yaml, strlen(yaml));
	struct cfg_map root;
	char *errors;

	assert_non_null(type);
	assert_int_equal(cfg_error_count(cfg), 0);
	assert_int_equal(cfg_root(cfg, &root), 0);
	*state = NULL;
	*rc = type->parse(&root, state);
	cfg_map_finish(&root);
	errors = xstrdup(cfg_errors(cfg));
	cfg_free(cfg);
	return errors;
}

static void options_valid(void **unused)
{
	const struct probe_type *type = probe_type_find("libvirt");
	void *state;
	int rc;
	char *errors = parse_options("uri: qemu:///system\ndomains: [web, db]\n", &state, &rc);

	(void)unused;
	assert_int_equal(rc, 0);
	assert_string_equal(errors, "");
	assert_non_null(state);
	assert_string_equal(type->target(state), "qemu:///system");
	type->free(state);
	free(errors);
}

/* Each invalid option and the part of the message that names the key, value or fix. */
static const struct {
	const char *yaml;
	const char *message;
} option_errors[] = {
    {"domains: [web]\n", "uri: missing: give the hypervisor's libvirt URI"},
    {"uri: ''\n", "test.yml:1:6: uri: empty URI"},
    {"uri: [a, b]\n", "uri:"},
    {"uri: test:///default\ndomains: []\n", "domains: empty list"},
    {"uri: test:///default\ndomains: web\n", "domains: expected a sequence"},
    {"uri: test:///default\ndomains: [web, '']\n", "domains[1]: empty domain name"},
    {"uri: test:///default\ndomains: [web, db, web]\n", "domains[2]: duplicate domain name 'web'"},
    {"uri: test:///default\ndomain: [web]\n", "domain: unknown key"},
};

static void options_errors_name_value(void **unused)
{
	(void)unused;
	for (size_t i = 0; i < sizeof option_errors / sizeof option_errors[0]; i++) {
		void *state;
		int rc;
		char *errors = parse_options(option_errors[i].yaml, &state, &rc);

		if (strstr(errors, option_errors[i].message) == NULL)
			fail_msg("case %zu: expected \"%s\" in \"%s\"", i, option_errors[i].message,
				 errors);
		/* An unknown key is reported by cfg_map_finish, after parse succeeded. */
		if (strstr(option_errors[i].yaml, "domain:") == NULL) {
			assert_int_equal(rc, -1);
			assert_null(state);
		} else {
			probe_type_find("libvirt")->free(state);
		}
		free(errors);
	}
}

/* Bulk statistics records */

static virTypedParameter param_ull(const char *field, unsigned long long value)
{
	virTypedParameter p;

	memset(&p, 0, sizeof p);
	snprintf(p.field, sizeof p.field, "%s", field);
	p.type = VIR_TYPED_PARAM_ULLONG;
	p.value.ul = value;
	return p;
}

static virTypedParameter param_int(const char *field, int value)
{
	virTypedParameter p;

	memset(&p, 0, sizeof p);
	snprintf(p.field, sizeof p.field, "%s", field);
	p.type = VIR_TYPED_PARAM_INT;
	p.value.i = value;
	return p;
}

static virTypedParameter param_uint(const char *field, unsigned value)
{
	virTypedParameter p;

	memset(&p, 0, sizeof p);
	snprintf(p.field, sizeof p.field, "%s", field);
	p.type = VIR_TYPED_PARAM_UINT;
	p.value.ui = value;
	return p;
}

static virTypedParameter param_string(const char *field, char *value)
{
	virTypedParameter p;

	memset(&p, 0, sizeof p);
	snprintf(p.field, sizeof p.field, "%s", field);
	p.type = VIR_TYPED_PARAM_STRING;
	p.value.s = value;
	return p;
}

static void record_domain_fields(void **unused)
{
	virTypedParameter params[] = {
	    param_int("state.state", 3),          param_int("state.reason", 1),
	    param_ull("cpu.time", 2500000000ull), param_ull("cpu.user", 1),
	    param_uint("vcpu.current", 4),        param_uint("vcpu.maximum", 8),
	    param_ull("balloon.current", 1024),   param_ull("balloon.maximum", 4096),
	};
	struct libvirt_domain_stats s;

	(void)unused;
	libvirt_stats_from_params(params, sizeof params / sizeof params[0], &s);
	assert_true(s.has_state);
	assert_int_equal(s.state, 3);
	assert_true(s.has_cpu_time);
	assert_int_equal(s.cpu_time_ns, 2500000000ull);
	assert_true(s.has_vcpus);
	assert_int_equal(s.vcpus, 4);
	assert_true(s.has_memory);
	assert_int_equal(s.memory_kib, 1024);
	assert_true(s.has_max_memory);
	assert_int_equal(s.max_memory_kib, 4096);
	/* No block.count or net.count: the groups are missing, not empty. */
	assert_false(s.has_blocks);
	assert_false(s.has_interfaces);
	assert_int_equal(s.block_count, 0);
	libvirt_domain_stats_clear(&s);
}

static void record_vcpu_times(void **unused)
{
	char vcpu_number_field[VIR_TYPED_PARAM_FIELD_LENGTH];
	/* vCPU 1 is offline (no time), one time has the wrong type, other fields are ignored. */
	virTypedParameter params[] = {
	    param_uint("vcpu.current", 3), param_uint("vcpu.maximum", 4),
	    param_int("vcpu.0.state", 1),  param_ull("vcpu.0.time", 1500000000ull),
	    param_ull("vcpu.0.wait", 7),   param_ull("vcpu.2.time", 42),
	    param_int("vcpu.1.state", 0),  param_string("vcpu.3.time", NULL),
	    param_ull("vcpu.x.time", 1),   param_ull("vcpu.0.timex", 1),
	    param_ull("vcpu.0", 1),        param_ull("vcpu.4096.time", 1),
	};
	struct libvirt_domain_stats s;

	(void)unused;
	snprintf(vcpu_number_field, sizeof vcpu_number_field, "vcpu.%d.time", LIBVIRT_VCPUS_MAX);
	params[11] = param_ull(vcpu_number_field, 1);
	libvirt_stats_from_params(params, sizeof params / sizeof params[0], &s);
	assert_true(s.has_vcpus);
	assert_int_equal(s.vcpus, 3);
	assert_true(s.has_vcpu_times);
	assert_int_equal(s.vcpu_time_count, 3);
	assert_true(s.vcpu_times[0].has_time);
	assert_int_equal(s.vcpu_times[0].time_ns, 1500000000ull);
	assert_false(s.vcpu_times[1].has_time);
	assert_true(s.vcpu_times[2].has_time);
	assert_int_equal(s.vcpu_times[2].time_ns, 42);
	libvirt_domain_stats_clear(&s);
	assert_null(s.vcpu_times);
	assert_int_equal(s.vcpu_time_count, 0);
}

static void record_state_only(void **unused)
{
	virTypedParameter params[] = {param_int("state.state", 1), param_int("state.reason", 0)};
	struct libvirt_domain_stats s;

	(void)unused;
	libvirt_stats_from_params(params, 2, &s);
	assert_true(s.has_state);
	assert_false(s.has_cpu_time);
	assert_false(s.has_vcpus);
	assert_false(s.has_vcpu_times);
	assert_false(s.has_memory);
	assert_false(s.has_max_memory);
	libvirt_domain_stats_clear(&s);
}

static void record_devices(void **unused)
{
	char vda[] = "vda";
	char sdb[] = "sdb";
	char vnet[] = "vnet0";
	/* Out of order, with a field of the wrong type and one unknown field. */
	virTypedParameter params[] = {
	    param_ull("block.count", 2),        param_ull("block.1.rd.bytes", 700),
	    param_string("block.1.name", sdb),  param_string("block.0.name", vda),
	    param_ull("block.0.rd.bytes", 100), param_ull("block.0.wr.bytes", 200),
	    param_ull("block.0.rd.reqs", 3),    param_ull("block.0.wr.reqs", 4),
	    param_ull("block.0.fl.reqs", 9),    param_string("block.1.wr.bytes", sdb),
	    param_uint("net.count", 1),         param_string("net.0.name", vnet),
	    param_ull("net.0.rx.bytes", 10),    param_ull("net.0.tx.bytes", 20),
	    param_ull("net.0.rx.pkts", 1),      param_ull("net.0.tx.pkts", 2),
	    param_ull("net.0.rx.errs", 5),
	};
	struct libvirt_domain_stats s;

	(void)unused;
	libvirt_stats_from_params(params, sizeof params / sizeof params[0], &s);
	assert_true(s.has_blocks);
	assert_int_equal(s.block_count, 2);
	assert_string_equal(s.blocks[0].name, "vda");
	assert_int_equal(s.blocks[0].counters[LIBVIRT_COUNTER_BYTES_IN], 100);
	assert_int_equal(s.blocks[0].counters[LIBVIRT_COUNTER_BYTES_OUT], 200);
	assert_int_equal(s.blocks[0].counters[LIBVIRT_COUNTER_OPS_IN], 3);
	assert_int_equal(s.blocks[0].counters[LIBVIRT_COUNTER_OPS_OUT], 4);
	assert_int_equal(s.blocks[0].present, (1u << LIBVIRT_COUNTER_COUNT) - 1);
	assert_string_equal(s.blocks[1].name, "sdb");
	assert_int_equal(s.blocks[1].counters[LIBVIRT_COUNTER_BYTES_IN], 700);
	/* The string-typed wr.bytes is ignored. */
	assert_int_equal(s.blocks[1].present, 1u << LIBVIRT_COUNTER_BYTES_IN);

	assert_true(s.has_interfaces);
	assert_int_equal(s.interface_count, 1);
	assert_string_equal(s.interfaces[0].name, "vnet0");
	assert_int_equal(s.interfaces[0].counters[LIBVIRT_COUNTER_BYTES_IN], 10);
	assert_int_equal(s.interfaces[0].counters[LIBVIRT_COUNTER_BYTES_OUT], 20);
	assert_int_equal(s.interfaces[0].counters[LIBVIRT_COUNTER_OPS_IN], 1);
	assert_int_equal(s.interfaces[0].counters[LIBVIRT_COUNTER_OPS_OUT], 2);
	libvirt_domain_stats_clear(&s);
	assert_null(s.blocks);
	assert_int_equal(s.block_count, 0);
}

static void record_device_index_bounds(void **unused)
{
	char name[] = "vdz";
	char index_field[VIR_TYPED_PARAM_FIELD_LENGTH];
	virTypedParameter params[4];
	struct libvirt_domain_stats s;

	(void)unused;
	snprintf(index_field, sizeof index_field, "block.%d.name", LIBVIRT_DEVICES_MAX);
	params[0] = param_string(index_field, name);
	params[1] = param_ull("block.x.rd.bytes", 1);
	params[2] = param_ull("block.-1.rd.bytes", 1);
	params[3] = param_ull("block.2", 1);
	libvirt_stats_from_params(params, 4, &s);
	assert_int_equal(s.block_count, 0);
	libvirt_domain_stats_clear(&s);

	/* The last index that fits creates every device before it, unnamed. */
	snprintf(index_field, sizeof index_field, "block.%d.name", LIBVIRT_DEVICES_MAX - 1);
	params[0] = param_string(index_field, name);
	libvirt_stats_from_params(params, 1, &s);
	assert_int_equal(s.block_count, LIBVIRT_DEVICES_MAX);
	assert_null(s.blocks[0].name);
	assert_string_equal(s.blocks[LIBVIRT_DEVICES_MAX - 1].name, "vdz");
	libvirt_domain_stats_clear(&s);
}

/* Domain XML */

/* As virDomainGetXMLDesc formats the test driver's default domain, shortened. */
static const char domain_xml[] = "<domain type='test' id='1'>\n"
				 "  <name>test</name>\n"
				 "  <devices>\n"
				 "    <disk type='file' device='disk'>\n"
				 "      <source file='/guest/diskimage1'/>\n"
				 "      <target dev='vda' bus='virtio'/>\n"
				 "    </disk>\n"
				 "    <disk type='file' device='cdrom'>\n"
				 "      <target bus='sata' dev=\"sda\"/>\n"
				 "      <readonly/>\n"
				 "    </disk>\n"
				 "    <disk type='block' device='disk'/>\n"
				 "    <interface type='network'>\n"
				 "      <mac address='aa:bb:cc:dd:ee:ff'/>\n"
				 "      <source network='default'/>\n"
				 "      <target dev='vnet&amp;1'/>\n"
				 "    </interface>\n"
				 "    <interface type='user'>\n"
				 "      <model type='virtio'/>\n"
				 "    </interface>\n"
				 "    <interfaces_note dev='no'/>\n"
				 "  </devices>\n"
				 "</domain>\n";

static void xml_disk_targets(void **unused)
{
	char **names;
	size_t count = libvirt_xml_targets(domain_xml, "disk", &names);

	(void)unused;
	assert_int_equal(count, 2);
	assert_string_equal(names[0], "vda");
	assert_string_equal(names[1], "sda");
	assert_null(names[2]);
	cfg_strv_free(names);
}

static void xml_interface_targets(void **unused)
{
	char **names;
	size_t count = libvirt_xml_targets(domain_xml, "interface", &names);

	(void)unused;
	/* The interface without <target> (user networking) has no device name. */
	assert_int_equal(count, 1);
	assert_string_equal(names[0], "vnet&1");
	assert_null(names[1]);
	cfg_strv_free(names);
}

static void xml_without_devices(void **unused)
{
	char **names = (char **)1;

	(void)unused;
	assert_int_equal(libvirt_xml_targets("<domain><name>x</name></domain>", "disk", &names), 0);
	assert_null(names);
	/* Truncated input ends the scan instead of reading past it. */
	assert_int_equal(
	    libvirt_xml_targets("<disk type='file'><target dev='vda'/>", "disk", &names), 0);
	assert_null(names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(options_valid),
	    cmocka_unit_test(options_errors_name_value),
	    cmocka_unit_test(record_domain_fields),
	    cmocka_unit_test(record_state_only),
	    cmocka_unit_test(record_vcpu_times),
	    cmocka_unit_test(record_devices),
	    cmocka_unit_test(record_device_index_bounds),
	    cmocka_unit_test(xml_disk_targets),
	    cmocka_unit_test(xml_interface_targets),
	    cmocka_unit_test(xml_without_devices),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
