/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat history [-H|--human[=BOOL]] [--no-trunc] [-q] [--format F] IMAGE:
 * docker history, through GET /images/{name}/history: one row per entry,
 * newest first, with docker's columns IMAGE CREATED CREATED BY SIZE
 * COMMENT, CREATED BY cut to 45 characters and IDs to 12 unless
 * --no-trunc, times and sizes in words unless --human=false (RFC 3339 and
 * bytes then).
 */

#include <getopt.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static const char *const fields[] = { "ID", "CreatedSince", "CreatedAt", "CreatedBy", "Size", "Comment", NULL };
static const char *const headers[] = { "IMAGE", "CREATED", "CREATED AT", "CREATED BY", "SIZE", "COMMENT" };

static int parse_bool(const char *v, bool *ret)
{
        if (strcasecmp(v, "true") == 0 || streq(v, "1") || streq(v, "t"))
                *ret = true;
        else if (strcasecmp(v, "false") == 0 || streq(v, "0") || streq(v, "f"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static void rfc3339(time_t t, char *buf, size_t len)
{
        struct tm tm;
        char zone[8] = "";
        buf[0] = 0;
        if (!localtime_r(&t, &tm))
                return;
        strftime(zone, sizeof(zone), "%z", &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
        if (streq(zone, "+0000"))
                strncat(buf, "Z", len - strlen(buf) - 1);
        else if (strlen(zone) == 5)
                snprintf(buf + strlen(buf), len - strlen(buf), "%.3s:%s", zone, zone + 3);
}

/* docker's Ellipsis: at most n characters, the last one "…" when cut. */
static char *ellipsis(const char *s, size_t n)
{
        size_t runes = 0, keep = 0;
        char *out = NULL;

        for (size_t i = 0; s[i]; i++)
                if (((unsigned char) s[i] & 0xc0) != 0x80) {
                        if (runes == n - 1)
                                keep = i;
                        runes++;
                }
        if (runes <= n)
                return strdup(s);
        return asprintf(&out, "%.*s…", (int) keep, s) < 0 ? NULL : out;
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
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *list = NULL, *rows = json_array();
        _cleanup_free_ char *e = NULL, *target = NULL, *eplat = NULL;
        bool human = true, trunc = true, quiet = false;
        const char *format = NULL, *platform = NULL;
        json_t *h;
        size_t i;
        int c, r;

        if (!rows)
                return moat_error_set(reterr, -ENOMEM, "history");
        while ((c = getopt_long(argc, argv, ":H::q", options, NULL)) != -1) {
                switch (c) {
                case 'H':
                case OPT_HUMAN:
                        if (!optarg)
                                human = true;
                        else if (parse_bool(optarg[0] == '=' ? optarg + 1 : optarg, &human) < 0)
                                return moat_error_setx(reterr, -EINVAL,
                                                       "invalid argument \"%s\" for \"-H, --human\" flag: "
                                                       "strconv.ParseBool: parsing \"%s\": invalid syntax",
                                                       optarg, optarg);
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
                        platform = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (argc - optind != 1)
                return moat_error_setx(reterr, -EINVAL, "\"moat history\" requires exactly 1 argument.");
        if (quiet)
                format = "{{.ID}}";
        else if (!format || streq(format, "table"))
                format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
        e = moat_client_escape(argv[optind]);
        if (platform) {
                _cleanup_free_ char *p = NULL;
                const char *slash = strchr(platform, '/');
                const char *arch = slash ? slash + 1 : "";
                const char *vs = strchr(arch, '/');
                if (asprintf(&p, "{\"os\":\"%.*s\",\"architecture\":\"%.*s\"%s%s%s}",
                             (int) (slash ? slash - platform : (long) strlen(platform)), platform,
                             (int) (vs ? vs - arch : (long) strlen(arch)), arch, vs ? ",\"variant\":\"" : "",
                             vs ? vs + 1 : "", vs ? "\"" : "") < 0 ||
                    !(eplat = moat_client_escape(p)))
                        return moat_error_set(reterr, -ENOMEM, "history");
        }
        if (!e || asprintf(&target, "/images/%s/history%s%s", e, eplat ? "?platform=" : "", eplat ? eplat : "") < 0)
                return moat_error_set(reterr, -ENOMEM, "history");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = moat_client_call(client, "GET", target, NULL, NULL, &list, reterr);
        if (r < 0)
                return r;
        json_array_foreach(list, i, h) {
                const char *id = json_string_value(json_object_get(h, "Id")) ?: "<missing>";
                time_t created = (time_t) json_integer_value(json_object_get(h, "Created"));
                json_int_t size = json_integer_value(json_object_get(h, "Size"));
                _cleanup_free_ char *by = strdup(json_string_value(json_object_get(h, "CreatedBy")) ?: ""), *cut = NULL;
                char sid[13], since[64], at[64], s[32];
                if (!by)
                        return moat_error_set(reterr, -ENOMEM, "history");
                for (char *p = by; *p; p++)
                        if (*p == '\t')
                                *p = ' ';
                cut = trunc ? ellipsis(by, 45) : strdup(by);
                rfc3339(created, at, sizeof(at));
                if (human) {
                        cli_time_since_unix(created, since, sizeof(since));
                        cli_human_size(size, s, sizeof(s));
                } else {
                        snprintf(since, sizeof(since), "%s", at);
                        snprintf(s, sizeof(s), "%" JSON_INTEGER_FORMAT, size);
                }
                json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "ID",
                                        trunc && startswith(id, "sha256:") ? cli_short_id(id, sid) : id, "CreatedSince",
                                        since, "CreatedAt", at, "CreatedBy", cut ? cut : "", "Size", s, "Comment",
                                        json_string_value(json_object_get(h, "Comment")) ?: "");
                if (!row || json_array_append_new(rows, row) < 0)
                        return moat_error_set(reterr, -ENOMEM, "history");
        }
        return cli_print_list("history", format, format, fields, headers, rows, reterr);
}
