/*
 * tocsinctl's commands. main.c parses the command line into a struct ctl_context and calls
 * one ctl_run_* function with the positional arguments after the command's name. By then
 * the argument count and the options are checked against the command. Each returns an exit
 * code of enum ctl_exit and prints its own errors.
 */
#ifndef TOCSIN_CTL_COMMANDS_H
#define TOCSIN_CTL_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>

#include "ctl/client.h"

/* The options of every command; NULL or false when not given. */
struct ctl_options {
	bool json;
	bool fail_if_firing;
	const char **matchers; /* --matcher, in the given order */
	size_t matcher_count;
	const char *duration;
	const char *by;
	const char *comment;
	const char *expires;
	const char *time;
	const char *limit;
};

struct ctl_context {
	struct ctl_client client;
	struct ctl_options options;
};

/* status.c: GET /status, GET /probes, POST /reload. */
int ctl_run_status(struct ctl_context *ctx, char **args, size_t count);
int ctl_run_probes(struct ctl_context *ctx, char **args, size_t count);
int ctl_run_reload(struct ctl_context *ctx, char **args, size_t count);

/* alerts.c: GET /alerts with each argument as a filter matcher, POST /acks. */
int ctl_run_alerts(struct ctl_context *ctx, char **args, size_t count);
int ctl_run_ack(struct ctl_context *ctx, char **args, size_t count);

/* silence.c: POST /silences, GET /silences filtered by state, DELETE /silences/ID. */
int ctl_run_silence_add(struct ctl_context *ctx, char **args, size_t count);
int ctl_run_silence_list(struct ctl_context *ctx, char **args, size_t count);
int ctl_run_silence_expire(struct ctl_context *ctx, char **args, size_t count);

/* audit.c: GET /audit, GET /audit/verify. */
int ctl_run_audit(struct ctl_context *ctx, char **args, size_t count);
int ctl_run_audit_verify(struct ctl_context *ctx, char **args, size_t count);

/* query.c: GET /query. */
int ctl_run_query(struct ctl_context *ctx, char **args, size_t count);

#endif
