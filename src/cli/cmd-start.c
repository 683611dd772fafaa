/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat start [-a] [-i] CONTAINER...: docker start. Without -a each
 * container is started and its name printed. With -a (one container) the
 * session is docker's: inspect (Tty, OpenStdin, AutoRemove), attach, the
 * wait request, start, then the streams until the container exits, whose
 * status is ours.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static int start_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        if (!e || asprintf(&target, "/containers/%s/start", e) < 0)
                return moat_error_set(reterr, -ENOMEM, "start");
        return moat_client_call(client, "POST", target, NULL, NULL, NULL, reterr);
}

int cmd_start(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "attach", no_argument, NULL, 'a' },
                { "interactive", no_argument, NULL, 'i' },
                { "detach-keys", required_argument, NULL, 'K' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *c = NULL;
        const char *detach_keys = NULL;
        bool attach = false, interactive = false;
        int ch, r, status = 0;

        while ((ch = getopt_long(argc, argv, ":ai", options, NULL)) != -1) {
                switch (ch) {
                case 'a':
                        attach = true;
                        break;
                case 'i':
                        interactive = true;
                        break;
                case 'K':
                        detach_keys = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat start\" requires at least 1 argument.");
        if (!attach && !interactive)
                return cli_for_each(cli, argc, argv, optind, start_one, NULL, true, reterr);
        if (argc - optind > 1)
                return moat_error_setx(reterr, -EINVAL, "you cannot start and attach multiple containers at once");

        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = cli_container_inspect(client, argv[optind], &c, reterr);
        if (r < 0)
                return r;
        json_t *state = json_object_get(c, "State"), *config = json_object_get(c, "Config");
        if (json_is_true(json_object_get(state, "Running")))
                return moat_error_setx(reterr, -EALREADY, "Error response from daemon: container %s is already running",
                                       argv[optind]);
        bool tty = json_is_true(json_object_get(config, "Tty"));
        bool rm = json_is_true(json_object_get(json_object_get(c, "HostConfig"), "AutoRemove"));
        struct cli_session s = {
                .id = json_string_value(json_object_get(c, "Id")),
                .tty = tty,
                .in = interactive && json_is_true(json_object_get(config, "OpenStdin")),
                .out = true,
                .err = true,
                .sig_proxy = true,
                .start = true,
                .wait_condition = rm ? "removed" : "next-exit",
        };
        if (!s.id)
                return moat_error_setx(reterr, -EPROTO, "start: the daemon's inspect has no Id");
        /* A detach ends it quietly with status 0, as docker's start -ai. */
        r = cli_session_run_keys(client, &s, detach_keys, &status, NULL, reterr);
        if (r < 0)
                return r;
        cli->exit_code = status;
        return 0;
}
