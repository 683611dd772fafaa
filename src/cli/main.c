/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat: the client binary of DESIGN.md. Parses the global options, then
 * dispatches to one cmd-<verb>.c per verb; every verb returns -errno with
 * an error, which is printed here, once; --help/-h of any verb is answered
 * here from help.c's table before the verb runs. The shared helpers of
 * the verbs (sizes, times, durations, filters, docker's --format
 * templates and tabwriter tables) live here too.
 *
 * Every verb docker has is a client of the daemon's Docker Engine API
 * (client.h), the image verbs included. Three verbs have no Docker API
 * and run the image library on --root's store: verify (re-hash the
 * store), mount and unmount (an image's root filesystem on the host).
 * moat does not link that library (it is a static executable, exec'd for
 * every container start): those verbs, and daemon, exec a helper
 * (helper.c), after their --help has been answered here.
 *
 * The container verbs are clients of `moat daemon` (client.h); their
 * errors are printed as docker prints them: the daemon's own words
 * ("Error response from daemon: No such container: x") without a prefix,
 * run and create's with "moat: " as docker's with "docker: ".
 *
 * The --format helper is hand-written: docker's formats are Go templates
 * and no C library implements them; moat takes the subset docker users
 * write on the command line ({{.Field}}, {{json .}}, "table", \t) and
 * refuses the rest by name rather than guess.
 */

#include <getopt.h>
#include <stdio.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/json-seed.h"
#include "base/log.h"
#include "base/parse.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "moat-config.h"

#define MOAT_DEFAULT_ROOT "/var/lib/moat"

static const struct {
        const char *name;
        moat_cli_verb_fn fn;
        const char *summary;
        bool plain_errors;      /* docker's way: the message alone */
} verbs[] = {
        { "run", cmd_run, "create and run a container from an image", false },
        { "create", cmd_create, "create a container", false },
        { "start", cmd_start, "start stopped containers", true },
        { "stop", cmd_stop, "stop running containers", true },
        { "restart", cmd_restart, "restart containers", true },
        { "kill", cmd_kill, "send a signal to running containers", true },
        { "rm", cmd_rm, "remove containers", true },
        { "ps", cmd_ps, "list containers", true },
        { "logs", cmd_logs, "show a container's logs", true },
        { "exec", cmd_exec, "run a command in a running container", true },
        { "attach", cmd_attach, "attach to a running container's input and output", true },
        { "top", cmd_top, "show a container's processes", true },
        { "diff", cmd_diff, "show the changes to a container's filesystem", true },
        { "cp", cmd_cp, "copy files between a container and the host", true },
        { "export", cmd_export, "write a container's filesystem as a tar archive", true },
        { "stats", cmd_stats, "show containers' resource usage", true },
        { "pause", cmd_pause, "pause the processes of containers", true },
        { "unpause", cmd_unpause, "unpause the processes of containers", true },
        { "update", cmd_update, "change the resource limits of containers", true },
        { "rename", cmd_rename, "rename a container", true },
        { "wait", cmd_wait, "wait for containers to stop and print their exit codes", true },
        { "version", cmd_version, "show the client's and the daemon's versions", true },
        { "info", cmd_info, "show the daemon's system-wide information", true },
        { "events", cmd_events, "show the daemon's events as they happen", true },
        { "system", cmd_system, "system df|events|info|prune", true },
        { "volume", cmd_volume, "manage volumes: create, ls, inspect, rm, prune", true },
        { "inspect", cmd_container_inspect, "show containers' or images' details as JSON", false },
        { "images", cmd_images, "list images", false },
        { "load", cmd_load, "load images from a docker-archive or OCI tarball", false },
        { "rmi", cmd_rmi, "remove image references and unreferenced blobs", false },
        { "tag", cmd_tag, "add a reference to an image", false },
        { "save", cmd_save, "write images to a docker-archive or OCI tarball", false },
        { "import", cmd_import, "make a one-layer image from a root filesystem tarball", false },
        { "history", cmd_history, "show an image's layers and how they were made", false },
        { "verify", cmd_image_helper, "re-hash every blob and layer of the image store", false },
        { "prune", cmd_prune, "remove unused images and unreferenced data", false },
        { "image prune", cmd_prune, NULL, false },
        { "image inspect", cmd_image_inspect, NULL, false },
        { "mount", cmd_image_helper, "mount an image's root filesystem read-only and print where", false },
        { "unmount", cmd_image_helper, "unmount what mount mounted", false },
        { "daemon", cmd_daemon, "run the moat daemon", false },
};

/* docker's group spellings of the verbs above */
static const struct {
        const char *group, *sub, *verb;
} group_verbs[] = {
        { "container", "ls", "ps" },
        { "container", "list", "ps" },
        { "image", "ls", "images" },
        { "image", "list", "images" },
        { "image", "rm", "rmi" },
        { "image", "remove", "rmi" },
        { "image", "load", "load" },
        { "image", "save", "save" },
        { "image", "import", "import" },
        { "image", "tag", "tag" },
        { "image", "history", "history" },
        { "image", "inspect", "image inspect" },
        { "image", "prune", "image prune" },
};

const char *cli_short_id(const char *digest, char buf[static 13])
{
        const char *colon = digest ? strchr(digest, ':') : NULL;
        snprintf(buf, 13, "%s", colon ? colon + 1 : (digest ? digest : ""));
        return buf;
}

int cli_parse_time(const char *text, time_t *ret)
{
        struct tm tm = {};
        const char *end;

        if (strempty(text) || !(end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm)))
                return -EINVAL;
        time_t t = timegm(&tm);
        if (*end == '.')
                for (end++; *end >= '0' && *end <= '9'; end++)
                        ;
        if ((*end == '+' || *end == '-') && strlen(end) == 6 && end[3] == ':') {
                long off = ((end[1] - '0') * 10 + (end[2] - '0')) * 3600L + ((end[4] - '0') * 10 + (end[5] - '0')) * 60L;
                t += *end == '+' ? -off : off;
        } else if (!streq(end, "Z") && !streq(end, "z"))
                return -EINVAL;
        *ret = t;
        return 0;
}

