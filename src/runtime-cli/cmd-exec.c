/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written). */

#include "base/log.h"
#include "runtime-cli/cli.h"

int cmd_exec(struct cli_context *ctx, int argc, char **argv)
{
        log_error("exec: not supported by this version of moat-runtime");
        return 1;
}
