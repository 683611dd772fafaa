/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat ps [-a] [-q] [-n N] [-l] [--filter K=V]... [--format F] [--no-trunc]
 * [-s]: docker ps. GET /containers/json with all, limit, size and filters
 * ({"key":["value",...]}); each container becomes the fields of docker's
 * formatter (ID, Image, Command, CreatedAt, RunningFor, Ports, State,
 * Status, Size, Names, Labels, Mounts, Networks) printed as docker's
 * table, a --format template or JSON lines. IDs are cut to 12 characters
 * and commands to 20 (with "…", then quoted) unless --no-trunc.
 */

#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "base/cleanup.h"
#include "base/parse.h"
#include "cli/cli.h"
#include "cli/client.h"

#define MAX_FILTERS 64

static const char *const fields[] = { "ID", "Image", "Command", "CreatedAt", "RunningFor", "Ports", "State",
                                      "Status", "Size", "Names", "Labels", "Mounts", "Networks", "LocalVolumes",
                                      NULL };
static const char *const headers[] = { "CONTAINER ID", "IMAGE", "COMMAND", "CREATED AT", "CREATED", "PORTS", "STATE",
                                       "STATUS", "SIZE", "NAMES", "LABELS", "MOUNTS", "NETWORKS", "LOCAL VOLUMES",
                                       NULL };

/* docker's formatter.Ellipsis: at most max characters, the last one "…". */
static char *ellipsis(const char *s, size_t max)
{
        size_t chars = 0, cut = 0;
        for (const char *p = s; *p; p++)
                if (((unsigned char) *p & 0xc0) != 0x80) {
                        if (chars == max - 1)
                                cut = (size_t) (p - s);
                        chars++;
                }
        if (chars <= max)
                return strdup(s);
        char *out = malloc(cut + 4);
        if (!out)
                return NULL;
        memcpy(out, s, cut);
        memcpy(out + cut, "…", 4);
        return out;
}

/* Go's strconv.Quote for the text a command holds. */
static char *go_quote(const char *s)
{
        char *out = malloc(strlen(s) * 4 + 3), *o = out;
        if (!out)
                return NULL;
        *o++ = '"';
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\') {
                        *o++ = '\\';
                        *o++ = (char) *p;
                } else if (*p == '\n')
                        o += sprintf(o, "\\n");
                else if (*p == '\t')
                        o += sprintf(o, "\\t");
                else if (*p == '\r')
                        o += sprintf(o, "\\r");
                else if (*p < 0x20 || *p == 0x7f)
                        o += sprintf(o, "\\x%02x", *p);
                else
                        *o++ = (char) *p;
        }
        *o++ = '"';
        *o = 0;
        return out;
}

static char *join_names(json_t *names)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, i;
        json_t *n;
        FILE *f = open_memstream(&buf, &len);
        bool first = true;
        if (!f)
                return NULL;
        json_array_foreach(names, i, n) {
                const char *s = json_string_value(n);
                if (!s)
                        continue;
                if (*s == '/')
                        s++;
                if (strchr(s, '/')) /* a link's name, not the container's own */
                        continue;
                fprintf(f, "%s%s", first ? "" : ",", s);
                first = false;
        }
        fclose(f);
        return TAKE_PTR(buf);
}

static char *ports_text(json_t *ports)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, i;
        json_t *p;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        json_array_foreach(ports, i, p) {
                const char *ip = json_string_value(json_object_get(p, "IP"));
                const char *type = json_string_value(json_object_get(p, "Type"));
                json_int_t priv = json_integer_value(json_object_get(p, "PrivatePort"));
                json_int_t pub = json_integer_value(json_object_get(p, "PublicPort"));
                fputs(i ? ", " : "", f);
                if (pub)
                        fprintf(f, "%s:%" JSON_INTEGER_FORMAT "->", ip && *ip ? ip : "0.0.0.0", pub);
                fprintf(f, "%" JSON_INTEGER_FORMAT "/%s", priv, type ? type : "tcp");
        }
        fclose(f);
        return TAKE_PTR(buf);
}