char *cli_json_dumps(const json_t *v, size_t flags)
{
        _cleanup_free_ char *raw = json_dumps(v, flags);
        size_t extra = 0;
        char *out, *o;

        if (!raw)
                return NULL;
        for (const char *p = raw; *p; p++)
                if (*p == '<' || *p == '>' || *p == '&')
                        extra += 5;
        out = malloc(strlen(raw) + extra + 1);
        if (!out)
                return NULL;
        o = out;
        for (const char *p = raw; *p; p++) {
                /* outside strings JSON has none of these characters */
                if (*p == '<' || *p == '>' || *p == '&')
                        o += sprintf(o, "\\u00%02x", (unsigned) *p);
                else
                        *o++ = *p;
        }
        *o = 0;
        return out;
}

/* ---- --format ---- */

struct cli_segment {
        char *text;    /* literal, or the field path ("" for "."); */
        bool field;
        bool json;
};

struct cli_format {
        bool table, json, default_table;
        struct cli_segment *segs;
        size_t n;
};

void cli_format_free(struct cli_format *f)
{
        if (!f)
                return;
        for (size_t i = 0; i < f->n; i++)
                free(f->segs[i].text);
        free(f->segs);
        free(f);
}

bool cli_format_is_table(const struct cli_format *f)
{
        return f && f->table;
}

bool cli_format_is_json(const struct cli_format *f)
{
        return f && f->json;
}

static int seg_add(struct cli_format *f, const char *text, size_t len, bool field, bool json)
{
        struct cli_segment *v = reallocarray(f->segs, f->n + 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        f->segs = v;
        v[f->n] = (struct cli_segment) { .text = strndup(text, len), .field = field, .json = json };
        if (!v[f->n].text)
                return -ENOMEM;
        f->n++;
        return 0;
}

/* Append literal text, turning docker's \t and \n into tab and newline. */
static int seg_literal(struct cli_format *f, const char *p, size_t len)
{
        _cleanup_free_ char *t = malloc(len + 1);
        size_t k = 0;

        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (p[i] == '\\' && i + 1 < len && (p[i + 1] == 't' || p[i + 1] == 'n')) {
                        t[k++] = p[i + 1] == 't' ? '\t' : '\n';
                        i++;
                } else
                        t[k++] = p[i];
        }
        return k ? seg_add(f, t, k, false, false) : 0;
}

