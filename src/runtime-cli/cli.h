/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * moat-runtime's command table. Each verb lives in its own cmd-<verb>.c
 * and gets the global options already applied; it parses its own flags
 * (runc's spellings, single or double dash) and returns the process exit
 * status.
 */

#include "base/compat.h"
#include "base/error.h"
#include "runtime/runtime.h"

struct cli_context {
        struct moat_runtime rt;
        const char *program;
};

typedef int (*cli_verb_fn)(struct cli_context *ctx, int argc, char **argv);

int cmd_create(struct cli_context *ctx, int argc, char **argv);
int cmd_delete(struct cli_context *ctx, int argc, char **argv);
int cmd_features(struct cli_context *ctx, int argc, char **argv);
int cmd_kill(struct cli_context *ctx, int argc, char **argv);
int cmd_list(struct cli_context *ctx, int argc, char **argv);
int cmd_run(struct cli_context *ctx, int argc, char **argv);
int cmd_spec(struct cli_context *ctx, int argc, char **argv);
int cmd_start(struct cli_context *ctx, int argc, char **argv);
int cmd_state(struct cli_context *ctx, int argc, char **argv);
int cmd_unsupported(struct cli_context *ctx, int argc, char **argv);
int cmd_exec(struct cli_context *ctx, int argc, char **argv);
int cmd_ps(struct cli_context *ctx, int argc, char **argv);
int cmd_update(struct cli_context *ctx, int argc, char **argv);
int cmd_pause(struct cli_context *ctx, int argc, char **argv);
int cmd_resume(struct cli_context *ctx, int argc, char **argv);
int cmd_events(struct cli_context *ctx, int argc, char **argv);

/* Log err (or a generic message for r) and return the exit status 1. */
int cli_fail(int r, const struct moat_error *err);

/* "<verb>: requires exactly N argument(s)" style check; returns true when
 * the count is right, else logs and returns false. */
bool cli_check_args(const char *verb, int have, int want, const char *what);

/* Parse the create/run flags shared by both verbs; returns the index of the
 * first positional argument or -1 after logging. */
int cli_parse_create_flags(const char *verb, int argc, char **argv, struct moat_create_options *opts);
