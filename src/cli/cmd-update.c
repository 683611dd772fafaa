/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat update [OPTIONS] CONTAINER...: docker update. The resource flags
 * become the update body (docker's UpdateConfig: Memory, MemorySwap,
 * NanoCpus, CpuShares, PidsLimit, RestartPolicy, ...); the daemon's
 * warnings go to stderr, each updated name to stdout.
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/cleanup.h"
#include "base/parse.h"
#include "cli/cli.h"
#include "cli/client.h"

static int update_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        json_t *body = userdata;
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        _cleanup_json_ json_t *reply = NULL;
        json_t *w;
        size_t i;
        if (!e || asprintf(&target, "/containers/%s/update", e) < 0)
                return moat_error_set(reterr, -ENOMEM, "update");
        int r = moat_client_call(client, "POST", target, body, NULL, &reply, reterr);
        if (r < 0)
                return r;
        json_array_foreach(json_object_get(reply, "Warnings"), i, w)
                if (json_is_string(w))
                        fprintf(stderr, "WARNING: %s\n", json_string_value(w));
        return 0;
}

int cmd_update(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_SWAP = 256, OPT_CPUS, OPT_PIDS, OPT_RESTART, OPT_RESERVATION, OPT_QUOTA, OPT_PERIOD, OPT_CPUSET };
        static const struct option options[] = {
                { "memory", required_argument, NULL, 'm' },
                { "memory-swap", required_argument, NULL, OPT_SWAP },
                { "memory-reservation", required_argument, NULL, OPT_RESERVATION },
                { "cpus", required_argument, NULL, OPT_CPUS },
                { "cpu-shares", required_argument, NULL, 'c' },
                { "cpu-quota", required_argument, NULL, OPT_QUOTA },
                { "cpu-period", required_argument, NULL, OPT_PERIOD },
                { "cpuset-cpus", required_argument, NULL, OPT_CPUSET },
                { "pids-limit", required_argument, NULL, OPT_PIDS },
                { "restart", required_argument, NULL, OPT_RESTART },
                {},
        };
        _cleanup_json_ json_t *body = json_object();
        int c;

        if (!body)
                return moat_error_set(reterr, -ENOMEM, "update");
        while ((c = getopt_long(argc, argv, ":m:c:", options, NULL)) != -1) {
                int64_t v;
                switch (c) {
                case 'm':
                case OPT_SWAP:
                case OPT_RESERVATION:
                        if (c == OPT_SWAP && streq(optarg, "-1"))
                                v = -1;
                        else if (parse_ram_in_bytes(optarg, &v) < 0)
                                return moat_error_setx(reterr, -EINVAL, "invalid argument \"%s\" for \"%s\" flag: "
                                                       "invalid size", optarg, argv[optind - 1]);
                        json_object_set_new(body, c == 'm' ? "Memory" : c == OPT_SWAP ? "MemorySwap" : "MemoryReservation",
                                            json_integer(v));
                        break;
                case OPT_CPUS: {
                        char *end;
                        double d = strtod(optarg, &end);
                        if (end == optarg || *end || d < 0 || d > 1e6)
                                return moat_error_setx(reterr, -EINVAL, "invalid argument \"%s\" for \"--cpus\" flag: "
                                                       "failed to parse as a rational number", optarg);
                        json_object_set_new(body, "NanoCpus", json_integer((json_int_t) (d * 1e9 + 0.5)));
                        break;
                }
                case 'c':
                case OPT_QUOTA:
                case OPT_PERIOD:
                case OPT_PIDS:
                        if (safe_atoi64(optarg, &v) < 0)
                                return moat_error_setx(reterr, -EINVAL, "invalid argument \"%s\" for \"%s\" flag: "
                                                       "invalid syntax", optarg, argv[optind - 1]);
                        json_object_set_new(body, c == 'c' ? "CpuShares" : c == OPT_QUOTA ? "CpuQuota"
                                                  : c == OPT_PERIOD ? "CpuPeriod" : "PidsLimit", json_integer(v));
                        break;
                case OPT_CPUSET:
                        json_object_set_new(body, "CpusetCpus", json_string(optarg));
                        break;
                case OPT_RESTART: {
                        const char *colon = strchr(optarg, ':');
                        int n = 0;
                        if (colon && safe_atoi(colon + 1, &n) < 0)
                                return moat_error_setx(reterr, -EINVAL, "invalid restart policy %s", optarg);
                        json_object_set_new(body, "RestartPolicy",
                                            json_pack("{s:s%,s:i}", "Name", optarg,
                                                      colon ? (size_t) (colon - optarg) : strlen(optarg),
                                                      "MaximumRetryCount", n));
                        break;
                }
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat update\" requires at least 1 argument.");
        if (json_object_size(body) == 0)
                return moat_error_setx(reterr, -EINVAL, "you must provide one or more flags when using this command");
        return cli_for_each(cli, argc, argv, optind, update_one, body, true, reterr);
}
