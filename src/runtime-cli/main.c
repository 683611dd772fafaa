/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat-runtime: the runc-compatible OCI runtime CLI. This file only parses
 * the global options, sets up logging and dispatches to one cmd-<verb>.c
 * per verb; everything else is libmoat-runtime.
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include "base/cleanup.h"
#include "base/json-seed.h"
#include <jansson.h>
#include <sys/auxv.h>
#include <stdio.h>
#include <unistd.h>

#include "base/log.h"
#include "moat-config.h"
#include "runtime-cli/cli.h"
#include "runtime/linux.h"
#include "runtime/protect.h"

static const struct {
        const char *name;
        cli_verb_fn fn;
        const char *summary;
} verbs[] = {
        { "create", cmd_create, "create a container" },
        { "delete", cmd_delete, "delete a container and what it holds" },
        { "events", cmd_events, "container events and statistics" },
        { "exec", cmd_exec, "run a new process inside a container" },
        { "features", cmd_features, "show what this runtime implements" },
        { "kill", cmd_kill, "send a signal to a container's init" },
        { "list", cmd_list, "list containers" },
        { "pause", cmd_pause, "suspend all processes of a container" },
        { "ps", cmd_ps, "list the processes of a container" },
        { "resume", cmd_resume, "resume a paused container" },
        { "run", cmd_run, "create and start a container" },
        { "spec", cmd_spec, "write a default config.json" },
        { "start", cmd_start, "start a created container" },
        { "state", cmd_state, "print the state of a container" },
        { "update", cmd_update, "change a container's resource limits" },
        { "checkpoint", cmd_unsupported, "checkpoint a running container" },
        { "restore", cmd_unsupported, "restore a checkpointed container" },
};

static void usage(FILE *f)
{
        fprintf(f,
                "usage: moat-runtime [global options] <command> [options] [arguments]\n"
                "\n"
                "global options:\n"
                "  --root DIR            state directory (default %s)\n"
                "  --log FILE            log to FILE instead of stderr\n"
                "  --log-format FORMAT   text or json\n"
                "  --debug               debug logging\n"
                "  --systemd-cgroup      use the systemd cgroup driver (not supported yet)\n"
                "  --rootless MODE       auto, true or false (auto: rootless when not root or in a user\n"
                "                        namespace; state then defaults to $XDG_RUNTIME_DIR/moat-runtime)\n"
                "  --version, --help\n"
                "\ncommands:\n",
                MOAT_RUNTIME_DEFAULT_ROOT);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-12s %s\n", verbs[i].name, verbs[i].summary);
}

static void warn_cb(const char *msg)
{
        log_warning("%s", msg);
}