static bool known_field(const char *const *known, const char *path)
{
        size_t len = strcspn(path, ".");
        for (size_t i = 0; known[i]; i++)
                if (strlen(known[i]) == len && strncmp(known[i], path, len) == 0)
                        return true;
        return false;
}

static int unknown_field(const char *verb, const char *path, const char *const *known, struct moat_error **reterr)
{
        char list[512] = "";
        size_t o = 0;
        for (size_t i = 0; known && known[i] && o < sizeof(list); i++)
                o += (size_t) snprintf(list + o, sizeof(list) - o, "%s.%s", i ? ", " : "", known[i]);
        return moat_error_setx(reterr, -EINVAL, "%s: --format: unknown placeholder \"{{.%s}}\" (known: %s)", verb,
                               path, list);
}

int cli_format_parse(const char *verb, const char *text, const char *const *known, struct cli_format **ret,
                     struct moat_error **reterr)
{
        struct cli_format *f = calloc(1, sizeof(*f));
        const char *p;
        int r = 0;

        if (!f)
                return moat_error_set(reterr, -ENOMEM, "%s: --format", verb);
        if (strlen(text) > 4096) {
                cli_format_free(f);
                return moat_error_setx(reterr, -EINVAL, "%s: --format: longer than 4096 bytes", verb);
        }
        if (streq(text, "json")) {
                f->json = true;
                *ret = f;
                return 0;
        }
        if (startswith(text, "table")) {
                f->table = true;
                text += strlen("table");
                while (*text == ' ')
                        text++;
                if (!*text) {
                        f->default_table = true;
                        *ret = f;
                        return 0;
                }
        }
        for (p = text; *p && r >= 0;) {
                const char *open = strstr(p, "{{"), *close;
                if (!open) {
                        r = seg_literal(f, p, strlen(p));
                        break;
                }
                r = seg_literal(f, p, (size_t) (open - p));
                if (r < 0)
                        break;
                close = strstr(open + 2, "}}");
                if (!close) {
                        r = moat_error_setx(reterr, -EINVAL, "%s: --format: unclosed action \"%s\"", verb, open);
                        break;
                }
                const char *a = open + 2, *b = close;
                while (a < b && *a == ' ')
                        a++;
                while (b > a && b[-1] == ' ')
                        b--;
                bool json = false;
                if ((size_t) (b - a) > 5 && strncmp(a, "json ", 5) == 0) {
                        json = true;
                        a += 5;
                        while (a < b && *a == ' ')
                                a++;
                }
                bool ok = a < b && *a == '.';
                for (const char *q = a + 1; ok && q < b; q++)
                        ok = (*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
                             *q == '_' || (*q == '.' && q[-1] != '.' && q + 1 < b);
                if (!ok || (b - a == 1 && !json)) {
                        r = moat_error_setx(reterr, -EINVAL,
                                            "%s: --format: unsupported template action \"%.*s\" (moat takes {{.Field}}, "
                                            "{{json .Field}} and {{json .}})",
                                            verb, (int) (close + 2 - open), open);
                        break;
                }
                if (known && b - a > 1) {
                        _cleanup_free_ char *path = strndup(a + 1, (size_t) (b - a - 1));
                        if (!path)
                                r = -ENOMEM;
                        else if (!known_field(known, path))
                                r = unknown_field(verb, path, known, reterr);
                        if (r < 0)
                                break;
                }
                if (json && b - a == 1 && !f->table && f->n == 0 && streq(close + 2, "")) {
                        f->json = true; /* {{json .}} alone: one JSON object a line */
                        break;
                }
                r = seg_add(f, a + 1, (size_t) (b - a - 1), true, json);
                p = close + 2;
        }
        if (r < 0) {
                cli_format_free(f);
                return r == -ENOMEM ? moat_error_set(reterr, r, "%s: --format", verb) : r;
        }
        *ret = f;
        return 0;
}

static int key_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static size_t strv_length(char **v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

/* Go's template printing of a value. */
static int print_value(FILE *out, json_t *v)
{
        size_t i;
        const char *k;
        json_t *x;

        switch (json_typeof(v)) {
        case JSON_STRING:
                fwrite(json_string_value(v), 1, json_string_length(v), out);
                break;
        case JSON_INTEGER:
                fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                break;
        case JSON_REAL:
                fprintf(out, "%g", json_real_value(v));
                break;
        case JSON_TRUE:
                fputs("true", out);
                break;
        case JSON_FALSE:
                fputs("false", out);
                break;
        case JSON_NULL:
                fputs("<nil>", out);
                break;
        case JSON_ARRAY:
                fputc('[', out);
                json_array_foreach(v, i, x) {
                        if (i)
                                fputc(' ', out);
                        print_value(out, x);
                }
                fputc(']', out);
                break;
        case JSON_OBJECT: {
                /* Go prints maps sorted by key */
                size_t n = json_object_size(v), j = 0;
                _cleanup_free_ const char **keys = calloc(n + 1, sizeof(char *));
                if (!keys)
                        return -ENOMEM;
                json_object_foreach(v, k, x)
                        keys[j++] = k;
                qsort(keys, n, sizeof(char *), key_cmp);
                fputs("map[", out);
                for (j = 0; j < n; j++) {
                        fprintf(out, "%s%s:", j ? " " : "", keys[j]);
                        print_value(out, json_object_get(v, keys[j]));
                }
                fputc(']', out);
                break;
        }
        }
        return 0;
}

int cli_format_render(const struct cli_format *f, const char *verb, json_t *item, char **ret,
                      struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *out;

        if (f->json) {
                *ret = cli_json_dumps(item, JSON_COMPACT | JSON_SORT_KEYS);
                return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "%s: JSON", verb);
        }
        out = open_memstream(&buf, &size);
        if (!out)
                return moat_error_set(reterr, -errno, "%s: --format", verb);
        for (size_t i = 0; i < f->n; i++) {
                const struct cli_segment *sg = &f->segs[i];
                json_t *v = item;

                if (!sg->field) {
                        fputs(sg->text, out);
                        continue;
                }
                for (const char *p = sg->text; *p && v;) {
                        size_t len = strcspn(p, ".");
                        _cleanup_free_ char *key = strndup(p, len);
                        v = key && json_is_object(v) ? json_object_get(v, key) : NULL;
                        p += len + (p[len] == '.');
                }
                if (!v) {
                        fclose(out);
                        return moat_error_setx(reterr, -EINVAL, "%s: --format: no field \"%s\" in {{%s.%s}}", verb,
                                               sg->text, sg->json ? "json " : "", sg->text);
                }
                if (sg->json) {
                        _cleanup_free_ char *t = cli_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
                        if (t)
                                fputs(t, out);
                } else
                        print_value(out, v);
        }
        if (fclose(out) != 0)
                return moat_error_set(reterr, -ENOMEM, "%s: --format", verb);
        *ret = TAKE_PTR(buf);
        if (!*ret)
                *ret = strdup("");
        return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "%s: --format", verb);
}

