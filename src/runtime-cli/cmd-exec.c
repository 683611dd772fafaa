/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `exec [flags] <id> <command> [args...]` or `exec --process FILE <id>`:
 * runc's flags and spellings. Option parsing stops at the id, so the
 * command's own flags are never taken for ours. Repeatable flags (--env,
 * --cap, --additional-gids) collect into arrays bounded by argc.
 */

#include <getopt.h>
#include <limits.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "base/parse.h"
#include "runtime-cli/cli.h"

int cmd_exec(struct cli_context *ctx, int argc, char **argv)
{
        enum {
                OPT_CONSOLE = 256,
                OPT_PIDFILE,
                OPT_CWD,
                OPT_NNP,
                OPT_APPARMOR,
                OPT_LABEL,
                OPT_PRESERVE,
                OPT_IGNORE_PAUSED,
                OPT_NO_SUBREAPER,
                OPT_CGROUP,
        };
        static const struct option options[] = {
                { "tty", no_argument, NULL, 't' },
                { "console-socket", required_argument, NULL, OPT_CONSOLE },
                { "detach", no_argument, NULL, 'd' },
                { "pid-file", required_argument, NULL, OPT_PIDFILE },
                { "process", required_argument, NULL, 'p' },
                { "cwd", required_argument, NULL, OPT_CWD },
                { "env", required_argument, NULL, 'e' },
                { "user", required_argument, NULL, 'u' },
                { "additional-gids", required_argument, NULL, 'g' },
                { "cap", required_argument, NULL, 'c' },
                { "no-new-privs", no_argument, NULL, OPT_NNP },
                { "apparmor", required_argument, NULL, OPT_APPARMOR },
                { "process-label", required_argument, NULL, OPT_LABEL },
                { "preserve-fds", required_argument, NULL, OPT_PRESERVE },
                { "ignore-paused", no_argument, NULL, OPT_IGNORE_PAUSED },
                { "no-subreaper", no_argument, NULL, OPT_NO_SUBREAPER },
                { "cgroup", required_argument, NULL, OPT_CGROUP },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char **env = calloc((size_t) argc + 1, sizeof(char *));
        _cleanup_free_ char **caps = calloc((size_t) argc + 1, sizeof(char *));
        _cleanup_free_ uint32_t *gids = calloc((size_t) argc + 1, sizeof(uint32_t));
        struct moat_exec_options opts = { .env = env, .caps = caps, .additional_gids = gids };
        size_t n_env = 0, n_caps = 0;
        int c, status = 0;

        if (!env || !caps || !gids) {
                log_error("exec: out of memory");
                return 1;
        }
        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "+tdp:e:u:g:c:", options, NULL)) != -1) {
                switch (c) {
                case 't':
                        opts.tty = true;
                        break;
                case OPT_CONSOLE:
                        opts.console_socket = optarg;
                        break;
                case 'd':
                        opts.detach = true;
                        break;
                case OPT_PIDFILE:
                        opts.pid_file = optarg;
                        break;
                case 'p':
                        opts.process_file = optarg;
                        break;
                case OPT_CWD:
                        opts.cwd = optarg;
                        break;
                case 'e':
                        env[n_env++] = optarg;
                        break;
                case 'u':
                        opts.user = optarg;
                        break;
                case 'g': {
                        /* runc takes one gid per flag; a comma list is accepted too. */
                        _cleanup_free_ char *copy = strdup(optarg);
                        char *save = NULL;
                        if (!copy)
                                return 1;
                        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                                uint32_t g;
                                if (opts.n_additional_gids >= (size_t) argc || safe_atou32(t, &g) < 0) {
                                        log_error("exec: --additional-gids: expected a numeric gid, got \"%s\"",
                                                  optarg);
                                        return 1;
                                }
                                gids[opts.n_additional_gids++] = g;
                        }
                        break;
                }
                case 'c':
                        caps[n_caps++] = optarg;
                        break;
                case OPT_NNP:
                        opts.no_new_privs = true;
                        break;
                case OPT_APPARMOR:
                        opts.apparmor = optarg;
                        break;
                case OPT_LABEL:
                        opts.process_label = optarg;
                        break;
                case OPT_PRESERVE: {
                        uint32_t n;
                        if (safe_atou32(optarg, &n) < 0 || n > 65536) {
                                log_error("exec: --preserve-fds: expected a number of descriptors, got \"%s\"",
                                          optarg);
                                return 1;
                        }
                        opts.preserve_fds = n;
                        break;
                }
                case OPT_IGNORE_PAUSED:
                        opts.ignore_paused = true;
                        break;
                case OPT_NO_SUBREAPER:
                        /* runc: deprecated, does nothing. */
                        break;
                case OPT_CGROUP:
                        log_error("exec: --cgroup (a sub-cgroup for the process) is not supported");
                        return 1;
                default:
                        if (optopt && strchr("pegucd", optopt) && c == '?')
                                log_error("exec: option '%s' needs a value", argv[optind - 1]);
                        else
                                log_error("exec: unknown option '%s'", argv[optind - 1]);
                        return 1;
                }
        }
        if (optind >= argc) {
                log_error("exec: expects a container id and a command (or --process FILE)");
                return 1;
        }
        opts.id = argv[optind];
        opts.args = argv + optind + 1;
        if (opts.process_file && opts.args[0]) {
                log_error("exec: --process and a command line are exclusive (got \"%s\" after the id)",
                          opts.args[0]);
                return 1;
        }
        int r = moat_container_exec(&ctx->rt, &opts, &status, &err);
        if (r < 0)
                return cli_fail(r, err);
        return opts.detach ? 0 : status;
}
