/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `spec [--bundle DIR] [--rootless | --hardened]`: write a default
 * config.json (runc's shape; --hardened: with moat's default security). */

#include <fcntl.h>
#include <getopt.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "runtime-cli/cli.h"
#include "runtime/seccomp.h"

int cmd_spec(struct cli_context *ctx, int argc, char **argv)
{
        enum { OPT_ROOTLESS = 256, OPT_HARDENED };
        static const struct option options[] = {
                { "bundle", required_argument, NULL, 'b' },
                { "rootless", no_argument, NULL, OPT_ROOTLESS },
                { "hardened", no_argument, NULL, OPT_HARDENED },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *json = NULL;
        const char *bundle = ".";
        bool rootless = false, hardened = false;
        int c;

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "b:", options, NULL)) != -1) {
                if (c == 'b')
                        bundle = optarg;
                else if (c == OPT_ROOTLESS)
                        rootless = true;
                else if (c == OPT_HARDENED)
                        hardened = true;
                else {
                        log_error("spec: unknown option '%s'", argv[optind - 1]);
                        return 1;
                }
        }
        if (optind != argc) {
                log_error("spec: takes no arguments");
                return 1;
        }
        if (rootless && hardened) {
                log_error("spec: --hardened and --rootless cannot be combined (the hardened spec sets a pids "
                          "limit and a network sysctl that a rootless container cannot have)");
                return 1;
        }
        int r = hardened ? moat_spec_hardened(&json, &err) : moat_spec_default(rootless, &json, &err);
        if (r < 0)
                return cli_fail(r, err);

        _cleanup_close_ int dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                log_error("spec: bundle '%s': %m", bundle);
                return 1;
        }
        if (faccessat(dfd, "config.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
                log_error("spec: File %s/config.json exists. Remove it first", bundle);
                return 1;
        }
        r = write_file_atomic_at(dfd, "config.json", json, strlen(json), 0644);
        if (r < 0) {
                log_error("spec: writing %s/config.json: %s", bundle, strerror(-r));
                return 1;
        }
        return 0;
}
