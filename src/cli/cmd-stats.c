/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat stats [-a] [--no-stream] [--no-trunc] [--format F] [CONTAINER...]:
 * docker stats. The containers (those named, else the running ones, or
 * all with -a) are shown with docker's columns and math
 * (cli/command/container/stats_helpers.go): CPU % = Δcontainer CPU /
 * Δsystem CPU × online CPUs × 100; memory is usage minus
 * total_inactive_file (v1) or inactive_file (v2); MEM % against the
 * limit; network and block I/O summed.
 *
 * --no-stream samples each once (GET /containers/{id}/stats?stream=0; the
 * daemon fills precpu_stats from a sample a second before). Otherwise, as
 * docker, every container's stream (stream=1) is read at once
 * (client-multi.h) and the table of the latest samples is drawn every
 * second: on a terminal over the last one (clear screen, home), else one
 * table after another. Without names the list is read again each second:
 * containers that started join, those that stopped (without -a) or were
 * removed leave. Named containers stay; one that is not found is an error
 * before the first table, as docker's.
 */

#include <getopt.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client-multi.h"
#include "cli/client.h"

#define REDRAW_MS 1000
#define FIRST_SAMPLE_MS 10000

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

/* ---- streaming ---------------------------------------------------------------------- */

struct tracked {
        char *asked;     /* the name given, or the short id */
        char *id;        /* the full id (listed containers) */
        json_t *last;    /* the latest sample */
        char *error;
        bool ended, dropped;
};

struct follow {
        struct tracked *v;
        size_t n;
        bool listed, all;
};

static void follow_done(struct follow *f)
{
        for (size_t i = 0; i < f->n; i++) {
                free(f->v[i].asked);
                free(f->v[i].id);
                json_decref(f->v[i].last);
                free(f->v[i].error);
        }
        free(f->v);
}

static void on_line(size_t key, const char *line, size_t len, void *userdata)
{
        struct follow *f = userdata;
        json_t *doc = json_loadb(line, len, 0, NULL);

        if (key >= f->n || !json_is_object(doc)) {
                json_decref(doc);
                return;
        }
        json_decref(f->v[key].last);
        f->v[key].last = doc;
}

static void on_end(size_t key, int r, const char *message, void *userdata)
{
        struct follow *f = userdata;

        if (key >= f->n)
                return;
        f->v[key].ended = true;
        if (r < 0 && !f->v[key].error)
                f->v[key].error = strdup(message);
        /* A listed container's stream ends with it: the next list says
         * whether it comes back. */
        if (f->listed)
                f->v[key].dropped = true;
}

static int follow_add(struct follow *f, struct moat_client_multi *m, const char *asked, const char *id,
                      struct moat_error **reterr)
{
        _cleanup_free_ char *e = moat_client_escape(id ? id : asked), *target = NULL;

        if (f->n >= MOAT_CLIENT_MULTI_MAX)
                return moat_error_setx(reterr, -E2BIG, "more than %u containers", MOAT_CLIENT_MULTI_MAX);
        struct tracked *v = reallocarray(f->v, f->n + 1, sizeof(*v));
        if (!v)
                return moat_error_set(reterr, -ENOMEM, "stats");
        f->v = v;
        v[f->n] = (struct tracked) { .asked = strdup(asked), .id = id ? strdup(id) : NULL };
        if (!e || !v[f->n].asked || (id && !v[f->n].id) ||
            asprintf(&target, "/containers/%s/stats?stream=1", e) < 0) {
                free(v[f->n].asked);
                free(v[f->n].id);
                return moat_error_set(reterr, -ENOMEM, "stats");
        }
        f->n++;
        return moat_client_multi_add(m, f->n - 1, target, reterr);
}

/* Without names: follow the containers listed now, forget those gone. */
static int follow_list(struct follow *f, struct moat_client *client, struct moat_client_multi *m,
                       struct moat_error **reterr)
{
        _cleanup_json_ json_t *list = NULL;
        json_t *item;
        size_t i;
        int r;