int cli_format_header(const struct cli_format *f, const char *const *known, const char *const *headers, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&buf, &size);

        if (!out)
                return -errno;
        for (size_t i = 0; i < f->n; i++) {
                const struct cli_segment *sg = &f->segs[i];
                const char *h = NULL;
                if (!sg->field) {
                        fputs(sg->text, out);
                        continue;
                }
                for (size_t k = 0; known && known[k] && !h; k++)
                        if (streq(known[k], sg->text))
                                h = headers[k];
                if (h)
                        fputs(h, out);
                else
                        for (const char *p = sg->text; *p; p++)
                                fputc(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p, out);
        }
        if (fclose(out) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return *ret ? 0 : -ENOMEM;
}

/* ---- tables ---- */

struct cli_table {
        char ***rows;   /* each a NULL-terminated list of cells */
        size_t n;
};

struct cli_table *cli_table_new(void)
{
        return calloc(1, sizeof(struct cli_table));
}

void cli_table_free(struct cli_table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++)
                strv_free(t->rows[i]);
        free(t->rows);
        free(t);
}

int cli_table_add(struct cli_table *t, const char *text)
{
        /* a rendered item may hold newlines (\n in the template): one row each */
        for (const char *line = text;;) {
                size_t len = strcspn(line, "\n"), cells = 1, k = 0;
                for (size_t i = 0; i < len; i++)
                        cells += line[i] == '\t';
                char **row = calloc(cells + 1, sizeof(char *)), ***v;
                if (!row)
                        return -ENOMEM;
                for (const char *c = line; k < cells; k++) {
                        size_t cl = strcspn(c, "\t\n");
                        row[k] = strndup(c, cl);
                        if (!row[k]) {
                                strv_free(row);
                                return -ENOMEM;
                        }
                        c += cl + 1;
                }
                v = reallocarray(t->rows, t->n + 1, sizeof(*v));
                if (!v) {
                        strv_free(row);
                        return -ENOMEM;
                }
                t->rows = v;
                v[t->n++] = row;
                if (line[len] != '\n')
                        return 0;
                line += len + 1;
        }
}

