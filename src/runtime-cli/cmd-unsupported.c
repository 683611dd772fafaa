/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Verbs that belong to later work (exec, ps, pause, resume, update,
 * events, checkpoint, restore) answer with a clear error until they exist.
 */

#include "base/log.h"
#include "runtime-cli/cli.h"

int cmd_unsupported(struct cli_context *ctx, int argc, char **argv)
{
        log_error("%s: not supported by this version of moat-runtime", argv[0]);
        return 1;
}
