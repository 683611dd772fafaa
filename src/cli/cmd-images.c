/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat images [-a] [-q] [--no-trunc] [--digests] [--filter K=V]...
 * [--format F] [REPOSITORY[:TAG]]: the images of the store as docker lists
 * them. An image is an ID (config digest) with the entries of index.json
 * that hold it: one row per name, or one "<none> <none>" row for an image
 * without a name (dangling). Rows are ordered newest image first, names
 * sorted within an image. Columns REPOSITORY TAG IMAGE ID CREATED SIZE
 * (DIGEST after TAG with --digests), aligned like docker's tabwriter; the
 * size is the sum of the layers as stored. Filters: dangling=true|false,
 * reference=<glob> (docker's path.Match on the familiar name[:tag] or the
 * name alone; the positional argument is one more reference filter). -a is
 * accepted: OCI images have no intermediate parents to hide.
 */

#include <fnmatch.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <strings.h>

#include "base/cleanup.h"
#include "cli/cli.h"

#define MAX_FILTERS 64

static const char *const fields[] = {
        "Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
        "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize", NULL,
};
static const char *const headers[] = {
        "CONTAINERS", "CREATED AT", "CREATED", "DIGEST", "IMAGE ID", "REPOSITORY",
        "SHARED SIZE", "SIZE", "TAG", "UNIQUE SIZE", "VIRTUAL SIZE", NULL,
};

struct filters {
        int dangling;   /* -1: no filter */
        const char *refs[MAX_FILTERS];
        size_t n_refs;
};

static int parse_bool(const char *v)
{
        if (strcasecmp(v, "true") == 0 || streq(v, "1"))
                return 1;
        if (strcasecmp(v, "false") == 0 || streq(v, "0"))
                return 0;
        return -1;
}

static int add_filter(struct filters *f, const char *text, struct moat_error **reterr)
{
        const char *eq = strchr(text, '=');

        if (!eq || eq == text)
                return moat_error_setx(reterr, -EINVAL, "bad format of filter (expected name=value): %s", text);
        size_t klen = (size_t) (eq - text);
        const char *v = eq + 1;
        if (klen == strlen("dangling") && strncmp(text, "dangling", klen) == 0) {
                int b = parse_bool(v);
                if (b < 0)
                        return moat_error_setx(reterr, -EINVAL, "invalid filter 'dangling=%s'", v);
                if (f->dangling >= 0 && f->dangling != b)
                        return moat_error_setx(reterr, -EINVAL, "invalid filter 'dangling': true and false both given");
                f->dangling = b;
                return 0;
        }
        if (klen == strlen("reference") && strncmp(text, "reference", klen) == 0) {
                if (f->n_refs >= MAX_FILTERS)
                        return moat_error_setx(reterr, -E2BIG, "more than %d reference filters", MAX_FILTERS);
                f->refs[f->n_refs++] = v;
                return 0;
        }
        static const char *const later[] = { "before", "since", "label", "until", NULL };
        for (size_t i = 0; later[i]; i++)
                if (strlen(later[i]) == klen && strncmp(text, later[i], klen) == 0)
                        return moat_error_setx(reterr, -EOPNOTSUPP, "images: filter '%.*s' is not supported by moat",
                                               (int) klen, text);
        return moat_error_setx(reterr, -EINVAL, "invalid filter '%.*s'", (int) klen, text);
}

/* docker's reference.FamiliarMatch: the familiar string, then the familiar name. */
static bool ref_matches(const struct filters *f, const char *reference)
{
        _cleanup_free_ char *fam = NULL, *repo = NULL, *tag = NULL;

        if (f->n_refs == 0)
                return true;
        if (cli_familiar(reference, &fam, NULL) < 0 || cli_repo_tag(reference, &repo, &tag, NULL) < 0)
                return false;
        for (size_t i = 0; i < f->n_refs; i++)
                if (fnmatch(f->refs[i], fam, FNM_PATHNAME) == 0 || fnmatch(f->refs[i], repo, FNM_PATHNAME) == 0)
                        return true;
        return false;
}

struct image {
        const struct moat_image_entry *first;   /* the entry giving created, size, digest */
        const struct moat_image_entry **names;  /* named entries */
        size_t n_names;
};

static int image_cmp(const void *a, const void *b)
{
        const struct image *x = a, *y = b;
        time_t tx = 0, ty = 0;

        (void) cli_parse_time(x->first->created, &tx);
        (void) cli_parse_time(y->first->created, &ty);
        if (tx != ty)
                return tx > ty ? -1 : 1;
        return strcmp(x->first->id, y->first->id);
}

static json_t *row_json(const struct moat_image_entry *e, const char *repo, const char *tag, const char *digest,
                        bool trunc)
{
        char id[13], size[32], since[64], at[64];

        cli_human_size(e->image_size, size, sizeof(size));
        cli_time_since(e->created, since, sizeof(since));
        cli_time_local(e->created, at, sizeof(at));
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                         "Containers", "N/A",
                         "CreatedAt", at,
                         "CreatedSince", since,
                         "Digest", digest ? digest : "<none>",
                         "ID", trunc ? cli_short_id(e->id, id) : e->id,
                         "Repository", repo,
                         "SharedSize", "N/A",
                         "Size", size,
                         "Tag", tag,
                         "UniqueSize", "N/A",
                         "VirtualSize", size);
}

