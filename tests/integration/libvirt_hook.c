/*
 * A test hook preloaded into tocsind (LD_PRELOAD) that changes the domains of libvirt's
 * test driver while the daemon runs. Every connection to test:///default in one process
 * shares the driver's state, so a domain this hook stops or undefines is seen stopped or
 * gone by the libvirt probe's own read-only connection.
 *
 * The test writes command files into the directory named by TOCSIN_TEST_LIBVIRT_HOOK_DIR:
 * "1.cmd", "2.cmd", ... each holding "destroy NAME" or "undefine NAME". The hook runs
 * them in order over a read-write connection and writes "N.done" with "ok" or the
 * error. It polls for at most 60 s and then stops.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define HOOK_POLL_NS 20000000L
#define HOOK_POLLS   3000

static char hook_dir[512];

/* Runs one command; returns NULL on success or libvirt's error message. */
static const char *hook_run(const char *action, const char *name)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int rc = -1;
	static char error[512];

	if (strcmp(action, "destroy") != 0 && strcmp(action, "undefine") != 0)
		return "unknown action: expected destroy or undefine";
	conn = virConnectOpen("test:///default");
	if (conn == NULL)
		return "cannot open test:///default";
	dom = virDomainLookupByName(conn, name);
	if (dom != NULL) {
		if (strcmp(action, "destroy") == 0)
			rc = virDomainDestroy(dom);
		else
			rc = virDomainUndefine(dom);
		virDomainFree(dom);
	}
	snprintf(error, sizeof error, "%s %s failed: %s", action, name, virGetLastErrorMessage());
	virConnectClose(conn);
	return rc == 0 ? NULL : error;
}

static void *hook_main(void *unused)
{
	sigset_t all;
	int next = 1;

	(void)unused;
	/* Signals stay with tocsind's own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	for (int poll = 0; poll < HOOK_POLLS; poll++) {
		struct timespec pause = {0, HOOK_POLL_NS};
		char path[600];
		char action[32];
		char name[256];
		const char *error;
		FILE *f;
		int fields;

		snprintf(path, sizeof path, "%s/%d.cmd", hook_dir, next);
		f = fopen(path, "r");
		if (f == NULL) {
			nanosleep(&pause, NULL);
			continue;
		}
		fields = fscanf(f, "%31s %255s", action, name);
		fclose(f);
		error = fields == 2 ? hook_run(action, name) : "expected: ACTION DOMAIN";
		snprintf(path, sizeof path, "%s/%d.done", hook_dir, next);
		f = fopen(path, "w");
		if (f != NULL) {
			fprintf(f, "%s\n", error != NULL ? error : "ok");
			fclose(f);
		}
		next++;
	}
	return NULL;
}

__attribute__((constructor)) static void hook_start(void)
{
	const char *dir = getenv("TOCSIN_TEST_LIBVIRT_HOOK_DIR");
	pthread_t thread;

	if (dir == NULL || strlen(dir) >= sizeof hook_dir)
		return;
	snprintf(hook_dir, sizeof hook_dir, "%s", dir);
	if (pthread_create(&thread, NULL, hook_main, NULL) == 0)
		pthread_detach(thread);
}
