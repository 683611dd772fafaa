/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat daemon: becomes moat-daemon (src/api/daemon-main.c), the helper
 * that links the engine, so the client binary stays small. The verb's
 * arguments pass unchanged, with moat's global --root and --debug.
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "moat-config.h"

/* Next to moat in the build tree (src/api/), in <prefix>/libexec/moat
 * relative to an installed moat, else the configured libexecdir. */
static char *daemon_path(void)
{
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *p = NULL;

        if (n > 0) {
                self[n] = '\0';
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        if (asprintf(&p, "%s/../api/moat-daemon", self) >= 0 && access(p, X_OK) == 0)
                                return p;
                        free(p);
                        if (asprintf(&p, "%s/../libexec/moat/moat-daemon", self) >= 0 && access(p, X_OK) == 0)
                                return p;
                        free(p);
                }
        }
        if (asprintf(&p, "%s/moat-daemon", MOAT_LIBEXECDIR) < 0)
                return NULL;
        return p;
}

int cmd_daemon(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_free_ char *path = daemon_path();
        _cleanup_free_ char **args = calloc((size_t) argc + 5, sizeof(char *));
        size_t n = 0;

        if (!path || !args)
                return moat_error_set(reterr, -ENOMEM, "daemon");
        args[n++] = path;
        if (cli->root) {
                args[n++] = (char *) "--root";
                args[n++] = (char *) cli->root;
        }
        if (cli->debug)
                args[n++] = (char *) "--debug";
        for (int i = 1; i < argc; i++)
                args[n++] = argv[i];
        args[n] = NULL;
        execv(path, args);
        return moat_error_set(reterr, -errno, "running %s", path);
}