static size_t utf8_width(const char *s)
{
        size_t n = 0;
        for (; *s; s++)
                n += ((unsigned char) *s & 0xc0) != 0x80;
        return n;
}

void cli_table_print(struct cli_table *t, FILE *f)
{
        /* Go's tabwriter: a column's width is its widest cell plus padding,
         * at least minwidth, over the block of consecutive lines that have
         * that column; a line's last cell is not a column. */
        enum { MINWIDTH = 10, PADDING = 3 };
        size_t cols = 0;

        for (size_t i = 0; i < t->n; i++)
                if (strv_length(t->rows[i]) > cols)
                        cols = strv_length(t->rows[i]);
        _cleanup_free_ size_t *width = calloc(t->n * cols + 1, sizeof(size_t));
        if (!width)
                return;
        for (size_t c = 0; c + 1 < cols; c++)
                for (size_t i = 0; i < t->n;) {
                        size_t j = i, w = MINWIDTH;
                        while (j < t->n && strv_length(t->rows[j]) > c + 1) {
                                if (utf8_width(t->rows[j][c]) + PADDING > w)
                                        w = utf8_width(t->rows[j][c]) + PADDING;
                                j++;
                        }
                        for (size_t k = i; k < j; k++)
                                width[k * cols + c] = w;
                        i = j > i ? j : i + 1;
                }
        for (size_t i = 0; i < t->n; i++) {
                size_t cells = strv_length(t->rows[i]);
                for (size_t c = 0; c < cells; c++) {
                        if (c + 1 < cells)
                                fprintf(f, "%s%*s", t->rows[i][c],
                                        (int) (width[i * cols + c] - utf8_width(t->rows[i][c])), "");
                        else
                                fprintf(f, "%s\n", t->rows[i][c]);
                }
        }
}

int cli_filter_add(json_t *filters, const char *verb, const char *text, struct moat_error **reterr)
{
        enum { MAX_FILTERS = 64 };
        const char *eq = strchr(text, '=');
        size_t n = 0;
        const char *k;
        json_t *v;

        if (!eq || eq == text)
                return moat_error_setx(reterr, -EINVAL, "bad format of filter (expected name=value)");
        json_object_foreach(filters, k, v)
                n += json_array_size(v);
        if (n >= MAX_FILTERS)
                return moat_error_setx(reterr, -E2BIG, "%s: more than %d filters", verb, MAX_FILTERS);
        _cleanup_free_ char *key = strndup(text, (size_t) (eq - text));
        if (!key)
                return moat_error_set(reterr, -ENOMEM, "%s: filter", verb);
        json_t *a = json_object_get(filters, key);
        if (!a) {
                a = json_array();
                if (!a || json_object_set_new(filters, key, a) < 0)
                        return moat_error_set(reterr, -ENOMEM, "%s: filter", verb);
        }
        if (json_array_append_new(a, json_string(eq + 1)) < 0)
                return moat_error_set(reterr, -ENOMEM, "%s: filter", verb);
        return 0;
}