int main(int argc, char **argv)
{
        enum { OPT_ROOT = 256, OPT_LOG, OPT_LOG_FORMAT, OPT_DEBUG, OPT_SYSTEMD, OPT_ROOTLESS, OPT_CRIU };
        static const struct option options[] = {
                { "root", required_argument, NULL, OPT_ROOT },
                { "log", required_argument, NULL, OPT_LOG },
                { "log-format", required_argument, NULL, OPT_LOG_FORMAT },
                { "debug", no_argument, NULL, OPT_DEBUG },
                { "systemd-cgroup", no_argument, NULL, OPT_SYSTEMD },
                { "rootless", required_argument, NULL, OPT_ROOTLESS },
                { "criu", required_argument, NULL, OPT_CRIU },
                { "version", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct cli_context ctx = { .program = "moat-runtime" };
        const char *log_path = NULL;
        _cleanup_free_ char *root_abs = NULL;
        enum moat_rootless_mode rootless_mode = MOAT_ROOTLESS_AUTO;
        _cleanup_free_ char *xdg_root = NULL;
        enum log_format format = LOG_FORMAT_TEXT;
        bool debug = false;
        int c;

        ctx.rt.warn = warn_cb;

        /* Before this process opens anything: which fds did the caller pass? */
        int fd_end = 3;
        while (fd_end < 65536 && fcntl(fd_end, F_GETFD) >= 0)
                fd_end++;
        ctx.rt.inherited_fds_end = fd_end;

        moat_json_seed();
        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "+vh", options, NULL)) != -1) {
                switch (c) {
                case OPT_ROOT:
                        /* Relative to where the caller stands, whatever
                         * directory a verb works in later. */
                        if (optarg[0] != '/') {
                                _cleanup_free_ char *cwd = get_current_dir_name();
                                if (!cwd || asprintf(&root_abs, "%s/%s", cwd, optarg) < 0) {
                                        fprintf(stderr, "moat-runtime: --root '%s': %m\n", optarg);
                                        return 1;
                                }
                                ctx.rt.root = root_abs;
                        } else
                                ctx.rt.root = optarg;
                        break;
                case OPT_LOG:
                        log_path = optarg;
                        break;
                case OPT_LOG_FORMAT:
                        if (streq(optarg, "json"))
                                format = LOG_FORMAT_JSON;
                        else if (streq(optarg, "text"))
                                format = LOG_FORMAT_TEXT;
                        else {
                                fprintf(stderr, "moat-runtime: --log-format: unknown format \"%s\" (text or json)\n",
                                        optarg);
                                return 1;
                        }
                        break;
                case OPT_DEBUG:
                        debug = true;
                        break;
                case OPT_SYSTEMD:
                        ctx.rt.systemd_cgroup = true;
                        break;
                case OPT_ROOTLESS:
                        if (streq(optarg, "true"))
                                rootless_mode = MOAT_ROOTLESS_TRUE;
                        else if (streq(optarg, "false"))
                                rootless_mode = MOAT_ROOTLESS_FALSE;
                        else if (!streq(optarg, "auto")) {
                                fprintf(stderr, "moat-runtime: --rootless: expected auto, true or false, got \"%s\"\n",
                                        optarg);
                                return 1;
                        }
                        break;
                case OPT_CRIU:
                        break;
                case 'v':
                        printf("moat-runtime version %s\nspec: %s\n", MOAT_VERSION, MOAT_OCI_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        fprintf(stderr, "moat-runtime: unknown global option '%s'\n", argv[optind - 1]);
                        usage(stderr);
                        return 1;
                }
        }

        if (log_path) {
                int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd < 0) {
                        fprintf(stderr, "moat-runtime: --log '%s': %m\n", log_path);
                        return 1;
                }
                log_setup(fd, format, debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, ctx.program);
                /* Interactive users still see errors; managers read the file. */
                log_also_stderr(format == LOG_FORMAT_JSON);
        } else
                log_setup(-EBADF, format, debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, ctx.program);

        if (optind >= argc) {
                usage(stderr);
                return 1;
        }
        int first = optind;
        const char *verb = argv[first];

        /* exec always runs the runtime binary inside a container for a
         * moment: make sure it cannot be written through /proc/<pid>/exe.
         * create and run decide by the container (container.c). */
        ctx.rt.argc = argc;
        ctx.rt.argv = argv;
        moat_rootless_set(rootless_mode);
        /* Rootless state lives in the user's runtime directory, as with
         * runc; spec and features need no state. */
        if (!ctx.rt.root && moat_rootless() && !streq(verb, "spec") && !streq(verb, "features")) {
                const char *xdg = getenv("XDG_RUNTIME_DIR");
                if (strempty(xdg) || xdg[0] != '/') {
                        log_error("%s: rootless mode needs a state directory: set XDG_RUNTIME_DIR (to a directory "
                                  "only this user can write, like /run/user/%u) or pass --root",
                                  verb, (unsigned) geteuid());
                        return 1;
                }
                if (asprintf(&xdg_root, "%s/moat-runtime", xdg) < 0) {
                        log_error("%s: out of memory", verb);
                        return 1;
                }
                ctx.rt.root = xdg_root;
        }
        if (streq(verb, "exec")) {
                _cleanup_error_ struct moat_error *err = NULL;
                int r = moat_protect_self_exe(argc, argv, &err);
                if (r < 0)
                        return cli_fail(r, err);
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, verb)) {
                        /* Each verb sees argv[0] = its name; optind = 0 makes
                         * getopt start afresh. */
                        optind = 0;
                        return verbs[i].fn(&ctx, argc - first, argv + first);
                }
        log_error("unknown command \"%s\"", verb);
        return 1;
}