static char *map_text(json_t *labels)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        const char *k;
        json_t *v;
        bool first = true;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        json_object_foreach(labels, k, v) {
                fprintf(f, "%s%s=%s", first ? "" : ",", k, json_is_string(v) ? json_string_value(v) : "");
                first = false;
        }
        fclose(f);
        return TAKE_PTR(buf);
}

static json_t *row_json(json_t *c, bool trunc, bool size)
{
        _cleanup_free_ char *names = join_names(json_object_get(c, "Names"));
        _cleanup_free_ char *ports = ports_text(json_object_get(c, "Ports"));
        _cleanup_free_ char *labels = map_text(json_object_get(c, "Labels"));
        _cleanup_free_ char *cmd_short = NULL, *cmd = NULL, *nets = NULL, *mounts = NULL;
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *command = json_string_value(json_object_get(c, "Command"));
        char idbuf[13], running_for[64], created_at[64] = "", sizebuf[96] = "";
        time_t created = (time_t) json_integer_value(json_object_get(c, "Created"));
        struct tm tm;

        if (!names || !ports || !labels)
                return NULL;
        cmd_short = trunc ? ellipsis(command ? command : "", 20) : strdup(command ? command : "");
        cmd = cmd_short ? go_quote(cmd_short) : NULL;
        if (!cmd)
                return NULL;
        cli_time_since_unix(created, running_for, sizeof(running_for));
        if (localtime_r(&created, &tm))
                strftime(created_at, sizeof(created_at), "%Y-%m-%d %H:%M:%S %z %Z", &tm);
        json_t *networks = json_object_get(json_object_get(c, "NetworkSettings"), "Networks");
        const char *k;
        json_t *v;
        size_t i, nl = 0, ml = 0;
        FILE *f = open_memstream(&nets, &nl);
        if (!f)
                return NULL;
        bool first = true;
        json_object_foreach(networks, k, v) {
                fprintf(f, "%s%s", first ? "" : ",", k);
                first = false;
        }
        fclose(f);
        f = open_memstream(&mounts, &ml);
        if (!f)
                return NULL;
        json_array_foreach(json_object_get(c, "Mounts"), i, v) {
                const char *name = json_string_value(json_object_get(v, "Name"));
                const char *src = json_string_value(json_object_get(v, "Source"));
                fprintf(f, "%s%s", i ? "," : "", name && *name ? name : src ? src : "");
        }
        fclose(f);
        if (size) {
                char rw[32], root[32];
                cli_human_size(json_integer_value(json_object_get(c, "SizeRw")), rw, sizeof(rw));
                cli_human_size(json_integer_value(json_object_get(c, "SizeRootFs")), root, sizeof(root));
                snprintf(sizebuf, sizeof(sizebuf), "%s (virtual %s)", rw, root);
        } else
                snprintf(sizebuf, sizeof(sizebuf), "0B");
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "ID",
                         trunc ? cli_short_id(id ? id : "", idbuf) : (id ? id : ""), "Image",
                         json_string_value(json_object_get(c, "Image")) ?: "", "Command", cmd, "CreatedAt", created_at,
                         "RunningFor", running_for, "Ports", ports, "State",
                         json_string_value(json_object_get(c, "State")) ?: "", "Status",
                         json_string_value(json_object_get(c, "Status")) ?: "", "Size", sizebuf, "Names", names,
                         "Labels", labels, "Mounts", mounts, "Networks", nets, "LocalVolumes", "0");
}

