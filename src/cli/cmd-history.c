/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat history [-H|--human[=BOOL]] [--no-trunc] [-q] [--format F] IMAGE:
 * docker history. One row per entry of the config's history, newest
 * first, with docker's columns IMAGE CREATED CREATED BY SIZE COMMENT.
 * Entries that made a layer take the layers in order (an image with more
 * such entries than layers is refused, as docker refuses it); empty_layer
 * entries have size 0. The IMAGE column is the image's ID on the top row
 * and <missing> below it, as docker shows an image it did not build.
 *
 * SIZE: docker shows the layer's unpacked size (the sum of its files'
 * sizes, each inode once, directories not counted). The size of the
 * uncompressed tar is not stored in the image, so moat shows the same sum
 * over the layer's tree in <store>/layers/<ChainID> when the layer is
 * unpacked, and otherwise the layer blob's size from the manifest (the
 * compressed size for a compressed layer).
 */

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <search.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "oci/image-spec.h"

#define TREE_DEPTH_MAX 512u
#define CREATED_BY_WIDTH 45

static const char *const fields[] = { "ID", "CreatedSince", "CreatedAt", "CreatedBy", "Size", "Comment", NULL };
static const char *const headers[] = { "IMAGE", "CREATED", "CREATED AT", "CREATED BY", "SIZE", "COMMENT" };

struct tree_size {
        void *inodes; /* tsearch tree of ino_t */
        int64_t size;
};

static int ino_cmp(const void *a, const void *b)
{
        ino_t x = *(const ino_t *) a, y = *(const ino_t *) b;
        return x < y ? -1 : x > y;
}

/* docker's directory.Size: non-directories' sizes, hard links once. */
static int tree_size_at(struct tree_size *t, int dfd, unsigned depth)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd;

        if (depth > TREE_DEPTH_MAX)
                return -ELOOP;
        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(dirfd(d), de->d_name,
                                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0)
                                return -errno;
                        int r = tree_size_at(t, sub, depth + 1);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (st.st_size == 0)
                        continue;
                if (st.st_nlink > 1) {
                        ino_t *k = malloc(sizeof(*k));
                        if (!k)
                                return -ENOMEM;
                        *k = st.st_ino;
                        ino_t **found = tsearch(k, &t->inodes, ino_cmp);
                        if (!found) {
                                free(k);
                                return -ENOMEM;
                        }
                        if (*found != k) {
                                free(k);
                                continue;
                        }
                }
                t->size += st.st_size;
        }
        return errno > 0 ? -errno : 0;
}

/* The layer's unpacked size, or -1 when it is not unpacked. */
static int64_t layer_tree_size(int layers_fd, const char *chain_id)
{
        _cleanup_close_ int fd = -EBADF;
        struct tree_size t = {};

        if (layers_fd < 0)
                return -1;
        fd = openat(layers_fd, chain_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -1;
        int r = tree_size_at(&t, fd, 0);
        tdestroy(t.inodes, free);
        return r < 0 ? -1 : t.size;
}

/* docker's formatter.Ellipsis, one column per character. */
static char *ellipsis(const char *s, size_t width)
{
        size_t runes = 0, cut = 0;

        for (const char *p = s; *p; p++)
                if (((unsigned char) *p & 0xC0) != 0x80) {
                        if (runes == width - 1)
                                cut = (size_t) (p - s);
                        runes++;
                }
        if (runes <= width)
                return strdup(s);
        char *out = malloc(cut + 4);
        if (!out)
                return NULL;
        memcpy(out, s, cut);
        memcpy(out + cut, "\xe2\x80\xa6", 4); /* U+2026 */
        return out;
}

/* Go's time.Format(time.RFC3339) in local time; "" when unknown. */
static void rfc3339_local(const char *created, char *buf, size_t len)
{
        time_t t;
        struct tm tm;

        if (cli_parse_time(created, &t) < 0 || !localtime_r(&t, &tm)) {
                snprintf(buf, len, "%s", "");
                return;
        }
        size_t k = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
        long off = tm.tm_gmtoff;
        if (off == 0)
                snprintf(buf + k, len - k, "Z");
        else
                snprintf(buf + k, len - k, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
                         (labs(off) % 3600) / 60);
}

/* Go's strconv.ParseBool. */
static int parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "1", "t", "T", "true", "TRUE", "True" };
        static const char *const no[] = { "0", "f", "F", "false", "FALSE", "False" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (streq(s, yes[i])) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (streq(s, no[i])) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

struct row {
        const char *id;
        const char *created;
        const char *created_by;
        const char *comment;
        int64_t size;
};

static json_t *row_json(const struct row *rw, bool human, bool trunc)
{
        _cleanup_free_ char *by = NULL;
        char id[13], since[64], at[64], size[32];

        by = strdup(rw->created_by ? rw->created_by : "");
        if (!by)
                return NULL;
        for (char *p = by; *p; p++)
                if (*p == '\t')
                        *p = ' ';
        if (trunc) {
                char *t = ellipsis(by, CREATED_BY_WIDTH);
                if (!t)
                        return NULL;
                free(by);
                by = t;
        }
        rfc3339_local(rw->created, at, sizeof(at));
        if (human)
                cli_time_since(rw->created, since, sizeof(since));
        else
                snprintf(since, sizeof(since), "%s", at);
        if (human)
                cli_human_size(rw->size, size, sizeof(size));
        else
                snprintf(size, sizeof(size), "%lld", (long long) rw->size);
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
                         "Comment", rw->comment ? rw->comment : "",
                         "CreatedAt", at,
                         "CreatedBy", by,
                         "CreatedSince", since,
                         "ID", trunc && !streq(rw->id, "<missing>") ? cli_short_id(rw->id, id) : rw->id,
                         "Size", size);
}

