/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat events [--since T] [--until T] [--filter K=V]... [--format F]:
 * docker events. GET /events streams one JSON message a line; each is
 * printed as docker prints it ("2024-01-02T03:04:05.123456789Z container
 * start <id> (image=demo, name=x)") or through --format. Without --until
 * it runs until interrupted.
 */

#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

#define LINE_MAX_BYTES (1024 * 1024)

struct events_out {
        struct cli_format *fmt;
        char *buf;
        size_t len;
        int error;
};

static int key_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void print_event(struct events_out *o, json_t *ev)
{
        if (o->fmt) {
                _cleanup_free_ char *line = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                if (cli_format_render(o->fmt, "events", ev, &line, &err) >= 0)
                        printf("%s\n", line);
                else
                        cli_print_error(err);
                fflush(stdout);
                return;
        }
        json_int_t nano = json_integer_value(json_object_get(ev, "timeNano"));
        time_t secs = (time_t) (nano / 1000000000);
        struct tm tm;
        char when[64] = "";
        if (localtime_r(&secs, &tm))
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        char zone[8] = "";
        strftime(zone, sizeof(zone), "%z", &tm);
        json_t *actor = json_object_get(ev, "Actor"), *attrs = json_object_get(actor, "Attributes");
        if (streq(zone, "+0000"))
                snprintf(zone, sizeof(zone), "Z");
        else if (strlen(zone) == 5) {
                zone[6] = 0;
                zone[5] = zone[4];
                zone[4] = zone[3];
                zone[3] = ':';
        }
        printf("%s.%09lld%s %s %s %s", when, (long long) (nano % 1000000000), zone,
               json_string_value(json_object_get(ev, "Type")) ?: "",
               json_string_value(json_object_get(ev, "Action")) ?: "",
               json_string_value(json_object_get(actor, "ID")) ?: "");
        size_t n = json_object_size(attrs), j = 0;
        if (n > 0) {
                _cleanup_free_ const char **keys = calloc(n, sizeof(char *));
                const char *k;
                json_t *v;
                if (keys) {
                        json_object_foreach(attrs, k, v)
                                keys[j++] = k;
                        qsort(keys, n, sizeof(char *), key_cmp);
                        printf(" (");
                        for (j = 0; j < n; j++)
                                printf("%s%s=%s", j ? ", " : "", keys[j],
                                       json_string_value(json_object_get(attrs, keys[j])) ?: "");
                        printf(")");
                }
        }
        printf("\n");
        fflush(stdout);
}

static int on_data(const char *data, size_t len, void *userdata)
{
        struct events_out *o = userdata;
        if (o->len + len > LINE_MAX_BYTES)
                return -EFBIG;
        char *b = realloc(o->buf, o->len + len + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + o->len, data, len);
        o->buf = b;
        o->len += len;
        b[o->len] = 0;
        char *line = b, *nl;
        while ((nl = memchr(line, '\n', o->len - (size_t) (line - b)))) {
                *nl = 0;
                json_error_t jerr;
                json_t *ev = *line ? json_loads(line, 0, &jerr) : NULL;
                if (ev) {
                        print_event(o, ev);
                        json_decref(ev);
                }
                line = nl + 1;
        }
        o->len -= (size_t) (line - b);
        memmove(b, line, o->len);
        return 0;
}

int cmd_events(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_SINCE = 256, OPT_UNTIL, OPT_FORMAT };
        static const struct option options[] = {
                { "since", required_argument, NULL, OPT_SINCE },
                { "until", required_argument, NULL, OPT_UNTIL },
                { "filter", required_argument, NULL, 'f' },
                { "format", required_argument, NULL, OPT_FORMAT },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        _cleanup_json_ json_t *filters = json_object();
        _cleanup_free_ char *target = NULL, *ftext = NULL, *fesc = NULL;
        char since[64] = "", until[64] = "";
        struct events_out out = {};
        int c, r;

        if (!filters)
                return moat_error_set(reterr, -ENOMEM, "events");
        while ((c = getopt_long(argc, argv, ":f:", options, NULL)) != -1) {
                switch (c) {
                case OPT_SINCE:
                case OPT_UNTIL:
                        if (cli_parse_timestamp(optarg, c == OPT_SINCE ? since : until, sizeof(since)) < 0)
                                return moat_error_setx(reterr, -EINVAL, "invalid value for \"%s\": \"%s\"",
                                                       c == OPT_SINCE ? "since" : "until", optarg);
                        break;
                case 'f': {
                        const char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg)
                                return moat_error_setx(reterr, -EINVAL, "bad format of filter (expected name=value)");
                        if (json_object_size(filters) >= 64)
                                return moat_error_setx(reterr, -E2BIG, "too many filters");
                        _cleanup_free_ char *key = strndup(optarg, (size_t) (eq - optarg));
                        if (!key)
                                return moat_error_set(reterr, -ENOMEM, "events");
                        json_t *a = json_object_get(filters, key);
                        if (!a) {
                                a = json_array();
                                json_object_set_new(filters, key, a);
                        }
                        json_array_append_new(a, json_string(eq + 1));
                        break;
                }
                case OPT_FORMAT:
                        r = cli_format_parse("events", optarg, NULL, &fmt, reterr);
                        if (r < 0)
                                return r;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat events\" accepts no arguments.");
        if (json_object_size(filters) > 0) {
                ftext = json_dumps(filters, JSON_COMPACT | JSON_SORT_KEYS);
                fesc = ftext ? moat_client_escape(ftext) : NULL;
                if (!fesc)
                        return moat_error_set(reterr, -ENOMEM, "events");
        }
        if (asprintf(&target, "/events?%s%s%s%s%s%s", *since ? "since=" : "", since, *until ? "&until=" : "", until,
                     fesc ? "&filters=" : "", fesc ? fesc : "") < 0)
                return moat_error_set(reterr, -ENOMEM, "events");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        out.fmt = fmt;
        r = moat_client_stream(client, "GET", target, NULL, on_data, &out, reterr);
        free(out.buf);
        if (r < 0 && !*reterr)
                r = moat_error_set(reterr, r, "events");
        return r;
}
