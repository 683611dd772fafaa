/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat system df|events|info|prune: docker's system group.
 *
 * df reads GET /system/df and prints docker's summary (TYPE, TOTAL,
 * ACTIVE, SIZE, RECLAIMABLE computed as docker's formatter does: an
 * image is active with a container, a container when running, paused or
 * restarting, a volume when referenced) or, with -v, its four tables.
 * moat has no build cache: that row is always empty, as docker prints it
 * for a daemon without one.
 *
 * prune asks docker's question (on standard input, unless -f), then
 * POSTs /containers/prune, /volumes/prune (--volumes: anonymous ones) and
 * /images/prune (dangling, or with -a every unused image), each with the
 * --filter values, and prints their reports and the total reclaimed.
 * moat has no networks nor build cache, so there is nothing of theirs to
 * prune and the question does not mention them.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static bool container_active(json_t *c)
{
        const char *state = json_string_value(json_object_get(c, "State"));
        return state && (streq(state, "running") || streq(state, "paused") || streq(state, "restarting"));
}

static void size_pct(int64_t reclaimable, int64_t total, char *buf, size_t len)
{
        char h[32];
        cli_human_size4((uint64_t) (reclaimable < 0 ? 0 : reclaimable), h, sizeof(h));
        if (total > 0)
                snprintf(buf, len, "%s (%lld%%)", h, (long long) (reclaimable * 100 / total));
        else
                snprintf(buf, len, "%s", h);
}

static json_t *summary_row(const char *type, size_t total, size_t active, int64_t size, const char *reclaimable)
{
        char t[32], a[32], s[32];
        snprintf(t, sizeof(t), "%zu", total);
        snprintf(a, sizeof(a), "%zu", active);
        cli_human_size4((uint64_t) size, s, sizeof(s));
        return json_pack("{s:s, s:s, s:s, s:s, s:s}", "Type", type, "TotalCount", t, "Active", a, "Size", s,
                         "Reclaimable", reclaimable);
}

static int df_summary(json_t *df, const char *format, struct moat_error **reterr)
{
        static const char *const fields[] = { "Type", "TotalCount", "Active", "Size", "Reclaimable", NULL };
        static const char *const headers[] = { "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE" };
        _cleanup_json_ json_t *rows = json_array();
        json_t *images = json_object_get(df, "Images"), *containers = json_object_get(df, "Containers");
        json_t *volumes = json_object_get(df, "Volumes"), *v;
        int64_t layers = json_integer_value(json_object_get(df, "LayersSize")), used = 0, csize = 0, creclaim = 0;
        int64_t vsize = 0, vreclaim = 0;
        size_t i, iactive = 0, cactive = 0, vactive = 0;
        char buf[64];

        if (!rows)
                return moat_error_set(reterr, -ENOMEM, "system df");
        json_array_foreach(images, i, v) {
                int64_t size = json_integer_value(json_object_get(v, "Size"));
                int64_t shared = json_integer_value(json_object_get(v, "SharedSize"));
                if (json_integer_value(json_object_get(v, "Containers")) == 0)
                        continue;
                iactive++;
                if (size != -1 && shared != -1)
                        used += size - shared;
        }
        size_pct(layers - used, layers, buf, sizeof(buf));
        json_array_append_new(rows, summary_row("Images", json_array_size(images), iactive, layers, buf));
        json_array_foreach(containers, i, v) {
                int64_t rw = json_integer_value(json_object_get(v, "SizeRw"));
                csize += rw;
                if (container_active(v))
                        cactive++;
                else
                        creclaim += rw;
        }
        size_pct(creclaim, csize, buf, sizeof(buf));
        json_array_append_new(rows, summary_row("Containers", json_array_size(containers), cactive, csize, buf));
        json_array_foreach(volumes, i, v) {
                json_t *u = json_object_get(v, "UsageData");
                int64_t size = json_integer_value(json_object_get(u, "Size"));
                if (size > 0)
                        vsize += size;
                if (json_integer_value(json_object_get(u, "RefCount")) > 0)
                        vactive++;
                else if (size > 0)
                        vreclaim += size;
        }
        size_pct(vreclaim, vsize, buf, sizeof(buf));
        json_array_append_new(rows, summary_row("Local Volumes", json_array_size(volumes), vactive, vsize, buf));
        json_array_append_new(rows, summary_row("Build Cache", 0, 0, 0, "0B"));
        return cli_print_list("system df", format,
                              "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", fields,
                              headers, rows, reterr);
}

