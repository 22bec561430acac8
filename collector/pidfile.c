/*
 * PID file; see pidfile.h. A process counts as running when kill(pid, 0) succeeds or
 * fails with EPERM (it exists but belongs to another user).
 */
#include "collector/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/log.h"
#include "collector/xalloc.h"

/* Attempts to create the file; each stale file removed costs one. */
#define PIDFILE_ATTEMPTS 3

struct pidfile {
	char *path;
	dev_t dev;
	ino_t ino;
};

/* Reads the PID in the file; 0 when it contains none (empty, invalid, unreadable). */
static long read_pid(const char *path)
{
	char buf[32];
	char *end;
	long pid;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || pid <= 0)
		return 0;
	return pid;
}

static bool process_running(long pid)
{
	return pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* Writes the PID into the new file `fd`; 0, or -1 with *error set. */
static int write_pid(struct pidfile *pf, int fd, char **error)
{
	char buf[32];
	int length = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	struct stat st;

	if (write(fd, buf, (size_t)length) != length || fstat(fd, &st) < 0) {
		*error = xasprintf("--pid-file: cannot write %s: %s", pf->path, strerror(errno));
		unlink(pf->path);
		return -1;
	}
	pf->dev = st.st_dev;
	pf->ino = st.st_ino;
	return 0;
}

struct pidfile *pidfile_create(const char *path, char **error)
{
	struct pidfile *pf = xcalloc(1, sizeof *pf);

	pf->path = xstrdup(path);
	for (int attempt = 0; attempt < PIDFILE_ATTEMPTS; attempt++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		long pid;

		if (fd >= 0) {
			int rc = write_pid(pf, fd, error);

			close(fd);
			if (rc == 0)
				return pf;
			goto fail;
		}
		if (errno != EEXIST) {
			*error = xasprintf("--pid-file: cannot create %s: %s; choose a path in a "
					   "directory that exists and that this user can write",
					   path, strerror(errno));
			goto fail;
		}
		pid = read_pid(path);
		if (pid > 0 && process_running(pid)) {
			*error = xasprintf("--pid-file: %s names process %ld, which is running; "
					   "stop that tocsind first, or give this one another "
					   "--pid-file",
					   path, pid);
			goto fail;
		}
		if (pid > 0)
			log_notice("daemon", NULL,
				   "replacing %s, left by process %ld, which is gone", path, pid);
		else
			log_notice("daemon", NULL,
				   "replacing %s, which contains no valid process ID", path);
		if (unlink(path) < 0 && errno != ENOENT) {
			*error = xasprintf("--pid-file: cannot remove the stale %s: %s", path,
					   strerror(errno));
			goto fail;
		}
	}
	*error = xasprintf("--pid-file: %s was created again by another process each time it "
			   "was removed; is another tocsind starting with the same --pid-file?",
			   path);
fail:
	free(pf->path);
	free(pf);
	return NULL;
}

void pidfile_remove(struct pidfile *pf)
{
	struct stat st;

	if (pf == NULL)
		return;
	/* Another process may have replaced the file: remove only ours. */
	if (stat(pf->path, &st) == 0 && st.st_dev == pf->dev && st.st_ino == pf->ino &&
	    unlink(pf->path) < 0)
		log_warn_errno("daemon", NULL,
			       "cannot remove the PID file %s (the next start replaces it); put "
			       "it in a directory that the service user can write",
			       pf->path);
	free(pf->path);
	free(pf);
}
