/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `features`: the runtime-spec features document. */

#include <stdio.h>

#include "base/cleanup.h"
#include "runtime-cli/cli.h"

int cmd_features(struct cli_context *ctx, int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *json = NULL;

        int r = moat_features_json(&json, &err);
        if (r < 0)
                return cli_fail(r, err);
        puts(json);
        return 0;
}
