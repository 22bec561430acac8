/*
 * Retry delays: full-jitter exponential back-off and Retry-After (see backoff.h).
 */
#include "alerter/backoff.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The cap of retry number `retry`: initial_ms * 2^retry, at most max_ms, without overflow. */
static int64_t backoff_cap(const struct backoff_policy *p, unsigned retry)
{
	int64_t cap = p->initial_ms > 0 ? p->initial_ms : 0;

	for (unsigned i = 0; i < retry && cap < p->max_ms; i++) {
		if (cap > INT64_MAX / 2)
			return p->max_ms;
		cap *= 2;
	}
	return cap < p->max_ms ? cap : p->max_ms;
}

int64_t backoff_delay(const struct backoff_policy *p, unsigned retry, backoff_random_fn *random,
		      void *random_arg)
{
	int64_t cap = backoff_cap(p, retry);
	unsigned __int128 scaled;

	if (cap <= 0)
		return 0;
	/*
	 * Multiply and keep the high 64 bits: this maps [0, 2^64) onto [0, cap] in order,
	 * with a bias below cap / 2^64, far less than a millisecond for any real cap.
	 */
	scaled = (unsigned __int128)random(random_arg) * ((unsigned __int128)cap + 1);
	return (int64_t)(scaled >> 64);
}

int64_t backoff_retry_after(const struct backoff_policy *p, int64_t retry_after_ms)
{
	if (retry_after_ms <= 0)
		return 0;
	return retry_after_ms < p->max_ms ? retry_after_ms : p->max_ms;
}

int64_t backoff_next_attempt(const struct backoff_policy *p, int64_t created_ms, int64_t now_ms,
			     int64_t delay_ms)
{
	int64_t next = now_ms + (delay_ms > 0 ? delay_ms : 0);

	if (p->max_age_ms > 0 && next > created_ms + p->max_age_ms)
		next = created_ms + p->max_age_ms;
	return next > now_ms ? next : now_ms;
}

bool backoff_expired(const struct backoff_policy *p, int64_t created_ms, int64_t now_ms)
{
	return p->max_age_ms > 0 && now_ms - created_ms >= p->max_age_ms;
}

void backoff_random_seed(struct backoff_random *r, uint64_t seed)
{
	r->state = seed;
}

int backoff_random_seed_system(struct backoff_random *r)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed) {
		r->state = seed;
		return 0;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	r->state = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	r->state ^= (uint64_t)getpid() << 32;
	return -1;
}

/* splitmix64: a counter stepped by an odd constant, then mixed by two multiply-xorshifts. */
uint64_t backoff_random_next(void *arg)
{
	struct backoff_random *r = arg;
	uint64_t z = (r->state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}