int cmd_history(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_NO_TRUNC = 256, OPT_FORMAT, OPT_HUMAN, OPT_PLATFORM };
        static const struct option options[] = {
                { "human", optional_argument, NULL, OPT_HUMAN },
                { "no-trunc", no_argument, NULL, OPT_NO_TRUNC },
                { "quiet", no_argument, NULL, 'q' },
                { "format", required_argument, NULL, OPT_FORMAT },
                { "platform", required_argument, NULL, OPT_PLATFORM },
                {},
        };
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_(cli_platform_clear) struct oci_platform platform = {};
        const char *platform_text = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        _cleanup_table_ struct cli_table *table = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_free_ struct row *rows = NULL;
        _cleanup_close_ int layers_fd = -EBADF;
        const char *format = NULL;
        bool human = true, trunc = true, quiet = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "+H::q", options, NULL)) != -1) {
                switch (c) {
                case 'H':
                case OPT_HUMAN:
                        if (!optarg)
                                human = true;
                        else if (parse_bool(optarg[0] == '=' ? optarg + 1 : optarg, &human) < 0)
                                return moat_error_setx(reterr, -EINVAL, "history: --human \"%s\": not a boolean",
                                                       optarg);
                        break;
                case OPT_NO_TRUNC:
                        trunc = false;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case OPT_FORMAT:
                        format = optarg;
                        break;
                case OPT_PLATFORM:
                        platform_text = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "history: option \"%s\" needs an argument",
                                               argv[optind - 1]);
                default:
                        return cli_bad_option("history", argv[optind - 1], reterr);
                }
        }
        if (argc - optind != 1)
                return moat_error_setx(reterr, -EINVAL, "history: requires exactly 1 argument (IMAGE)");
        const char *text = argv[optind];

        if (quiet)
                format = "{{.ID}}";
        else if (!format || streq(format, "table") || strempty(format))
                format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
        r = cli_format_parse("history", format, fields, &fmt, reterr);
        if (r < 0)
                return r;

        r = cli_open_store(cli, false, &s, reterr);
        if (r < 0)
                return r;
        r = cli_platform(platform_text, &platform, reterr);
        if (r < 0)
                return r;
        r = moat_images_lookup(s, text, platform_text ? &platform : NULL, &img, reterr);
        if (r >= 0)
                r = cli_platform_check(img, &platform, text, reterr);
        if (r < 0)
                return r;
        const struct oci_image_config *cfg = img->config;
        const struct oci_manifest *m = img->manifest;
        if (cfg->n_diff_ids > 0) {
                r = oci_chain_ids(cfg->diff_ids, cfg->n_diff_ids, &chain, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "history: %s", img->config_digest);
        }
        /* Looked at, never created: without it every size comes from the manifest. */
        layers_fd = openat(moat_store_dir_fd(s), "layers", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        rows = calloc(cfg->n_history + 1, sizeof(*rows));
        if (!rows)
                return moat_error_set(reterr, -ENOMEM, "history");
        size_t layer = 0;
        for (size_t i = 0; i < cfg->n_history; i++) {
                const struct oci_history *h = &cfg->history[i];
                struct row *rw = &rows[cfg->n_history - 1 - i];
                *rw = (struct row) {
                        .id = "<missing>",
                        .created = h->created,
                        .created_by = h->created_by,
                        .comment = h->comment,
                };
                if (h->empty_layer)
                        continue;
                if (layer >= cfg->n_diff_ids || layer >= m->n_layers)
                        return moat_error_setx(reterr, -EINVAL,
                                               "history: %s: too many non-empty layers in History section",
                                               img->config_digest);
                rw->size = layer_tree_size(layers_fd, chain[layer]);
                if (rw->size < 0)
                        rw->size = m->layers[layer].size;
                layer++;
        }
        if (cfg->n_history > 0)
                rows[0].id = img->config_digest;

        if (cli_format_is_table(fmt)) {
                _cleanup_free_ char *head = NULL;
                table = cli_table_new();
                if (!table || cli_format_header(fmt, fields, headers, &head) < 0 || cli_table_add(table, head) < 0)
                        return moat_error_set(reterr, -ENOMEM, "history");
        }
        for (size_t i = 0; i < cfg->n_history; i++) {
                _cleanup_free_ char *line = NULL;
                json_t *row = row_json(&rows[i], human, trunc);
                if (!row)
                        return moat_error_set(reterr, -ENOMEM, "history");
                r = cli_format_render(fmt, "history", row, &line, reterr);
                json_decref(row);
                if (r < 0)
                        return r;
                if (table) {
                        r = cli_table_add(table, line);
                        if (r < 0)
                                return moat_error_set(reterr, r, "history");
                } else
                        printf("%s\n", line);
        }
        if (table)
                cli_table_print(table, stdout);
        return 0;
}
