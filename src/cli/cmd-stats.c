/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]:
 * docker stats. The containers (those named, else the running ones, or
 * all with -a) are sampled with GET /containers/{id}/stats?stream=0 (the
 * daemon fills precpu_stats from its previous sample) and shown with
 * docker's columns and math (cli/command/container/stats_helpers.go): CPU
 * % = Δcontainer CPU / Δsystem CPU × online CPUs × 100; memory is usage
 * minus total_inactive_file (v1) or inactive_file (v2); MEM % against the
 * limit; network and block I/O summed. Without --no-stream the table is
 * redrawn after each round until interrupted.
 */

#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static const char *const fields[] = { "Container", "Name", "ID", "CPUPerc", "MemUsage", "MemPerc", "NetIO",
                                      "BlockIO", "PIDs", NULL };
static const char *const headers[] = { "CONTAINER", "NAME", "CONTAINER ID", "CPU %", "MEM USAGE / LIMIT", "MEM %",
                                       "NET I/O", "BLOCK I/O", "PIDS", NULL };
#define DEFAULT_FORMAT                                                                                          \
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

static double num(json_t *o, const char *path)
{
        json_t *v = o;
        for (const char *p = path; *p && v;) {
                size_t l = strcspn(p, ".");
                char key[64];
                snprintf(key, sizeof(key), "%.*s", (int) l, p);
                v = json_object_get(v, key);
                p += l + (p[l] == '.');
        }
        return json_is_number(v) ? json_number_value(v) : 0;
}

static void bytes_size(double v, char *buf, size_t len)
{
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        size_t u = 0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        snprintf(buf, len, "%.4g%s", v, units[u]);
}

static json_t *row(json_t *st, const char *asked, bool trunc, bool running)
{
        const char *id = json_string_value(json_object_get(st, "id")) ?: "";
        const char *name = json_string_value(json_object_get(st, "name")) ?: "";
        char idbuf[13], cpu[32] = "--", mem[96] = "-- / --", memp[32] = "--", net[96] = "--", blk[96] = "--",
                        pids[32] = "--";

        if (*name == '/')
                name++;
        if (running) {
                double cpu_delta = num(st, "cpu_stats.cpu_usage.total_usage") -
                                   num(st, "precpu_stats.cpu_usage.total_usage");
                double sys_delta = num(st, "cpu_stats.system_cpu_usage") - num(st, "precpu_stats.system_cpu_usage");
                double online = num(st, "cpu_stats.online_cpus");
                if (online == 0)
                        online = (double) json_array_size(
                                json_object_get(json_object_get(json_object_get(st, "cpu_stats"), "cpu_usage"),
                                                "percpu_usage"));
                double cpup = sys_delta > 0 && cpu_delta > 0 ? cpu_delta / sys_delta * online * 100.0 : 0;
                snprintf(cpu, sizeof(cpu), "%.2f%%", cpup);

                double usage = num(st, "memory_stats.usage"), limit = num(st, "memory_stats.limit");
                json_t *ms = json_object_get(json_object_get(st, "memory_stats"), "stats");
                json_t *inactive = json_object_get(ms, "total_inactive_file");
                if (!inactive)
                        inactive = json_object_get(ms, "inactive_file");
                if (json_is_number(inactive) && json_number_value(inactive) < usage)
                        usage -= json_number_value(inactive);
                char u[32], l[32];
                bytes_size(usage, u, sizeof(u));
                bytes_size(limit, l, sizeof(l));
                snprintf(mem, sizeof(mem), "%s / %s", u, l);
                snprintf(memp, sizeof(memp), "%.2f%%", limit > 0 ? usage / limit * 100.0 : 0);

                double rx = 0, tx = 0, rd = 0, wr = 0;
                const char *k;
                json_t *v;
                size_t i;
                json_object_foreach(json_object_get(st, "networks"), k, v) {
                        rx += num(v, "rx_bytes");
                        tx += num(v, "tx_bytes");
                }
                json_array_foreach(json_object_get(json_object_get(st, "blkio_stats"), "io_service_bytes_recursive"),
                                   i, v) {
                        const char *op = json_string_value(json_object_get(v, "op")) ?: "";
                        if (*op == 'r' || *op == 'R')
                                rd += num(v, "value");
                        else if (*op == 'w' || *op == 'W')
                                wr += num(v, "value");
                }
                char a[32], b[32];
                cli_human_size((int64_t) rx, a, sizeof(a));
                cli_human_size((int64_t) tx, b, sizeof(b));
                snprintf(net, sizeof(net), "%s / %s", a, b);
                cli_human_size((int64_t) rd, a, sizeof(a));
                cli_human_size((int64_t) wr, b, sizeof(b));
                snprintf(blk, sizeof(blk), "%s / %s", a, b);
                snprintf(pids, sizeof(pids), "%.0f", num(st, "pids_stats.current"));
        } else {
                snprintf(cpu, sizeof(cpu), "0.00%%");
                snprintf(mem, sizeof(mem), "0B / 0B");
                snprintf(memp, sizeof(memp), "0.00%%");
                snprintf(net, sizeof(net), "0B / 0B");
                snprintf(blk, sizeof(blk), "0B / 0B");
                snprintf(pids, sizeof(pids), "0");
        }
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Container", asked, "Name", name, "ID",
                         trunc ? cli_short_id(id, idbuf) : id, "CPUPerc", cpu, "MemUsage", mem, "MemPerc", memp,
                         "NetIO", net, "BlockIO", blk, "PIDs", pids);
}