int cmd_ps(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_FORMAT = 256, OPT_NO_TRUNC };
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "quiet", no_argument, NULL, 'q' },
                { "last", required_argument, NULL, 'n' },
                { "latest", no_argument, NULL, 'l' },
                { "filter", required_argument, NULL, 'f' },
                { "format", required_argument, NULL, OPT_FORMAT },
                { "no-trunc", no_argument, NULL, OPT_NO_TRUNC },
                { "size", no_argument, NULL, 's' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        _cleanup_table_ struct cli_table *table = NULL;
        _cleanup_json_ json_t *filters = json_object(), *list = NULL;
        _cleanup_free_ char *target = NULL, *ftext = NULL, *fesc = NULL;
        const char *format = NULL;
        bool all = false, quiet = false, trunc = true, size = false;
        int limit = -1, c, r;
        size_t n_filters = 0, i;
        json_t *item;

        if (!filters)
                return moat_error_set(reterr, -ENOMEM, "ps");
        while ((c = getopt_long(argc, argv, ":aqn:lf:s", options, NULL)) != -1) {
                switch (c) {
                case 'a':
                        all = true;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case 'n':
                        if (safe_atoi(optarg, &limit) < 0)
                                return moat_error_setx(reterr, -EINVAL,
                                                       "invalid argument \"%s\" for \"-n, --last\" flag: invalid syntax",
                                                       optarg);
                        break;
                case 'l':
                        limit = 1;
                        break;
                case 's':
                        size = true;
                        break;
                case 'f': {
                        const char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg)
                                return moat_error_setx(reterr, -EINVAL, "bad format of filter (expected name=value)");
                        if (++n_filters > MAX_FILTERS)
                                return moat_error_setx(reterr, -E2BIG, "more than %d filters", MAX_FILTERS);
                        _cleanup_free_ char *key = strndup(optarg, (size_t) (eq - optarg));
                        if (!key)
                                return moat_error_set(reterr, -ENOMEM, "ps");
                        json_t *a = json_object_get(filters, key);
                        if (!a) {
                                a = json_array();
                                json_object_set_new(filters, key, a);
                        }
                        json_array_append_new(a, json_string(eq + 1));
                        break;
                }
                case OPT_FORMAT:
                        format = optarg;
                        break;
                case OPT_NO_TRUNC:
                        trunc = false;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat ps\" accepts no arguments.");
        if (quiet)
                format = "{{.ID}}";
        if (!format || streq(format, "table"))
                format = size ? "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t"
                                "{{.Names}}\t{{.Size}}"
                              : "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t"
                                "{{.Names}}";
        r = cli_format_parse("ps", format, fields, &fmt, reterr);
        if (r < 0)
                return r;
        if (strstr(format, ".Size"))
                size = true;

        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        if (json_object_size(filters) > 0) {
                ftext = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
                fesc = ftext ? moat_client_escape(ftext) : NULL;
                if (!fesc)
                        return moat_error_set(reterr, -ENOMEM, "ps");
        }
        if (asprintf(&target, "/containers/json?all=%d%s%s%s%s", all || limit > 0, size ? "&size=1" : "",
                     fesc ? "&filters=" : "", fesc ? fesc : "", "") < 0)
                return moat_error_set(reterr, -ENOMEM, "ps");
        if (limit > 0) {
                char *t = NULL;
                if (asprintf(&t, "%s&limit=%d", target, limit) < 0)
                        return moat_error_set(reterr, -ENOMEM, "ps");
                free(target);
                target = t;
        }
        r = moat_client_call(client, "GET", target, NULL, NULL, &list, reterr);
        if (r < 0)
                return r;
        if (!json_is_array(list))
                return moat_error_setx(reterr, -EPROTO, "ps: the daemon's reply is not a list");

        if (cli_format_is_table(fmt)) {
                _cleanup_free_ char *head = NULL;
                table = cli_table_new();
                if (!table || cli_format_header(fmt, fields, headers, &head) < 0 || cli_table_add(table, head) < 0)
                        return moat_error_set(reterr, -ENOMEM, "ps");
        }
        json_array_foreach(list, i, item) {
                _cleanup_free_ char *line = NULL;
                _cleanup_json_ json_t *row = row_json(item, trunc, size);
                if (!row)
                        return moat_error_set(reterr, -ENOMEM, "ps");
                r = cli_format_render(fmt, "ps", row, &line, reterr);
                if (r < 0)
                        return r;
                if (table) {
                        if (cli_table_add(table, line) < 0)
                                return moat_error_set(reterr, -ENOMEM, "ps");
                } else
                        printf("%s\n", line);
        }
        if (table)
                cli_table_print(table, stdout);
        return 0;
}
