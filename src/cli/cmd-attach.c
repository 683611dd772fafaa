/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat attach [--no-stdin] [--sig-proxy=false] CONTAINER: docker attach.
 * Inspect (it must be running, not paused; Tty and OpenStdin decide the
 * stream), the wait request, the hijacked session; the exit status is the
 * container's. A detach (--detach-keys, default ctrl-p,ctrl-q) leaves it
 * running and ends like docker's: "read escape sequence", status 1.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

int cmd_attach(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_NO_STDIN = 256, OPT_SIG_PROXY, OPT_DETACH_KEYS };
        static const struct option options[] = {
                { "no-stdin", no_argument, NULL, OPT_NO_STDIN },
                { "sig-proxy", optional_argument, NULL, OPT_SIG_PROXY },
                { "detach-keys", required_argument, NULL, OPT_DETACH_KEYS },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *c = NULL;
        const char *detach_keys = NULL;
        bool no_stdin = false, sig_proxy = true, detached = false;
        int ch, r, status = 0;

        while ((ch = getopt_long(argc, argv, ":", options, NULL)) != -1) {
                switch (ch) {
                case OPT_NO_STDIN:
                        no_stdin = true;
                        break;
                case OPT_SIG_PROXY:
                        sig_proxy = !optarg || streq(optarg, "true") || streq(optarg, "1");
                        break;
                case OPT_DETACH_KEYS:
                        detach_keys = optarg;
                        break;
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (argc - optind != 1)
                return moat_error_setx(reterr, -EINVAL, "\"moat attach\" requires exactly 1 argument.");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = cli_container_inspect(client, argv[optind], &c, reterr);
        if (r < 0)
                return r;
        json_t *state = json_object_get(c, "State"), *config = json_object_get(c, "Config");
        if (!json_is_true(json_object_get(state, "Running")))
                return moat_error_setx(reterr, -EINVAL, "You cannot attach to a stopped container, start it first");
        if (json_is_true(json_object_get(state, "Paused")))
                return moat_error_setx(reterr, -EINVAL, "You cannot attach to a paused container, unpause it first");
        bool tty = json_is_true(json_object_get(config, "Tty"));
        struct cli_session s = {
                .id = json_string_value(json_object_get(c, "Id")),
                .tty = tty,
                .in = !no_stdin && json_is_true(json_object_get(config, "OpenStdin")),
                .out = true,
                .err = true,
                .sig_proxy = sig_proxy && !tty,
                .wait_condition = "",
        };
        if (!s.id)
                return moat_error_setx(reterr, -EPROTO, "attach: the daemon's inspect has no Id");
        r = cli_session_run_keys(client, &s, detach_keys, &status, &detached, reterr);
        if (r < 0)
                return r;
        if (detached) /* docker 28's attach: this message, status 1 */
                return moat_error_setx(reterr, -EINTR, "read escape sequence");
        cli->exit_code = status;
        return 0;
}
