/*
 * The --pid-file: created with O_EXCL so that two daemons never share one, holding the
 * process ID and a newline. A file left by a process that is gone is replaced; a file
 * naming a running process makes the start fail.
 */
#ifndef TOCSIN_PIDFILE_H
#define TOCSIN_PIDFILE_H

struct pidfile;

/*
 * Creates `path` with this process's ID. Returns the handle, or NULL with *error set
 * (caller frees) naming the path, the running process named in it or the system error,
 * and the fix.
 */
struct pidfile *pidfile_create(const char *path, char **error);

/*
 * Removes the file when it is still the one pidfile_create() wrote (logging a warning
 * when that fails) and frees the handle. NULL is a no-op.
 */
void pidfile_remove(struct pidfile *pf);

#endif
