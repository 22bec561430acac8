/*
 * Fuzz target: the /proc text parsers of the host probe. Every parser reads the same
 * input, so one corpus of stat, meminfo, loadavg, mounts, diskstats and net/dev files
 * reaches all of them. A parse error keeps the good lines, so the result is always freed.
 */
#include "probes/procfs.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size);
	struct procfs_report report;
	struct procfs_stat st;
	struct procfs_meminfo mi;
	struct procfs_loadavg la;
	struct procfs_mounts mounts;
	struct procfs_diskstats disks;
	struct procfs_netdevs nets;

	fuzz_quiet_log();
	memset(&report, 0, sizeof(report));
	(void)procfs_parse_stat(text, &st, &report);
	procfs_stat_free(&st);
	memset(&report, 0, sizeof(report));
	(void)procfs_parse_meminfo(text, &mi, &report);
	procfs_meminfo_free(&mi);
	memset(&report, 0, sizeof(report));
	(void)procfs_parse_loadavg(text, &la, &report);
	memset(&report, 0, sizeof(report));
	(void)procfs_parse_mounts(text, &mounts, &report);
	procfs_mounts_free(&mounts);
	memset(&report, 0, sizeof(report));
	(void)procfs_parse_diskstats(text, &disks, &report);
	procfs_diskstats_free(&disks);
	memset(&report, 0, sizeof(report));
	(void)procfs_parse_netdev(text, &nets, &report);
	procfs_netdevs_free(&nets);
	free(text);
	return 0;
}