        r = moat_client_call(client, "GET", f->all ? "/containers/json?all=1" : "/containers/json", NULL, NULL,
                             &list, reterr);
        if (r < 0)
                return r;
        for (size_t k = 0; k < f->n; k++) {
                bool present = false;
                json_array_foreach(list, i, item)
                        present = present || streq(json_string_value(json_object_get(item, "Id")) ?: "", f->v[k].id);
                if (!present && !f->v[k].dropped) {
                        f->v[k].dropped = true;
                        moat_client_multi_remove(m, k);
                }
        }
        json_array_foreach(list, i, item) {
                const char *id = json_string_value(json_object_get(item, "Id"));
                char idbuf[13];
                bool known = false;
                if (!id)
                        continue;
                for (size_t k = 0; k < f->n && !known; k++)
                        known = !f->v[k].dropped && streq(f->v[k].id, id);
                if (known)
                        continue;
                r = follow_add(f, m, cli_short_id(id, idbuf), id, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool sampled(const json_t *st)
{
        const char *read = json_string_value(json_object_get(st, "read"));
        return read && !startswith(read, "0001-01-01");
}

static int follow_draw(struct follow *f, struct cli_format *fmt, bool trunc, bool terminal,
                       struct moat_error **reterr)
{
        _cleanup_table_ struct cli_table *table = cli_format_is_table(fmt) ? cli_table_new() : NULL;
        _cleanup_free_ char *out = NULL;
        size_t size = 0;
        FILE *o = open_memstream(&out, &size);
        int r = 0;

        if (!o)
                return moat_error_set(reterr, -ENOMEM, "stats");
        if (cli_format_is_table(fmt)) {
                _cleanup_free_ char *head = NULL;
                if (!table || cli_format_header(fmt, fields, headers, &head) < 0 || cli_table_add(table, head) < 0)
                        r = moat_error_set(reterr, -ENOMEM, "stats");
        }
        for (size_t i = 0; i < f->n && r >= 0; i++) {
                const struct tracked *t = &f->v[i];
                _cleanup_json_ json_t *rw = NULL;
                _cleanup_free_ char *line = NULL;
                if (t->dropped || (!t->last && !t->ended))
                        continue;
                if (t->last)
                        rw = row(t->last, t->asked, trunc, !t->ended && sampled(t->last));
                else
                        rw = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Container", t->asked, "Name", "--",
                                       "ID", "--", "CPUPerc", "--", "MemUsage", "-- / --", "MemPerc", "--", "NetIO",
                                       "--", "BlockIO", "--", "PIDs", "--");
                if (!rw) {
                        r = moat_error_set(reterr, -ENOMEM, "stats");
                        break;
                }
                r = cli_format_render(fmt, "stats", rw, &line, reterr);
                if (r < 0)
                        break;
                if (table)
                        r = cli_table_add(table, line) < 0 ? moat_error_set(reterr, -ENOMEM, "stats") : 0;
                else
                        fprintf(o, "%s\n", line);
        }
        if (r >= 0 && table)
                cli_table_print(table, o);
        if (fclose(o) != 0 && r >= 0)
                r = moat_error_set(reterr, -ENOMEM, "stats");
        if (r < 0)
                return r;
        /* One write per table, so a terminal never shows half of one. */
        if (terminal)
                fputs("\033[2J\033[H", stdout);
        fwrite(out, 1, size, stdout);
        return fflush(stdout) == 0 ? 0 : moat_error_set(reterr, -errno, "writing stats");
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stats_follow(struct moat_client *client, struct cli_format *fmt, char **names, size_t n_names, bool all,
                        bool trunc, struct moat_error **reterr)
{
        _cleanup_client_multi_ struct moat_client_multi *m = NULL;
        struct follow f = { .listed = n_names == 0, .all = all };
        bool terminal = isatty(STDOUT_FILENO);
        int r;

        r = moat_client_multi_new(client, on_line, on_end, &f, &m, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_names && r >= 0; i++)
                r = follow_add(&f, m, names[i], NULL, reterr);
        if (r >= 0 && f.listed)
                r = follow_list(&f, client, m, reterr);
        /* Named containers: each has a first sample or its error before
         * the first table, and errors end the command as docker's do. */
        for (int64_t until = now_ms() + FIRST_SAMPLE_MS; r >= 0 && !f.listed && now_ms() < until;) {
                bool waiting = false;
                for (size_t i = 0; i < f.n; i++)
                        waiting = waiting || (!f.v[i].last && !f.v[i].ended);
                if (!waiting)
                        break;
                r = moat_client_multi_run(m, 100, reterr);
        }
        if (r >= 0 && !f.listed) {
                bool failed = false;
                for (size_t i = 0; i < f.n; i++)
                        if (f.v[i].error) {
                                fprintf(stderr, "%s\n", f.v[i].error);
                                failed = true;
                        }
                if (failed) {
                        follow_done(&f);
                        return CLI_FAILED_REPORTED;
                }
        }
        for (int64_t next = now_ms(); r >= 0;) {
                int64_t wait = next - now_ms();
                if (wait > 0) {
                        r = moat_client_multi_run(m, (int) wait, reterr);
                        continue;
                }
                if (f.listed)
                        r = follow_list(&f, client, m, reterr);
                if (r >= 0)
                        r = follow_draw(&f, fmt, trunc, terminal, reterr);
                next += REDRAW_MS;
        }
        follow_done(&f);
        return r;
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
        if (stream)
                return stats_follow(client, fmt, argv + optind, (size_t) (argc - optind), all, trunc, reterr);
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
        if (table)
                cli_table_print(table, stdout);
        fflush(stdout);
        return failed ? CLI_FAILED_REPORTED : 0;
}
