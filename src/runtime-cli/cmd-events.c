/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `events [--stats] [--interval DURATION] <id>`, as runc: with --stats one
 * {"type":"stats",...} line and exit; without, a stats line every interval
 * (default 5s) and an {"type":"oom",...} line per OOM kill, until the
 * container stops. The interval is a Go duration ("5s", "250ms", "1m30s"),
 * the form runc's flag takes; parsed here because no C library reads that
 * format.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "runtime-cli/cli.h"

/* A Go duration into milliseconds (sub-millisecond rounds up to 1).
 * -EINVAL: not a duration; -ERANGE: zero, negative or too long. */
static int parse_duration_ms(const char *s, unsigned *ret)
{
        static const struct {
                const char *unit;
                double ms;
        } units[] = {
                { "ns", 1e-6 }, { "us", 1e-3 }, { "\xc2\xb5s", 1e-3 }, { "\xce\xbcs", 1e-3 },
                { "ms", 1.0 },  { "s", 1e3 },   { "m", 60e3 },         { "h", 3600e3 },
        };
        double total = 0;
        bool negative = false;

        if (*s == '-' || *s == '+')
                negative = *s++ == '-';
        if (streq(s, "0"))
                return -ERANGE;
        if (!*s)
                return -EINVAL;
        while (*s) {
                char *end;
                if (!((*s >= '0' && *s <= '9') || *s == '.'))
                        return -EINVAL;
                double v = strtod(s, &end);
                if (end == s)
                        return -EINVAL;
                s = end;
                size_t best = 0, best_len = 0;
                for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                        size_t l = strlen(units[i].unit);
                        /* longest match: "ms" before "m" */
                        if (l > best_len && strncmp(s, units[i].unit, l) == 0) {
                                best = i;
                                best_len = l;
                        }
                }
                if (best_len == 0)
                        return -EINVAL; /* Go wants a unit on every number but a bare 0 */
                total += v * units[best].ms;
                s += best_len;
        }
        if (negative || total <= 0)
                return -ERANGE;
        if (total > (double) UINT32_MAX / 2)
                return -ERANGE;
        unsigned ms = (unsigned) total;
        *ret = ms < total ? ms + 1 : ms;
        return 0;
}

static void print_line(const char *line, void *userdata)
{
        puts(line);
        fflush(stdout);
}

int cmd_events(struct cli_context *ctx, int argc, char **argv)
{
        enum { OPT_INTERVAL = 256, OPT_STATS };
        static const struct option options[] = {
                { "interval", required_argument, NULL, OPT_INTERVAL },
                { "stats", no_argument, NULL, OPT_STATS },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        unsigned interval_ms = 5000;
        bool stats = false;
        int c, r;

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "", options, NULL)) != -1) {
                switch (c) {
                case OPT_INTERVAL:
                        r = parse_duration_ms(optarg, &interval_ms);
                        if (r == -ERANGE) {
                                log_error("events: --interval must be greater than 0, got \"%s\"", optarg);
                                return 1;
                        }
                        if (r < 0) {
                                log_error("events: --interval: \"%s\" is not a duration (like 5s, 250ms, 1m30s)",
                                          optarg);
                                return 1;
                        }
                        break;
                case OPT_STATS:
                        stats = true;
                        break;
                default:
                        log_error("events: unknown option '%s'", argv[optind - 1]);
                        return 1;
                }
        }
        if (!cli_check_args("events", argc - optind, 1, "container id"))
                return 1;
        const char *id = argv[optind];
        if (stats) {
                _cleanup_free_ char *line = NULL;
                r = moat_container_stats(&ctx->rt, id, &line, &err);
                if (r < 0)
                        return cli_fail(r, err);
                print_line(line, NULL);
                return 0;
        }
        r = moat_container_events(&ctx->rt, id, interval_ms, print_line, NULL, &err);
        if (r < 0)
                return cli_fail(r, err);
        return 0;
}
