/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat-daemon: the process `moat daemon` becomes (it execs this helper).
 * dockerd's flags where they apply, merged with daemon.json by the api
 * library, which runs the daemon; this file owns stderr, where the daemon
 * logs as JSON lines {"level","msg","time"}.
 *
 * The daemon is its own executable so that the `moat` client, run once
 * per docker-style command, does not load what only the daemon uses
 * (libmicrohttpd, SQLite, libseccomp, libarchive and the whole engine):
 * on this project's machines every shared object costs page faults at
 * start, and the client's start is part of every `moat run`.
 */

#include <getopt.h>
#include <stdio.h>

#include "api/daemon.h"
#include "base/cleanup.h"
#include "base/json-seed.h"
#include "base/locale.h"
#include "base/log.h"

static void daemon_emit(void *userdata, enum log_level level, const char *msg)
{
        log_emit(level, "%s", msg);
}

static void daemon_set_level(void *userdata, enum log_level level)
{
        log_set_max_level(level);
}

static void daemon_usage(void)
{
        printf("usage: moat daemon [options]\n"
               "\n"
               "  -H, --host unix:///PATH   API socket (default %s)\n"
               "      --data-root DIR       persistent state (default: moat's --root, /var/lib/moat)\n"
               "      --exec-root DIR       runtime state (default %s)\n"
               "  -p, --pidfile FILE        (default %s)\n"
               "      --config-file FILE    daemon.json (default %s)\n"
               "  -G, --group NAME          group owning the socket (default %s; created when missing)\n"
               "  -D, --debug               debug logging (requests with the peer's uid and pid)\n"
               "  -l, --log-level LEVEL     debug, info, warn, error, fatal (default info)\n",
               MOAT_DAEMON_DEFAULT_HOST, MOAT_DAEMON_DEFAULT_EXEC_ROOT, MOAT_DAEMON_DEFAULT_PIDFILE,
               MOAT_DAEMON_DEFAULT_CONFIG, MOAT_DAEMON_DEFAULT_GROUP);
}

static int run(int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_DATA_ROOT = 256, OPT_EXEC_ROOT, OPT_CONFIG_FILE, OPT_ROOT };
        static const struct option options[] = {
                { "host", required_argument, NULL, 'H' },
                { "data-root", required_argument, NULL, OPT_DATA_ROOT },
                { "exec-root", required_argument, NULL, OPT_EXEC_ROOT },
                { "pidfile", required_argument, NULL, 'p' },
                { "config-file", required_argument, NULL, OPT_CONFIG_FILE },
                { "group", required_argument, NULL, 'G' },
                { "debug", no_argument, NULL, 'D' },
                { "log-level", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                /* moat's global --root, passed on by `moat daemon` */
                { "root", required_argument, NULL, OPT_ROOT },
                {},
        };
        struct moat_daemon_flags flags = {};
        struct moat_daemon_config cfg = {};
        const char *root = "/var/lib/moat";
        int c, r;

        while ((c = getopt_long(argc, argv, "H:p:G:Dl:h", options, NULL)) != -1) {
                switch (c) {
                case 'H':
                        if (flags.host)
                                return moat_error_setx(reterr, -EINVAL, "daemon: only one -H/--host is supported");
                        flags.host = optarg;
                        break;
                case OPT_DATA_ROOT:
                        flags.data_root = optarg;
                        break;
                case OPT_EXEC_ROOT:
                        flags.exec_root = optarg;
                        break;
                case 'p':
                        flags.pidfile = optarg;
                        break;
                case OPT_CONFIG_FILE:
                        flags.config_file = optarg;
                        break;
                case 'G':
                        flags.group = optarg;
                        break;
                case 'D':
                        flags.debug = true;
                        break;
                case 'l':
                        flags.log_level = optarg;
                        break;
                case OPT_ROOT:
                        root = optarg;
                        break;
                case 'h':
                        daemon_usage();
                        return 0;
                default:
                        return moat_error_setx(reterr, -EINVAL, "daemon: unknown option \"%s\"", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "daemon: unexpected argument \"%s\"", argv[optind]);

        r = moat_daemon_config_load(&flags, root, &cfg, reterr);
        if (r < 0)
                return r;
        log_setup(-EBADF, LOG_FORMAT_JSON, cfg.level, "moat");
        struct moat_daemon_log log = { .emit = daemon_emit, .set_level = daemon_set_level };
        r = moat_daemon_run(&flags, &cfg, &log, reterr);
        moat_daemon_config_clear(&cfg);
        return r;
}

int main(int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;

        moat_locale_utf8_ctype();
        moat_json_seed();
        if (run(argc, argv, &err) < 0) {
                fprintf(stderr, "moat: %s\n", err && err->msg ? err->msg : "unknown error");
                return 1;
        }
        return 0;
}
