/*
 * `tocsind --silence ACTION`: adds, lists and expires silences in the state database of
 * the configured state_dir, from the command line and without a running daemon. A
 * running tocsind picks the changes up when its alerter refreshes its silence set.
 */
#ifndef TOCSIN_SILENCE_CLI_H
#define TOCSIN_SILENCE_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* True when the arguments contain --silence, so main() hands them to silence_cli_main(). */
bool silence_cli_requested(int argc, char **argv);

/*
 * Parses the whole command line (--silence ACTION, its options, --config, --data-dir and
 * --log-level) and runs the action. Returns the exit status: 0 on success, 1 when the
 * request fails (invalid silence, unknown id, config or database error), 2 for a
 * command-line error.
 */
int silence_cli_main(int argc, char **argv);

/* Writes the help of the --silence actions. */
void silence_cli_usage(FILE *out);

#endif
