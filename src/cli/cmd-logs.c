/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat logs [-f] [--since T] [--until T] [--tail N] [-t] CONTAINER: docker
 * logs. Inspect first (the container's Tty decides whether the body is
 * raw or multiplexed, as in docker), then GET
 * /containers/{id}/logs?stdout=1&stderr=1&... streamed to our stdout and
 * stderr as it arrives.
 */

#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/parse.h"
#include "cli/cli.h"
#include "cli/client.h"

struct logs_out {
        bool tty;
        struct moat_demux dm;
};

static int on_data(const char *data, size_t len, void *userdata)
{
        struct logs_out *o = userdata;
        if (o->tty)
                return moat_write_all(STDOUT_FILENO, data, len);
        return moat_demux_feed(&o->dm, data, len, STDOUT_FILENO, STDERR_FILENO);
}

int cmd_logs(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_SINCE = 256, OPT_UNTIL, OPT_TAIL, OPT_DETAILS };
        static const struct option options[] = {
                { "follow", no_argument, NULL, 'f' },
                { "since", required_argument, NULL, OPT_SINCE },
                { "until", required_argument, NULL, OPT_UNTIL },
                { "tail", required_argument, NULL, 'n' },
                { "timestamps", no_argument, NULL, 't' },
                { "details", no_argument, NULL, OPT_DETAILS },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *c = NULL;
        _cleanup_free_ char *target = NULL, *id = NULL;
        char since[64] = "", until[64] = "";
        const char *tail = "all";
        bool follow = false, timestamps = false, details = false;
        struct logs_out out = {};
        int ch, r;

        while ((ch = getopt_long(argc, argv, ":fn:t", options, NULL)) != -1) {
                switch (ch) {
                case 'f':
                        follow = true;
                        break;
                case 't':
                        timestamps = true;
                        break;
                case OPT_DETAILS:
                        details = true;
                        break;
                case OPT_SINCE:
                case OPT_UNTIL:
                        if (cli_parse_timestamp(optarg, ch == OPT_SINCE ? since : until, sizeof(since)) < 0)
                                return moat_error_setx(reterr, -EINVAL,
                                                       "invalid value for \"%s\": \"%s\" is not a timestamp or a duration",
                                                       ch == OPT_SINCE ? "since" : "until", optarg);
                        break;
                case 'n': {
                        int64_t v;
                        if (!streq(optarg, "all") && safe_atoi64(optarg, &v) < 0)
                                return moat_error_setx(reterr, -EINVAL, "invalid argument \"%s\" for \"-n, --tail\"",
                                                       optarg);
                        tail = optarg;
                        break;
                }
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (argc - optind != 1)
                return moat_error_setx(reterr, -EINVAL, "\"moat logs\" requires exactly 1 argument.");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = cli_container_inspect(client, argv[optind], &c, reterr);
        if (r < 0)
                return r;
        out.tty = json_is_true(json_object_get(json_object_get(c, "Config"), "Tty"));
        id = moat_client_escape(json_string_value(json_object_get(c, "Id")) ?: argv[optind]);
        if (!id || asprintf(&target, "/containers/%s/logs?stdout=1&stderr=1&follow=%d&timestamps=%d&details=%d"
                                     "&tail=%s%s%s%s%s",
                            id, follow, timestamps, details, tail, *since ? "&since=" : "", since,
                            *until ? "&until=" : "", until) < 0)
                return moat_error_set(reterr, -ENOMEM, "logs");
        r = moat_client_stream(client, "GET", target, NULL, on_data, &out, reterr);
        if (r == -EPROTO)
                r = moat_error_setx(reterr, r, "logs: the daemon's stream is not multiplexed as expected");
        else if (r < 0 && !*reterr)
                r = moat_error_set(reterr, r, "write the logs");
        if (r >= 0 && out.dm.error)
                r = moat_error_setx(reterr, -EIO, "Error: %s", out.dm.error);
        moat_demux_done(&out.dm);
        return r;
}
