/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat images [-q] [--format json]: every reference of the store, as
 * docker's table (REPOSITORY TAG IMAGE ID CREATED SIZE; the ID is 12 hex
 * of the config digest, the size the sum of the layers), one ID a line
 * with -q, or one JSON object a line.
 */

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "base/cleanup.h"
#include "cli/cli.h"

/* docker's "2 hours ago" (go-units HumanDuration); "N/A" when unknown. */
static void human_created(const char *created, char *buf, size_t len)
{
        struct tm tm = {};
        const char *end;

        if (strempty(created) || !(end = strptime(created, "%Y-%m-%dT%H:%M:%S", &tm))) {
                snprintf(buf, len, "N/A");
                return;
        }
        time_t t = timegm(&tm);
        if (*end == '.')
                for (end++; *end >= '0' && *end <= '9'; end++)
                        ;
        if ((*end == '+' || *end == '-') && strlen(end) >= 6) {
                long off = ((end[1] - '0') * 10 + (end[2] - '0')) * 3600L + ((end[4] - '0') * 10 + (end[5] - '0')) * 60L;
                t += *end == '+' ? -off : off;
        }
        double secs = difftime(time(NULL), t);
        long s = secs < 0 ? 0 : (long) secs;
        long m = s / 60, h = s / 3600;
        if (s < 1)
                snprintf(buf, len, "Less than a second ago");
        else if (s == 1)
                snprintf(buf, len, "1 second ago");
        else if (s < 60)
                snprintf(buf, len, "%ld seconds ago", s);
        else if (m == 1)
                snprintf(buf, len, "About a minute ago");
        else if (m < 60)
                snprintf(buf, len, "%ld minutes ago", m);
        else if (h == 1)
                snprintf(buf, len, "About an hour ago");
        else if (h < 48)
                snprintf(buf, len, "%ld hours ago", h);
        else if (h < 24 * 7 * 2)
                snprintf(buf, len, "%ld days ago", h / 24);
        else if (h < 24 * 30 * 2)
                snprintf(buf, len, "%ld weeks ago", h / 24 / 7);
        else if (h < 24 * 365 * 2)
                snprintf(buf, len, "%ld months ago", h / 24 / 30);
        else
                snprintf(buf, len, "%ld years ago", h / 24 / 365);
}

static const char *short_id(const char *digest)
{
        static char id[13];
        const char *hex = startswith(digest, "sha256:") ? digest + 7 : digest;
        snprintf(id, sizeof(id), "%s", hex);
        return id;
}

int cmd_images(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "quiet", no_argument, NULL, 'q' },
                { "format", required_argument, NULL, 'f' },
                {},
        };
        _cleanup_store_ struct moat_store *s = NULL;
        struct moat_image_ref *refs = NULL;
        size_t n = 0;
        bool quiet = false, json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "+q", options, NULL)) != -1) {
                switch (c) {
                case 'q':
                        quiet = true;
                        break;
                case 'f':
                        if (!streq(optarg, "json") && !streq(optarg, "{{json .}}"))
                                return moat_error_setx(reterr, -EINVAL,
                                                       "images: --format \"%s\": only json is supported", optarg);
                        json = true;
                        break;
                default:
                        return cli_bad_option("images", argv[optind - 1], reterr);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "images: unexpected argument \"%s\"", argv[optind]);

        r = cli_open_store(cli, true, &s, reterr);
        if (r < 0)
                return r;
        r = moat_images_list(s, &refs, &n, reterr);
        if (r < 0)
                return r;

        if (!quiet && !json)
                printf("%-40s %-20s %-15s %-20s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
        for (size_t i = 0; i < n; i++) {
                _cleanup_image_ struct moat_image *img = NULL;
                _cleanup_free_ char *repo = NULL, *tag = NULL;
                char size[32], created[64];

                r = moat_images_resolve(s, refs[i].reference, NULL, &img, reterr);
                if (r == -EMEDIUMTYPE) {
                        /* An artifact, not an image: not listed. */
                        if (reterr) {
                                moat_error_free(*reterr);
                                *reterr = NULL;
                        }
                        continue;
                }
                if (r < 0)
                        goto finish;
                r = cli_repo_tag(refs[i].reference, &repo, &tag, reterr);
                if (r < 0)
                        goto finish;
                int64_t bytes = cli_image_size(img);
                cli_human_size(bytes, size, sizeof(size));

                if (quiet)
                        printf("%s\n", short_id(img->config_digest));
                else if (json) {
                        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "Repository", repo, "Tag", tag,
                                              "ID", short_id(img->config_digest), "Digest", refs[i].digest,
                                              "Size", size, "VirtualSize", (json_int_t) bytes);
                        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
                        json_decref(o);
                        if (!text) {
                                r = moat_error_set(reterr, -ENOMEM, "images: JSON");
                                goto finish;
                        }
                        printf("%s\n", text);
                        free(text);
                } else {
                        human_created(img->config->created, created, sizeof(created));
                        printf("%-40s %-20s %-15s %-20s %s\n", repo, tag, short_id(img->config_digest), created,
                               size);
                }
        }
        r = 0;
finish:
        moat_image_refs_free(refs, n);
        return r;
}