int cli_prune_opts_parse(const char *verb, int argc, char **argv, bool with_volumes, json_t *filters,
                         struct cli_prune_opts *ret, struct moat_error **reterr)
{
        enum { OPT_FILTER = 256, OPT_VOLUMES };
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "force", no_argument, NULL, 'f' },
                { "filter", required_argument, NULL, OPT_FILTER },
                { "volumes", no_argument, NULL, OPT_VOLUMES },
                {},
        };
        int c, r;

        *ret = (struct cli_prune_opts) {};
        while ((c = getopt_long(argc, argv, ":af", options, NULL)) != -1) {
                switch (c) {
                case 'a':
                        ret->all = true;
                        break;
                case 'f':
                        ret->force = true;
                        break;
                case OPT_FILTER:
                        r = cli_filter_add(filters, verb, optarg, reterr);
                        if (r < 0)
                                return r;
                        break;
                case OPT_VOLUMES:
                        if (!with_volumes)
                                return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                        ret->volumes = true;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat %s\" accepts no arguments.", verb);
        return 0;
}

int cli_filters_query(json_t *filters, char **ret)
{
        _cleanup_free_ char *text = NULL, *esc = NULL;

        *ret = NULL;
        if (!filters || json_object_size(filters) == 0)
                return (*ret = strdup("")) ? 0 : -ENOMEM;
        text = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
        esc = text ? moat_client_escape(text) : NULL;
        if (!esc || asprintf(ret, "filters=%s", esc) < 0)
                return -ENOMEM;
        return 0;
}

int cli_print_list(const char *verb, const char *format, const char *default_table, const char *const *fields,
                   const char *const *headers, json_t *rows, struct moat_error **reterr)
{
        _cleanup_format_ struct cli_format *fmt = NULL;
        _cleanup_table_ struct cli_table *table = NULL;
        json_t *row;
        size_t i;
        int r;

        if (!format || streq(format, "table"))
                format = default_table;
        r = cli_format_parse(verb, format, fields, &fmt, reterr);
        if (r < 0)
                return r;
        if (cli_format_is_table(fmt)) {
                _cleanup_free_ char *head = NULL;
                table = cli_table_new();
                if (!table || cli_format_header(fmt, fields, headers, &head) < 0 || cli_table_add(table, head) < 0)
                        return moat_error_set(reterr, -ENOMEM, "%s", verb);
        }
        json_array_foreach(rows, i, row) {
                _cleanup_free_ char *line = NULL;
                r = cli_format_render(fmt, verb, row, &line, reterr);
                if (r < 0)
                        return r;
                if (table) {
                        if (cli_table_add(table, line) < 0)
                                return moat_error_set(reterr, -ENOMEM, "%s", verb);
                } else
                        printf("%s\n", line);
        }
        if (table)
                cli_table_print(table, stdout);
        return 0;
}

bool cli_confirm(const char *question)
{
        char line[64];

        printf("%s [y/N] ", question);
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin))
                return false;
        char *a = line;
        while (*a == ' ' || *a == '\t')
                a++;
        a[strcspn(a, " \t\r\n")] = 0;
        return strcasecmp(a, "y") == 0 || strcasecmp(a, "yes") == 0;
}

int cli_client(const struct moat_cli *cli, struct moat_client **ret, struct moat_error **reterr)
{
        return moat_client_new(cli->host, ret, reterr);
}

void cli_print_error(const struct moat_error *err)
{
        fprintf(stderr, "%s\n", err && err->msg ? err->msg : "unknown error");
}

