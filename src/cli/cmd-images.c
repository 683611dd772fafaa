/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat images [-a] [-q] [--no-trunc] [--digests] [--filter K=V]...
 * [--format F] [REPOSITORY[:TAG]]: docker images, through GET
 * /images/json (the filters, and the argument as one more reference
 * filter, are the daemon's to apply). One row per RepoTag, or one
 * "<none> <none>" row for an image without a name, in the daemon's order
 * (newest first); the DIGEST of a row (--digests) is the RepoDigest of
 * the row's repository. Columns and --format fields as docker's.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static const char *const fields[] = {
        "Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
        "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize", NULL,
};
static const char *const headers[] = {
        "CONTAINERS", "CREATED AT", "CREATED", "DIGEST", "IMAGE ID", "REPOSITORY",
        "SHARED SIZE", "SIZE", "TAG", "UNIQUE SIZE", "VIRTUAL SIZE", NULL,
};

/* "name:tag" (the tag after the last colon that follows the last slash). */
static void split_ref(const char *ref, const char sep, char **ret_repo, const char **ret_rest)
{
        const char *slash = strrchr(ref, '/'), *cut = sep == '@' ? strchr(ref, '@') : strrchr(ref, sep);
        if (cut && (sep == '@' || !slash || cut > slash)) {
                *ret_repo = strndup(ref, (size_t) (cut - ref));
                *ret_rest = cut + 1;
        } else {
                *ret_repo = strdup(ref);
                *ret_rest = NULL;
        }
}

static json_t *row(json_t *img, const char *repo, const char *tag, const char *digest, bool trunc)
{
        const char *id = json_string_value(json_object_get(img, "Id")) ?: "";
        json_int_t size = json_integer_value(json_object_get(img, "Size"));
        json_int_t containers = json_integer_value(json_object_get(img, "Containers"));
        json_int_t shared = json_integer_value(json_object_get(img, "SharedSize"));
        time_t created = (time_t) json_integer_value(json_object_get(img, "Created"));
        char sid[13], s[32], since[64], at[64] = "", ctr[32] = "N/A", sh[32] = "N/A", un[32] = "N/A";
        struct tm tm;

        cli_human_size(size, s, sizeof(s));
        cli_time_since_unix(created, since, sizeof(since));
        if (localtime_r(&created, &tm))
                strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S %z %Z", &tm);
        if (containers >= 0 && json_object_get(img, "Containers"))
                snprintf(ctr, sizeof(ctr), "%" JSON_INTEGER_FORMAT, containers);
        if (containers < 0)
                snprintf(ctr, sizeof(ctr), "N/A");
        if (shared >= 0 && json_object_get(img, "SharedSize")) {
                cli_human_size4((uint64_t) shared, sh, sizeof(sh));
                cli_human_size4((uint64_t) (size - shared), un, sizeof(un));
        }
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Containers", ctr, "CreatedAt",
                         at, "CreatedSince", since, "Digest", digest ? digest : "<none>", "ID",
                         trunc ? cli_short_id(id, sid) : id, "Repository", repo, "SharedSize", sh, "Size", s, "Tag",
                         tag, "UniqueSize", un, "VirtualSize", s);
}

static const char *digest_for(json_t *img, const char *repo)
{
        json_t *d;
        size_t i;
        json_array_foreach(json_object_get(img, "RepoDigests"), i, d) {
                _cleanup_free_ char *r = NULL;
                const char *dg;
                split_ref(json_string_value(d) ?: "", '@', &r, &dg);
                if (r && dg && (streq(r, repo) || streq(repo, "<none>")))
                        return dg;
        }
        return NULL;
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
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *filters = json_object(), *list = NULL, *rows = json_array();
        _cleanup_free_ char *query = NULL, *target = NULL;
        bool all = false, quiet = false, trunc = true, digests = false;
        const char *format = NULL;
        json_t *img;
        size_t i;
        int c, r;

        if (!filters || !rows)
                return moat_error_set(reterr, -ENOMEM, "images");
        while ((c = getopt_long(argc, argv, ":aqf:", options, NULL)) != -1) {
                switch (c) {
                case 'a':
                        all = true;
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
                        r = cli_filter_add(filters, "images", optarg, reterr);
                        if (r < 0)
                                return r;
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
        if (argc - optind > 1)
                return moat_error_setx(reterr, -EINVAL, "\"moat images\" requires at most 1 argument.");
        if (optind < argc) {
                _cleanup_free_ char *f = NULL;
                if (asprintf(&f, "reference=%s", argv[optind]) < 0)
                        return moat_error_set(reterr, -ENOMEM, "images");
                r = cli_filter_add(filters, "images", f, reterr);
                if (r < 0)
                        return r;
        }
        if (quiet)
                format = "{{.ID}}";
        else if (!format || streq(format, "table"))
                format = digests ? "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                                 : "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
        if (cli_filters_query(filters, &query) < 0 ||
            asprintf(&target, "/images/json?all=%d%s%s", all, *query ? "&" : "", query) < 0)
                return moat_error_set(reterr, -ENOMEM, "images");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = moat_client_call(client, "GET", target, NULL, NULL, &list, reterr);
        if (r < 0)
                return r;
        json_array_foreach(list, i, img) {
                json_t *tags = json_object_get(img, "RepoTags"), *t;
                size_t k;
                if (json_array_size(tags) == 0) {
                        if (json_array_append_new(rows, row(img, "<none>", "<none>",
                                                            digests ? digest_for(img, "<none>") : NULL, trunc)) < 0)
                                return moat_error_set(reterr, -ENOMEM, "images");
                        continue;
                }
                json_array_foreach(tags, k, t) {
                        _cleanup_free_ char *repo = NULL;
                        const char *tag;
                        split_ref(json_string_value(t) ?: "", ':', &repo, &tag);
                        if (!repo || json_array_append_new(rows, row(img, repo, tag ? tag : "<none>",
                                                                     digests ? digest_for(img, repo) : NULL,
                                                                     trunc)) < 0)
                                return moat_error_set(reterr, -ENOMEM, "images");
                }
        }
        return cli_print_list("images", format, format, fields, headers, rows, reterr);
}