int cmd_images(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_NO_TRUNC = 256, OPT_DIGESTS, OPT_FORMAT };
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "quiet", no_argument, NULL, 'q' },
                { "no-trunc", no_argument, NULL, OPT_NO_TRUNC },
                { "digests", no_argument, NULL, OPT_DIGESTS },
                { "filter", required_argument, NULL, 'f' },
                { "format", required_argument, NULL, OPT_FORMAT },
                {},
        };
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        _cleanup_table_ struct cli_table *table = NULL;
        _cleanup_free_ struct image *images = NULL;
        struct moat_image_entry *v = NULL;
        struct filters flt = { .dangling = -1 };
        const char *format = NULL;
        bool quiet = false, trunc = true, digests = false;
        size_t n = 0, n_images = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, ":aqf:", options, NULL)) != -1) {
                switch (c) {
                case 'a':
                        break;
                case 'q':
                        quiet = true;
                        break;
                case OPT_NO_TRUNC:
                        trunc = false;
                        break;
                case OPT_DIGESTS:
                        digests = true;
                        break;
                case 'f':
                        r = add_filter(&flt, optarg, reterr);
                        if (r < 0)
                                return r;
                        break;
                case OPT_FORMAT:
                        format = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "images: option \"%s\" needs an argument",
                                               argv[optind - 1]);
                default:
                        return cli_bad_option("images", argv[optind - 1], reterr);
                }
        }
        if (argc - optind > 1)
                return moat_error_setx(reterr, -EINVAL, "images: requires at most 1 argument ([REPOSITORY[:TAG]])");
        if (optind < argc) {
                if (flt.n_refs >= MAX_FILTERS)
                        return moat_error_setx(reterr, -E2BIG, "more than %d reference filters", MAX_FILTERS);
                flt.refs[flt.n_refs++] = argv[optind];
        }
        if (!format)
                format = "table";
        r = cli_format_parse("images", format, fields, &fmt, reterr);
        if (r < 0)
                return r;
        if (cli_format_is_default_table(fmt)) {
                cli_format_free(fmt);
                fmt = NULL;
                r = cli_format_parse("images", digests ? "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                                                         "{{.CreatedSince}}\t{{.Size}}"
                                                       : "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t"
                                                         "{{.CreatedSince}}\t{{.Size}}",
                                     fields, &fmt, reterr);
                if (r < 0)
                        return r;
        }
        if (quiet) {
                cli_format_free(fmt);
                fmt = NULL;
                r = cli_format_parse("images", "{{.ID}}", fields, &fmt, reterr);
                if (r < 0)
                        return r;
        }

        r = cli_open_store(cli, true, &s, reterr);
        if (r < 0)
                return r;
        r = moat_images_entries(s, NULL, &v, &n, reterr);
        if (r < 0)
                return r;

        /* group the entries by image ID */
        images = calloc(n + 1, sizeof(*images));
        if (!images) {
                r = moat_error_set(reterr, -ENOMEM, "images");
                goto finish;
        }
        for (size_t i = 0; i < n; i++) {
                struct image *im = NULL;
                if (!v[i].id)
                        continue; /* an artifact or a broken entry, not an image */
                for (size_t k = 0; k < n_images && !im; k++)
                        if (streq(images[k].first->id, v[i].id))
                                im = &images[k];
                if (!im) {
                        im = &images[n_images++];
                        im->first = &v[i];
                        im->names = calloc(n + 1, sizeof(*im->names));
                        if (!im->names) {
                                r = moat_error_set(reterr, -ENOMEM, "images");
                                goto finish;
                        }
                }
                if (v[i].reference) {
                        if (!im->first->reference)
                                im->first = &v[i];
                        im->names[im->n_names++] = &v[i];
                }
        }
        if (n_images > 1)
                qsort(images, n_images, sizeof(*images), image_cmp);

        table = cli_format_is_table(fmt) ? cli_table_new() : NULL;
        if (cli_format_is_table(fmt)) {
                _cleanup_free_ char *head = NULL;
                if (!table || cli_format_header(fmt, fields, headers, &head) < 0 || cli_table_add(table, head) < 0) {
                        r = moat_error_set(reterr, -ENOMEM, "images");
                        goto finish;
                }
        }
        for (size_t i = 0; i < n_images; i++) {
                struct image *im = &images[i];
                bool dangling = im->n_names == 0;

                if (flt.dangling >= 0 && flt.dangling != dangling)
                        continue;
                if (dangling && flt.n_refs > 0)
                        continue;
                for (size_t k = 0; k < (dangling ? 1 : im->n_names); k++) {
                        _cleanup_free_ char *repo = NULL, *tag = NULL, *line = NULL;
                        const struct moat_image_entry *e = dangling ? im->first : im->names[k];
                        json_t *row;

                        if (!dangling) {
                                if (!ref_matches(&flt, e->reference))
                                        continue;
                                r = cli_repo_tag(e->reference, &repo, &tag, reterr);
                                if (r < 0)
                                        goto finish;
                        }
                        row = row_json(e, repo ? repo : "<none>", tag ? tag : "<none>", e->digest, trunc);
                        if (!row) {
                                r = moat_error_set(reterr, -ENOMEM, "images");
                                goto finish;
                        }
                        r = cli_format_render(fmt, "images", row, &line, reterr);
                        json_decref(row);
                        if (r < 0)
                                goto finish;
                        if (table) {
                                r = cli_table_add(table, line);
                                if (r < 0) {
                                        r = moat_error_set(reterr, r, "images");
                                        goto finish;
                                }
                        } else
                                printf("%s\n", line);
                }
        }
        if (table)
                cli_table_print(table, stdout);
        r = 0;
finish:
        for (size_t i = 0; images && i < n_images; i++)
                free(images[i].names);
        moat_image_entries_free(v, n);
        return r;
}
