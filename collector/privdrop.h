/*
 * Privilege drop for a tocsind started as root. The data and state directories are given
 * to the service user first. Then every thread switches to that user and its groups, and
 * the event loop thread may keep CAP_NET_RAW for raw ICMP sockets. Called once at start-up,
 * after the HTTP listener is bound and before the event loop runs.
 */
#ifndef TOCSIN_PRIVDROP_H
#define TOCSIN_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

struct privdrop_user {
	char *name;
	uid_t uid;
	gid_t gid; /* the user's primary group */
};

/*
 * Looks `name` up in the passwd database. Returns 0, or -1 with *error set (caller frees)
 * naming the user, `source` (such as "--user") and the fix.
 */
int privdrop_lookup(const char *name, const char *source, struct privdrop_user *user, char **error);
void privdrop_user_free(struct privdrop_user *user);

/*
 * Changes the owner of `dir` and of everything below it to the user, skipping entries it
 * already owns. Symbolic links change themselves, not their targets, and the walk stays on
 * one file system. A missing directory is not an error. Rejects "/" and sticky
 * world-writable directories such as /tmp, which are never tocsin's own. Returns 0, or -1
 * with *error set.
 */
int privdrop_chown_tree(const char *dir, const struct privdrop_user *user, char **error);

/*
 * Sets the supplementary groups (the user's, from the group database), the group and the
 * user IDs (real, effective and saved) of every thread. With keep_net_raw, the calling
 * thread keeps CAP_NET_RAW in its permitted and effective sets and loses every other
 * capability; processes it executes do not inherit it. Then checks that root cannot be
 * regained. Returns 0, or -1 with *error set; the process must exit on -1.
 */
int privdrop_switch(const struct privdrop_user *user, bool keep_net_raw, char **error);

/* Whether the calling thread has CAP_NET_RAW in its effective set. */
bool privdrop_has_net_raw(void);

#endif
