/*
 * Privilege drop; see privdrop.h. Capabilities are set with the raw capget/capset system
 * calls so that tocsind needs no libcap. The switch relies on glibc applying setgroups,
 * setresgid and setresuid to every thread of the process (it signals each thread to make
 * the same call), so the store's writer thread and the other workers switch too. They
 * lose every capability, because only the calling thread sets PR_SET_KEEPCAPS.
 */
#include "collector/privdrop.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "collector/log.h"
#include "collector/xalloc.h"

int privdrop_lookup(const char *name, const char *source, struct privdrop_user *user, char **error)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH)
			*error = xasprintf("%s: cannot look up user \"%s\": %s", source, name,
					   strerror(errno));
		else
			*error = xasprintf("%s: user \"%s\" does not exist; create it with "
					   "`useradd --system --home-dir /var/lib/tocsin --shell "
					   "/usr/sbin/nologin %s` or name an existing user",
					   source, name, name);
		return -1;
	}
	user->name = xstrdup(pw->pw_name);
	user->uid = pw->pw_uid;
	user->gid = pw->pw_gid;
	return 0;
}

void privdrop_user_free(struct privdrop_user *user)
{
	free(user->name);
	user->name = NULL;
}

/* nftw() passes no argument to its callback, hence these; start-up runs one walk. */
static uid_t walk_uid;
static gid_t walk_gid;
static char *walk_error;

static int chown_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_NS || type == FTW_DNR) {
		walk_error = xasprintf("cannot read %s: %s", path, strerror(errno));
		return 1;
	}
	if (st->st_uid == walk_uid && st->st_gid == walk_gid)
		return 0;
	if (lchown(path, walk_uid, walk_gid) < 0) {
		walk_error = xasprintf("cannot change the owner of %s: %s", path, strerror(errno));
		return 1;
	}
	return 0;
}

int privdrop_chown_tree(const char *dir, const struct privdrop_user *user, char **error)
{
	struct stat st;

	if (lstat(dir, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		*error = xasprintf("cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		*error = xasprintf("%s is not a directory", dir);
		return -1;
	}
	if (strcmp(dir, "/") == 0 || ((st.st_mode & S_ISVTX) && (st.st_mode & S_IWOTH))) {
		*error = xasprintf("%s is a shared directory; give tocsin a directory of its own "
				   "(data_dir, state_dir) so that it can own it",
				   dir);
		return -1;
	}
	walk_uid = user->uid;
	walk_gid = user->gid;
	walk_error = NULL;
	if (nftw(dir, chown_entry, 16, FTW_PHYS | FTW_MOUNT) != 0) {
		*error = walk_error != NULL ? walk_error
					    : xasprintf("cannot walk %s: %s", dir, strerror(errno));
		walk_error = NULL;
		return -1;
	}
	return 0;
}

static int cap_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};

	return (int)syscall(SYS_capget, &header, data);
}

static int cap_set(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3};

	return (int)syscall(SYS_capset, &header, data);
}

bool privdrop_has_net_raw(void)
{
	struct __user_cap_data_struct data[2] = {0};

	if (cap_get(data) < 0)
		return false;
	return (data[CAP_TO_INDEX(CAP_NET_RAW)].effective & CAP_TO_MASK(CAP_NET_RAW)) != 0;
}

/* Keeps only CAP_NET_RAW, permitted and effective, in the calling thread. */
static int keep_only_net_raw(void)
{
	struct __user_cap_data_struct data[2] = {0};

	data[CAP_TO_INDEX(CAP_NET_RAW)].permitted = CAP_TO_MASK(CAP_NET_RAW);
	data[CAP_TO_INDEX(CAP_NET_RAW)].effective = CAP_TO_MASK(CAP_NET_RAW);
	return cap_set(data);
}

/* Checks that the switch took on every ID and cannot be undone. */
static int verify_switch(const struct privdrop_user *user, char **error)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != user->uid || euid != user->uid || suid != user->uid || rgid != user->gid ||
	    egid != user->gid || sgid != user->gid) {
		*error = xasprintf("after switching to user \"%s\" the process IDs are uid "
				   "%u/%u/%u gid %u/%u/%u instead of uid %u gid %u",
				   user->name, (unsigned)ruid, (unsigned)euid, (unsigned)suid,
				   (unsigned)rgid, (unsigned)egid, (unsigned)sgid,
				   (unsigned)user->uid, (unsigned)user->gid);
		return -1;
	}
	if (user->uid != 0 && setuid(0) == 0) {
		*error = xasprintf("root privileges were regained after switching to user \"%s\"",
				   user->name);
		return -1;
	}
	if (user->gid != 0 && setgid(0) == 0) {
		*error =
		    xasprintf("group root was regained after switching to user \"%s\"", user->name);
		return -1;
	}
	return 0;
}

int privdrop_switch(const struct privdrop_user *user, bool keep_net_raw, char **error)
{
	if (keep_net_raw && prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0) {
		*error = xasprintf("cannot keep capabilities across the user switch: %s",
				   strerror(errno));
		return -1;
	}
	if (initgroups(user->name, user->gid) < 0) {
		*error = xasprintf("cannot set the supplementary groups of user \"%s\": %s",
				   user->name, strerror(errno));
		return -1;
	}
	if (setresgid(user->gid, user->gid, user->gid) < 0) {
		*error = xasprintf("cannot switch to group %u of user \"%s\": %s",
				   (unsigned)user->gid, user->name, strerror(errno));
		return -1;
	}
	if (setresuid(user->uid, user->uid, user->uid) < 0) {
		*error = xasprintf("cannot switch to user \"%s\" (uid %u): %s", user->name,
				   (unsigned)user->uid, strerror(errno));
		return -1;
	}
	if (keep_net_raw) {
		prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
		if (keep_only_net_raw() < 0) {
			*error = xasprintf("cannot keep CAP_NET_RAW as user \"%s\": %s", user->name,
					   strerror(errno));
			return -1;
		}
	}
	return verify_switch(user, error);
}
