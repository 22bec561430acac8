/*
 * Secret files; see secret.h.
 */
#include "collector/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/cfg.h"
#include "collector/xalloc.h"

/* Opens path read-only and checks it is a regular file closed to others; -1 on error. */
static int secret_open(struct cfg_map *m, const char *key, const char *path)
{
	char q[CFG_QUOTE_SIZE];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	cfg_quote(path, q, sizeof(q));
	if (fd < 0) {
		cfg_error(m, key, "cannot open %s: %s", q, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cfg_error(m, key, "%s is not a regular file", q);
		close(fd);
		return -1;
	}
	if ((st.st_mode & S_IRWXO) != 0) {
		cfg_error(m, key, "%s is accessible by others (mode %04o); run chmod o-rwx on it",
			  q, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	return fd;
}

char *secret_read_file(struct cfg_map *m, const char *key, const char *path, size_t max)
{
	char q[CFG_QUOTE_SIZE];
	char *buf = xmalloc(max + 2);
	size_t len = 0;
	ssize_t n;
	char *secret = NULL;
	int fd = secret_open(m, key, path);

	if (fd < 0)
		goto out;
	cfg_quote(path, q, sizeof(q));
	while (len < max + 1 && (n = read(fd, buf + len, max + 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len > max) {
		cfg_error(m, key, "%s is longer than %zu bytes", q, max);
		goto out;
	}

	/* One line: the line break editors and echo add is not part of the secret. */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\0', len) != NULL || strpbrk(buf, "\r\n") != NULL) {
		cfg_error(m, key, "%s must hold one line of text", q);
		goto out;
	}
	secret = xstrdup(buf);
out:
	explicit_bzero(buf, max + 2);
	free(buf);
	return secret;
}

void secret_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}