void cli_human_duration(double secs, char *buf, size_t len)
{
        long s = secs < 0 ? 0 : (long) secs;
        long m = s / 60, h = (long) (secs / 3600.0 + 0.5); /* go-units rounds hours */
        if (s < 1)
                snprintf(buf, len, "Less than a second");
        else if (s == 1)
                snprintf(buf, len, "1 second");
        else if (s < 60)
                snprintf(buf, len, "%ld seconds", s);
        else if (m == 1)
                snprintf(buf, len, "About a minute");
        else if (m < 60)
                snprintf(buf, len, "%ld minutes", m);
        else if (h == 1)
                snprintf(buf, len, "About an hour");
        else if (h < 48)
                snprintf(buf, len, "%ld hours", h);
        else if (h < 24 * 7 * 2)
                snprintf(buf, len, "%ld days", h / 24);
        else if (h < 24 * 30 * 2)
                snprintf(buf, len, "%ld weeks", h / 24 / 7);
        else if (h < 24 * 365 * 2)
                snprintf(buf, len, "%ld months", h / 24 / 30);
        else
                snprintf(buf, len, "%ld years", s / 3600 / 24 / 365);
}

void cli_time_since_unix(time_t t, char *buf, size_t len)
{
        char d[64];
        cli_human_duration(difftime(time(NULL), t), d, sizeof(d));
        snprintf(buf, len, "%s ago", d);
}

