/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The helpers moat becomes for the verbs whose libraries it does not link,
 * so that the client stays a small static executable: moat-daemon
 * (src/api, the engine) for `moat daemon`, moat-image (image-main.c, the
 * image library) for verify, mount and unmount. A helper is looked for
 * where the build tree puts it relative to moat (<builddir>/src/cli/moat,
 * <builddir>/src/<subdir>/<helper>), then in <prefix>/libexec/moat
 * relative to an installed moat (<prefix>/bin/moat), then in the
 * configured libexecdir. It gets moat's --root (absolute) and --debug
 * before its arguments, and replaces moat: its output and exit status are
 * the verb's.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "moat-config.h"

#define HELPER_CANDIDATES 3

/* The places to look for name, most specific first: *ret_n of them. */
static int helper_candidates(const char *name, const char *build_subdir, char *ret[static HELPER_CANDIDATES],
                             size_t *ret_n)
{
        char self[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash = NULL, *p;
        size_t n = 0;

        if (len > 0) {
                self[len] = '\0';
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        slash = strrchr(self, '/');
                }
        }
        if (slash) {
                *slash = '\0';  /* self: the parent of moat's directory */
                if (asprintf(&p, "%s/%s/%s", self, build_subdir, name) < 0)
                        return -ENOMEM;
                ret[n++] = p;
                if (asprintf(&p, "%s/libexec/moat/%s", self, name) < 0)
                        return -ENOMEM;
                ret[n++] = p;
        }
        if (asprintf(&p, "%s/%s", MOAT_LIBEXECDIR, name) < 0)
                return -ENOMEM;
        ret[n++] = p;
        *ret_n = n;
        return 0;
}

int cli_exec_helper(const struct moat_cli *cli, const char *verb, const char *name, const char *build_subdir,
                    int argc, char **argv, struct moat_error **reterr)
{
        char *paths[HELPER_CANDIDATES] = {};   /* freed at out, also on failure */
        _cleanup_free_ char **args = calloc((size_t) argc + 5, sizeof(char *));
        const char *path = NULL;
        size_t n_paths = 0, n = 0;
        int r;

        if (!args || helper_candidates(name, build_subdir, paths, &n_paths) < 0) {
                r = moat_error_set(reterr, -ENOMEM, "%s", verb);
                goto out;
        }
        for (size_t i = 0; i < n_paths && !path; i++)
                if (access(paths[i], X_OK) == 0)
                        path = paths[i];
        if (!path) {
                char tried[3 * PATH_MAX] = "";
                size_t o = 0;
                for (size_t i = 0; i < n_paths && o < sizeof(tried); i++)
                        o += (size_t) snprintf(tried + o, sizeof(tried) - o, "%s%s",
                                               i == 0 ? "" : i + 1 == n_paths ? " or " : ", ", paths[i]);
                r = moat_error_setx(reterr, -ENOENT, "%s needs the helper %s, which is not installed: no executable %s",
                                    verb, name, tried);
                goto out;
        }
        args[n++] = (char *) path;
        if (cli->root) {
                args[n++] = (char *) "--root";
                args[n++] = (char *) cli->root;
        }
        if (cli->debug)
                args[n++] = (char *) "--debug";
        for (int i = 0; i < argc; i++)
                args[n++] = argv[i];
        args[n] = NULL;
        (void) fflush(stdout);
        execv(path, args);
        r = moat_error_set(reterr, -errno, "%s: running %s", verb, path);
out:
        for (size_t i = 0; i < HELPER_CANDIDATES; i++)
                free(paths[i]);
        return r;
}

int cmd_image_helper(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return cli_exec_helper(cli, argv[0], "moat-image", "cli", argc, argv, reterr);
}