int cmd_stats(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_NO_STREAM = 256, OPT_NO_TRUNC, OPT_FORMAT };
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "no-stream", no_argument, NULL, OPT_NO_STREAM },
                { "no-trunc", no_argument, NULL, OPT_NO_TRUNC },
                { "format", required_argument, NULL, OPT_FORMAT },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        _cleanup_strv_free_ char **names = NULL;
        const char *format = DEFAULT_FORMAT;
        bool all = false, stream = true, trunc = true;
        size_t n_names = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, ":a", options, NULL)) != -1) {
                switch (c) {
                case 'a':
                        all = true;
                        break;
                case OPT_NO_STREAM:
                        stream = false;
                        break;
                case OPT_NO_TRUNC:
                        trunc = false;
                        break;
                case OPT_FORMAT:
                        format = streq(optarg, "table") ? DEFAULT_FORMAT : optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        r = cli_format_parse("stats", format, fields, &fmt, reterr);
        if (r < 0)
                return r;
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        names = calloc((size_t) argc + 1024, sizeof(char *));
        if (!names)
                return moat_error_set(reterr, -ENOMEM, "stats");
        if (optind < argc)
                for (int i = optind; i < argc; i++) {
                        names[n_names] = strdup(argv[i]);
                        if (!names[n_names++])
                                return moat_error_set(reterr, -ENOMEM, "stats");
                }
        else {
                _cleanup_json_ json_t *list = NULL;
                json_t *item;
                size_t i;
                r = moat_client_call(client, "GET", all ? "/containers/json?all=1" : "/containers/json", NULL, NULL,
                                     &list, reterr);
                if (r < 0)
                        return r;
                json_array_foreach(list, i, item) {
                        const char *id = json_string_value(json_object_get(item, "Id"));
                        if (!id || n_names >= (size_t) argc + 1023)
                                continue;
                        names[n_names] = strdup(id);
                        if (!names[n_names++])
                                return moat_error_set(reterr, -ENOMEM, "stats");
                }
        }

        for (;;) {
                _cleanup_table_ struct cli_table *table = cli_format_is_table(fmt) ? cli_table_new() : NULL;
                bool failed = false;
                if (cli_format_is_table(fmt)) {
                        _cleanup_free_ char *head = NULL;
                        if (!table || cli_format_header(fmt, fields, headers, &head) < 0 || cli_table_add(table, head) < 0)
                                return moat_error_set(reterr, -ENOMEM, "stats");
                }
                for (size_t i = 0; i < n_names; i++) {
                        _cleanup_free_ char *e = moat_client_escape(names[i]), *target = NULL, *line = NULL;
                        _cleanup_json_ json_t *st = NULL, *c_json = NULL, *rw = NULL;
                        _cleanup_error_ struct moat_error *err = NULL;
                        if (!e || asprintf(&target, "/containers/%s/stats?stream=0", e) < 0)
                                return moat_error_set(reterr, -ENOMEM, "stats");
                        r = cli_container_inspect(client, names[i], &c_json, &err);
                        if (r >= 0)
                                r = moat_client_call(client, "GET", target, NULL, NULL, &st, &err);
                        if (r < 0) {
                                if (r == -ECONNREFUSED) {
                                        *reterr = TAKE_PTR(err);
                                        return r;
                                }
                                cli_print_error(err);
                                failed = true;
                                continue;
                        }
                        bool running = json_is_true(json_object_get(json_object_get(c_json, "State"), "Running"));
                        rw = row(st, names[i], trunc, running);
                        if (!rw)
                                return moat_error_set(reterr, -ENOMEM, "stats");
                        r = cli_format_render(fmt, "stats", rw, &line, reterr);
                        if (r < 0)
                                return r;
                        if (table) {
                                if (cli_table_add(table, line) < 0)
                                        return moat_error_set(reterr, -ENOMEM, "stats");
                        } else
                                printf("%s\n", line);
                }
                if (stream)
                        printf("\033[2J\033[H");
                if (table)
                        cli_table_print(table, stdout);
                fflush(stdout);
                if (!stream)
                        return failed ? CLI_FAILED_REPORTED : 0;
                if (n_names == 0)
                        sleep(1);
        }
}