static int print_table(const char *format, json_t *rows, struct moat_error **reterr)
{
        static const char *const fields[] = { "Repository", "Tag", "ID", "CreatedSince", "Size", "SharedSize",
                                              "UniqueSize", "Containers", "Image", "Command", "LocalVolumes",
                                              "RunningFor", "Status", "Names", "Name", "Links", NULL };
        static const char *const image_headers[] = { "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE",
                                                     "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS", "IMAGE", "COMMAND",
                                                     "LOCAL VOLUMES", "CREATED", "STATUS", "NAMES", "VOLUME NAME",
                                                     "LINKS" };
        static const char *const container_headers[] = { "REPOSITORY", "TAG", "CONTAINER ID", "CREATED", "SIZE",
                                                         "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS", "IMAGE",
                                                         "COMMAND", "LOCAL VOLUMES", "CREATED", "STATUS", "NAMES",
                                                         "VOLUME NAME", "LINKS" };
        return cli_print_list("system df", format, format, fields,
                              strstr(format, "{{.Repository}}") ? image_headers : container_headers, rows, reterr);
}

static char *joined_names(json_t *names)
{
        char *buf = NULL;
        size_t size = 0, i;
        json_t *n;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        json_array_foreach(names, i, n) {
                const char *s = json_string_value(n) ?: "";
                fprintf(f, "%s%s", i ? "," : "", s[0] == '/' ? s + 1 : s);
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* Go encodes the rows (maps) with sorted keys. */
static json_t *sorted_rows(json_t *rows)
{
        _cleanup_free_ char *text = json_dumps(rows, JSON_COMPACT | JSON_SORT_KEYS);
        return text ? json_loads(text, 0, NULL) : NULL;
}

static int df_verbose(json_t *df, bool json, struct moat_error **reterr)
{
        _cleanup_json_ json_t *irows = json_array(), *crows = json_array(), *vrows = NULL;
        json_t *v, *tag;
        size_t i, k;
        int r;

        if (!irows || !crows)
                return moat_error_set(reterr, -ENOMEM, "system df");
        json_array_foreach(json_object_get(df, "Images"), i, v) {
                int64_t size = json_integer_value(json_object_get(v, "Size"));
                int64_t shared = json_integer_value(json_object_get(v, "SharedSize"));
                char id[13], since[64], s[32], s4[32], sh[32], un[32], ctr[32], local[64] = "";
                const char *digest = json_string_value(json_object_get(v, "Id")) ?: "";
                json_t *tags = json_object_get(v, "RepoTags");
                cli_short_id(digest, id);
                cli_time_since_unix((time_t) json_integer_value(json_object_get(v, "Created")), since, sizeof(since));
                cli_human_size(size, s, sizeof(s));
                cli_human_size4((uint64_t) size, s4, sizeof(s4));
                cli_human_size4((uint64_t) shared, sh, sizeof(sh));
                cli_human_size4((uint64_t) (size - shared), un, sizeof(un));
                snprintf(ctr, sizeof(ctr), "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(v, "Containers")));
                time_t created = (time_t) json_integer_value(json_object_get(v, "Created"));
                struct tm tm;
                if (localtime_r(&created, &tm))
                        strftime(local, sizeof(local), "%Y-%m-%d %H:%M:%S %z %Z", &tm);
                size_t n = json_array_size(tags);
                for (k = 0; k < (n ? n : 1); k++) {
                        const char *text = n ? json_string_value(json_array_get(tags, k)) : NULL;
                        _cleanup_free_ char *repo = NULL;
                        const char *t = "<none>";
                        if (text) {
                                const char *slash = strrchr(text, '/'), *colon = strrchr(text, ':');
                                repo = colon && (!slash || colon > slash) ? strndup(text, (size_t) (colon - text))
                                                                           : strdup(text);
                                if (colon && (!slash || colon > slash))
                                        t = colon + 1;
                        }
                        tag = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Repository",
                                        repo ? repo : "<none>", "Tag", t, "ID", json ? digest : id, "CreatedSince",
                                        since, "CreatedAt", local, "Size", s, "SharedSize", sh, "UniqueSize", un,
                                        "Containers", ctr, "Digest", "", "VirtualSize", s4);
                        if (!tag || json_array_append_new(irows, tag) < 0)
                                return moat_error_set(reterr, -ENOMEM, "system df");
                }
        }
        json_array_foreach(json_object_get(df, "Containers"), i, v) {
                const char *cid = json_string_value(json_object_get(v, "Id")) ?: "";
                const char *cmd = json_string_value(json_object_get(v, "Command")) ?: "";
                _cleanup_free_ char *names = joined_names(json_object_get(v, "Names")), *quoted = NULL;
                char id[13], since[64], s[32], nvol[16], shortcmd[64];
                size_t nlocal = 0;
                json_t *m;
                json_array_foreach(json_object_get(v, "Mounts"), k, m)
                        nlocal += streq(json_string_value(json_object_get(m, "Driver")) ?: "", "local");
                snprintf(nvol, sizeof(nvol), "%zu", nlocal);
                cli_short_id(cid, id);
                cli_time_since_unix((time_t) json_integer_value(json_object_get(v, "Created")), since, sizeof(since));
                cli_human_size(json_integer_value(json_object_get(v, "SizeRw")), s, sizeof(s));
                /* docker's Ellipsis(command, 20), then strconv.Quote */
                if (!json && strlen(cmd) > 20)
                        snprintf(shortcmd, sizeof(shortcmd), "%.19s…", cmd);
                else
                        snprintf(shortcmd, sizeof(shortcmd), "%s", cmd);
                if (!names || asprintf(&quoted, "\"%s\"", shortcmd) < 0)
                        return moat_error_set(reterr, -ENOMEM, "system df");
                char created[64] = "";
                time_t ct = (time_t) json_integer_value(json_object_get(v, "Created"));
                struct tm ctm;
                if (localtime_r(&ct, &ctm))
                        strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S %z %Z", &ctm);
                _cleanup_free_ char *mounts = NULL, *labels = NULL;
                size_t msize = 0, lsize = 0;
                FILE *mf = open_memstream(&mounts, &msize), *lf = open_memstream(&labels, &lsize);
                if (!mf || !lf) {
                        if (mf)
                                fclose(mf);
                        if (lf)
                                fclose(lf);
                        return moat_error_set(reterr, -ENOMEM, "system df");
                }
                json_array_foreach(json_object_get(v, "Mounts"), k, m) {
                        const char *mn = json_string_value(json_object_get(m, "Name"));
                        fprintf(mf, "%s%s", k ? "," : "", mn ? mn : json_string_value(json_object_get(m, "Source")) ?: "");
                }
                const char *lk;
                json_t *lv;
                size_t li = 0;
                json_object_foreach(json_object_get(v, "Labels"), lk, lv)
                        fprintf(lf, "%s%s=%s", li++ ? "," : "", lk, json_string_value(lv) ?: "");
                fclose(mf);
                fclose(lf);
                json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:n, s:s}",
                                        "ID", json ? cid : id,
                                        "Image", json_string_value(json_object_get(v, "Image")) ?: "", "Command",
                                        quoted, "LocalVolumes", nvol, "Size", s, "RunningFor", since, "Status",
                                        json_string_value(json_object_get(v, "Status")) ?: "", "Names", names,
                                        "State", json_string_value(json_object_get(v, "State")) ?: "", "CreatedAt",
                                        created, "Labels", labels ? labels : "", "Mounts", mounts ? mounts : "",
                                        "Networks", "", "Platform", "Ports", "");
                if (!row || json_array_append_new(crows, row) < 0)
                        return moat_error_set(reterr, -ENOMEM, "system df");
        }
        if (cli_volume_rows(json_object_get(df, "Volumes"), &vrows) < 0)
                return moat_error_set(reterr, -ENOMEM, "system df");
        json_array_foreach(vrows, i, v) {
                /* df's volumes carry their usage: Size with docker's four digits */
                json_t *src = NULL, *x;
                json_array_foreach(json_object_get(df, "Volumes"), k, x)
                        if (json_equal(json_object_get(x, "Name"), json_object_get(v, "Name")))
                                src = x;
                json_t *u = json_object_get(src, "UsageData");
                char s[32] = "N/A";
                if (json_object_get(u, "Size") && json_integer_value(json_object_get(u, "Size")) >= 0)
                        cli_human_size4((uint64_t) json_integer_value(json_object_get(u, "Size")), s, sizeof(s));
                json_object_set_new(v, "Size", json_string(s));
        }
        if (json) {
                _cleanup_json_ json_t *all = json_pack("{s:o, s:o, s:o, s:[]}", "Images", sorted_rows(irows), "Containers",
                                                       sorted_rows(crows), "Volumes", sorted_rows(vrows), "BuildCache");
                _cleanup_free_ char *text = all ? cli_json_dumps(all, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
                if (!text)
                        return moat_error_set(reterr, -ENOMEM, "system df");
                printf("%s", text); /* docker ends it without a newline */
                return 0;
        }
        printf("Images space usage:\n\n");
        r = print_table("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t"
                        "{{.UniqueSize}}\t{{.Containers}}",
                        irows, reterr);
        if (r < 0)
                return r;
        printf("\nContainers space usage:\n\n");
        r = print_table("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t"
                        "{{.Status}}\t{{.Names}}",
                        crows, reterr);
        if (r < 0)
                return r;
        printf("\nLocal Volumes space usage:\n\n");
        r = print_table("table {{.Name}}\t{{.Links}}\t{{.Size}}", vrows, reterr);
        if (r < 0)
                return r;
        printf("\nBuild cache usage: 0B\n\n");
        printf("CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n");
        return 0;
}

static int system_df(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_FORMAT = 256 };
        static const struct option options[] = {
                { "verbose", no_argument, NULL, 'v' },
                { "format", required_argument, NULL, OPT_FORMAT },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *df = NULL;
        const char *format = NULL;
        bool verbose = false;
        int c, r;

        while ((c = getopt_long(argc, argv, ":v", options, NULL)) != -1) {
                switch (c) {
                case 'v':
                        verbose = true;
                        break;
                case OPT_FORMAT:
                        format = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat system df\" accepts no arguments.");
        if (verbose && format && !streq(format, "json") && !streq(format, "{{json .}}") && !streq(format, "table"))
                return moat_error_setx(reterr, -EOPNOTSUPP,
                                       "system df: -v takes --format json or table only (moat)");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = moat_client_call(client, "GET", "/system/df", NULL, NULL, &df, reterr);
        if (r < 0)
                return r;
        if (verbose)
                return df_verbose(df, format && !streq(format, "table"), reterr);
        return df_summary(df, format, reterr);
}

static int prune_one(struct moat_client *client, const char *what, json_t *filters, const char *title,
                     const char *list_key, uint64_t *reclaimed, struct moat_error **reterr)
{
        _cleanup_free_ char *query = NULL, *target = NULL;
        _cleanup_json_ json_t *reply = NULL;
        json_t *list, *v;
        size_t i;
        int r;

        if (cli_filters_query(filters, &query) < 0 ||
            asprintf(&target, "/%s/prune%s%s", what, *query ? "?" : "", query) < 0)
                return moat_error_set(reterr, -ENOMEM, "system prune");
        r = moat_client_call(client, "POST", target, NULL, NULL, &reply, reterr);
        if (r < 0)
                return r;
        *reclaimed += (uint64_t) json_integer_value(json_object_get(reply, "SpaceReclaimed"));
        list = json_object_get(reply, list_key);
        if (json_array_size(list) == 0)
                return 0;
        printf("%s\n", title);
        json_array_foreach(list, i, v) {
                if (json_is_string(v))
                        printf("%s\n", json_string_value(v));
                else {
                        const char *u = json_string_value(json_object_get(v, "Untagged"));
                        const char *d = json_string_value(json_object_get(v, "Deleted"));
                        if (u)
                                printf("untagged: %s\n", u);
                        if (d)
                                printf("deleted: %s\n", d);
                }
        }
        printf("\n");
        return 0;
}

int cli_image_prune_report(struct moat_client *client, json_t *filters, bool all, struct moat_error **reterr)
{
        _cleanup_json_ json_t *f = json_deep_copy(filters ? filters : json_object());
        uint64_t reclaimed = 0;
        char size[32];
        int r;

        if (!f || (all && json_object_set_new(f, "dangling", json_pack("[s]", "false")) < 0))
                return moat_error_set(reterr, -ENOMEM, "image prune");
        r = prune_one(client, "images", f, "Deleted Images:", "ImagesDeleted", &reclaimed, reterr);
        if (r < 0)
                return r;
        cli_human_size4(reclaimed, size, sizeof(size));
        printf("Total reclaimed space: %s\n", size);
        return 0;
}

static int system_prune(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *filters = json_object(), *ifilters = NULL;
        struct cli_prune_opts po;
        uint64_t reclaimed = 0;
        char size[32];
        int r;

        if (!filters)
                return moat_error_set(reterr, -ENOMEM, "system prune");
        r = cli_prune_opts_parse("system prune", argc, argv, true, filters, &po, reterr);
        if (r < 0)
                return r;
        bool all = po.all, force = po.force, volumes = po.volumes;
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        if (!force) {
                _cleanup_free_ char *q = NULL;
                if (asprintf(&q, "WARNING! This will remove:\n  - all stopped containers\n%s%s\n\nAre you sure you "
                                 "want to continue?",
                             volumes ? "  - all anonymous volumes not used by at least one container\n" : "",
                             all ? "  - all images without at least one container associated to them"
                                 : "  - all dangling images") < 0)
                        return moat_error_set(reterr, -ENOMEM, "system prune");
                if (!cli_confirm(q))
                        return 0;
        }
        r = prune_one(client, "containers", filters, "Deleted Containers:", "ContainersDeleted", &reclaimed, reterr);
        if (r >= 0 && volumes)
                r = prune_one(client, "volumes", filters, "Deleted Volumes:", "VolumesDeleted", &reclaimed, reterr);
        if (r >= 0) {
                ifilters = json_deep_copy(filters);
                if (!ifilters || (all && json_object_set_new(ifilters, "dangling", json_pack("[s]", "false")) < 0))
                        return moat_error_set(reterr, -ENOMEM, "system prune");
                r = prune_one(client, "images", ifilters, "Deleted Images:", "ImagesDeleted", &reclaimed, reterr);
        }
        if (r < 0)
                return r;
        cli_human_size4(reclaimed, size, sizeof(size));
        printf("Total reclaimed space: %s\n", size);
        return 0;
}

int cmd_system(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct {
                const char *name;
                moat_cli_verb_fn fn;
        } subs[] = {
                { "df", system_df },
                { "events", cmd_events },
                { "info", cmd_info },
                { "prune", system_prune },
        };

        for (size_t i = 0; argc >= 2 && i < ELEMENTSOF(subs); i++)
                if (streq(argv[1], subs[i].name)) {
                        optind = 0;
                        return subs[i].fn(cli, argc - 1, argv + 1, reterr);
                }
        return moat_error_setx(reterr, -EINVAL, "moat: unknown command: moat system %s\n\nRun 'moat system --help' "
                                                "for more information",
                               argc >= 2 ? argv[1] : "");
}