int cli_parse_duration(const char *text, int64_t *ret)
{
        static const struct {
                const char *unit;
                double ns;
        } units[] = { { "ns", 1 }, { "us", 1e3 }, { "µs", 1e3 }, { "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 } };
        const char *p = text;
        double total = 0;

        if (strempty(text))
                return -EINVAL;
        if (streq(text, "0")) {
                *ret = 0;
                return 0;
        }
        while (*p) {
                char *end;
                if (!((*p >= '0' && *p <= '9') || *p == '.'))
                        return -EINVAL;
                double v = strtod(p, &end);
                if (end == p)
                        return -EINVAL;
                p = end;
                size_t best = 0, best_len = 0;
                for (size_t i = 0; i < ELEMENTSOF(units); i++)
                        if (startswith(p, units[i].unit) && strlen(units[i].unit) > best_len)
                                best = i, best_len = strlen(units[i].unit);
                if (!best_len)
                        return -EINVAL;
                total += v * units[best].ns;
                p += best_len;
        }
        if (total > 9.2e18)
                return -ERANGE;
        *ret = (int64_t) total;
        return 0;
}

int cli_parse_timestamp(const char *text, char *buf, size_t len)
{
        time_t t;
        int64_t ns, secs;

        if (strempty(text))
                return -EINVAL;
        if (cli_parse_time(text, &t) >= 0) {
                snprintf(buf, len, "%lld.%09d", (long long) t, 0);
                return 0;
        }
        /* Unix seconds, with optional fraction: passed on as they are */
        const char *p = text;
        while ((*p >= '0' && *p <= '9'))
                p++;
        if (p > text && (*p == 0 || (*p == '.' && p[1] && strspn(p + 1, "0123456789") == strlen(p + 1)))) {
                snprintf(buf, len, "%s", text);
                return 0;
        }
        if (strlen(text) == 10 && text[4] == '-' && text[7] == '-') {
                struct tm tm = {};
                if (!strptime(text, "%Y-%m-%d", &tm))
                        return -EINVAL;
                snprintf(buf, len, "%lld.000000000", (long long) timegm(&tm));
                return 0;
        }
        if (cli_parse_duration(text, &ns) < 0)
                return -EINVAL;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        secs = (int64_t) now.tv_sec - ns / 1000000000;
        int64_t frac = (int64_t) now.tv_nsec - ns % 1000000000;
        if (frac < 0) {
                frac += 1000000000;
                secs--;
        }
        snprintf(buf, len, "%lld.%09lld", (long long) secs, (long long) frac);
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: moat [global options] <command> [options] [arguments]\n"
                "\n"
                "global options:\n"
                "  -H, --host URL  the daemon's socket (default $MOAT_HOST or %s)\n"
                "  --root DIR      the image store of verify, mount and unmount (default %s; images in DIR/images)\n"
                "  --debug         debug logging\n"
                "  --version, --help\n"
                "\ncommands:\n",
                MOAT_CLIENT_DEFAULT_HOST, MOAT_DEFAULT_ROOT);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (verbs[i].summary)
                        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
        fprintf(f, "\nRun 'moat COMMAND --help' for more information on a command.\n");
}

int main(int argc, char **argv)
{
        enum { OPT_ROOT = 256, OPT_DEBUG };
        static const struct option options[] = {
                { "root", required_argument, NULL, OPT_ROOT },
                { "host", required_argument, NULL, 'H' },
                { "debug", no_argument, NULL, OPT_DEBUG },
                { "version", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct moat_cli cli = { .root = MOAT_DEFAULT_ROOT, .error_exit = 1 };
        _cleanup_free_ char *root_abs = NULL;
        int c;

        moat_json_seed();
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+vhH:D", options, NULL)) != -1) {
                switch (c) {
                case OPT_ROOT:
                        if (strempty(optarg)) {
                                fprintf(stderr, "moat: --root: empty directory name\n");
                                return 1;
                        }
                        if (optarg[0] != '/') {
                                _cleanup_free_ char *cwd = get_current_dir_name();
                                if (!cwd || asprintf(&root_abs, "%s/%s", cwd, optarg) < 0) {
                                        fprintf(stderr, "moat: --root '%s': %m\n", optarg);
                                        return 1;
                                }
                                cli.root = root_abs;
                        } else
                                cli.root = optarg;
                        break;
                case 'H':
                        cli.host = optarg;
                        break;
                case 'D':
                case OPT_DEBUG:
                        cli.debug = true;
                        break;
                case 'v':
                        printf("moat version %s\n", MOAT_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        fprintf(stderr, "moat: unknown global option '%s'\n", argv[optind - 1]);
                        usage(stderr);
                        return 1;
                }
        }
        log_setup(-EBADF, LOG_FORMAT_TEXT, cli.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "moat");

        if (optind >= argc) {
                usage(stderr);
                return 1;
        }
        int first = optind;
        const char *verb = argv[first];
        char help_key[64];
        /* docker's groups: moat container ls|run|..., moat image ls|rm|...;
         * system and volume are verbs that take their subcommand. */
        if (streq(verb, "container") || streq(verb, "image") || streq(verb, "system") || streq(verb, "volume")) {
                const char *group = verb, *sub = first + 1 < argc ? argv[first + 1] : NULL;
                if (!sub || streq(sub, "--help") || streq(sub, "-h")) {
                        (void) cli_help_print(group);
                        return 0;
                }
                snprintf(help_key, sizeof(help_key), "%s %s", group, sub);
                if (streq(group, "container") || streq(group, "image")) {
                        verb = NULL;
                        for (size_t i = 0; i < ELEMENTSOF(group_verbs); i++)
                                if (streq(group_verbs[i].group, group) && streq(group_verbs[i].sub, sub))
                                        verb = group_verbs[i].verb;
                        if (!verb && streq(group, "container"))
                                verb = sub;
                        if (!verb) {
                                fprintf(stderr, "moat: unknown command: moat %s %s\n\nRun 'moat %s --help' for more "
                                        "information\n", group, sub, group);
                                return 1;
                        }
                        first++;
                        snprintf(help_key, sizeof(help_key), "%s", verb);
                        if (cli_help_requested(help_key, argc - first, argv + first))
                                return cli_help_print(help_key) < 0;
                } else if (cli_help_requested(help_key, argc - first - 1, argv + first + 1))
                        return cli_help_print(help_key) < 0;
        } else if (cli_help_requested(verb, argc - first, argv + first))
                return cli_help_print(verb) < 0;
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, verb))
                        return cli_run_verb(&cli, verbs[i].fn, verbs[i].plain_errors, argc - first, argv + first);
        fprintf(stderr, "moat: unknown command \"%s\"\n", verb);
        usage(stderr);
        return 1;
}
