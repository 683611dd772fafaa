/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* Helpers shared by the verbs: error reporting and the create/run flags. */

#include <getopt.h>
#include <stdio.h>

#include "base/log.h"
#include "base/parse.h"
#include "runtime-cli/cli.h"

int cli_fail(int r, const struct moat_error *err)
{
        if (err && err->msg)
                log_error("%s", err->msg);
        else
                log_error("%s", strerror(r < 0 ? -r : r));
        return 1;
}

bool cli_check_args(const char *verb, int have, int want, const char *what)
{
        if (have == want)
                return true;
        log_error("%s: expects %d argument%s (%s), got %d", verb, want, want == 1 ? "" : "s", what, have);
        return false;
}

int cli_parse_create_flags(const char *verb, int argc, char **argv, struct moat_create_options *opts)
{
        enum { OPT_PIVOT = 256, OPT_KEYRING, OPT_PRESERVE, OPT_CONSOLE, OPT_PIDFILE, OPT_KEEP, OPT_PIDFD };
        static const struct option options[] = {
                { "bundle", required_argument, NULL, 'b' },
                { "console-socket", required_argument, NULL, OPT_CONSOLE },
                { "pid-file", required_argument, NULL, OPT_PIDFILE },
                { "no-pivot", no_argument, NULL, OPT_PIVOT },
                { "no-new-keyring", no_argument, NULL, OPT_KEYRING },
                { "preserve-fds", required_argument, NULL, OPT_PRESERVE },
                { "pidfd-socket", required_argument, NULL, OPT_PIDFD },
                { "detach", no_argument, NULL, 'd' },
                { "keep", no_argument, NULL, OPT_KEEP },
                {},
        };
        bool is_run = streq(verb, "run");
        int c;

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, is_run ? "b:d" : "b:", options, NULL)) != -1) {
                switch (c) {
                case 'b':
                        opts->bundle = optarg;
                        break;
                case OPT_CONSOLE:
                        opts->console_socket = optarg;
                        break;
                case OPT_PIDFILE:
                        opts->pid_file = optarg;
                        break;
                case OPT_PIVOT:
                        opts->no_pivot = true;
                        break;
                case OPT_KEYRING:
                        opts->no_new_keyring = true;
                        break;
                case OPT_PRESERVE: {
                        uint32_t n;
                        if (safe_atou32(optarg, &n) < 0 || n > 65536) {
                                log_error("%s: --preserve-fds: expected a number of descriptors, got \"%s\"", verb,
                                          optarg);
                                return -1;
                        }
                        opts->preserve_fds = n;
                        break;
                }
                case OPT_PIDFD:
                        log_error("%s: --pidfd-socket is not supported yet", verb);
                        return -1;
                case 'd':
                        if (!is_run)
                                goto unknown;
                        opts->mode = MOAT_CREATE_RUN_DETACHED;
                        break;
                case OPT_KEEP:
                        if (!is_run)
                                goto unknown;
                        opts->keep = true;
                        break;
                default:
                unknown:
                        log_error("%s: unknown option '%s'", verb, argv[optind - 1]);
                        return -1;
                }
        }
        return optind;
}
