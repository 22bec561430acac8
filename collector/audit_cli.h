/*
 * `tocsind --audit ACTION`: lists and verifies the audit trail in the state database of
 * the configured state_dir, from the command line and without a running daemon.
 */
#ifndef TOCSIN_AUDIT_CLI_H
#define TOCSIN_AUDIT_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* True when the arguments contain --audit, so main() hands them to audit_cli_main(). */
bool audit_cli_requested(int argc, char **argv);

/*
 * Parses the whole command line (--audit ACTION, --limit, --config, --data-dir and
 * --log-level) and runs the action. Returns the exit status: 0 on success, 1 when the
 * audit trail is broken or the config or the database cannot be read, 2 for a
 * command-line error.
 */
int audit_cli_main(int argc, char **argv);

/* Writes the help of the --audit actions. */
void audit_cli_usage(FILE *out);

#endif
