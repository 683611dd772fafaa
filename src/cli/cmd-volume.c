/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat volume create|ls|inspect|rm|prune: docker's volume group, through
 * the daemon's /volumes routes. Output as docker prints it: create and rm
 * echo the names, ls is the "DRIVER  VOLUME NAME" table sorted by name
 * (or --format over docker's row fields, Labels as "k=v,..."), inspect
 * the indented JSON array of what was found with "Error response from
 * daemon: ..." on stderr for the rest (exit 1), prune the "Deleted
 * Volumes:" list and the reclaimed space, after docker's question read
 * from standard input unless -f.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

#define MAX_OPTS 256

static int key_value(json_t *obj, const char *verb, const char *flag, const char *text, struct moat_error **reterr)
{
        const char *eq = strchr(text, '=');
        _cleanup_free_ char *key = NULL;

        if (json_object_size(obj) >= MAX_OPTS)
                return moat_error_setx(reterr, -E2BIG, "%s: more than %d %s values", verb, MAX_OPTS, flag);
        key = eq ? strndup(text, (size_t) (eq - text)) : strdup(text);
        if (!key || json_object_set_new(obj, key, json_string(eq ? eq + 1 : "")) < 0)
                return moat_error_set(reterr, -ENOMEM, "%s", verb);
        return 0;
}

static int volume_create(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_LABEL = 256, OPT_NAME };
        static const struct option options[] = {
                { "driver", required_argument, NULL, 'd' },
                { "opt", required_argument, NULL, 'o' },
                { "label", required_argument, NULL, OPT_LABEL },
                { "name", required_argument, NULL, OPT_NAME },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *opts = json_object(), *labels = json_object(), *body = NULL, *reply = NULL;
        const char *driver = "local", *name = NULL;
        int c, r;

        if (!opts || !labels)
                return moat_error_set(reterr, -ENOMEM, "volume create");
        while ((c = getopt_long(argc, argv, ":d:o:", options, NULL)) != -1) {
                switch (c) {
                case 'd':
                        driver = optarg;
                        break;
                case 'o':
                        if (!strchr(optarg, '='))
                                return moat_error_setx(reterr, -EINVAL,
                                                       "invalid argument \"%s\" for \"-o, --opt\" flag: invalid key "
                                                       "value pair format: %s",
                                                       optarg, optarg);
                        r = key_value(opts, "volume create", "--opt", optarg, reterr);
                        if (r < 0)
                                return r;
                        break;
                case OPT_LABEL:
                        r = key_value(labels, "volume create", "--label", optarg, reterr);
                        if (r < 0)
                                return r;
                        break;
                case OPT_NAME:
                        name = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (argc - optind > 1)
                return moat_error_setx(reterr, -EINVAL, "\"moat volume create\" requires at most 1 argument.");
        if (optind < argc) {
                if (name && !streq(name, argv[optind]))
                        return moat_error_setx(reterr, -EINVAL,
                                               "conflicting options: cannot specify a volume-name through both --name "
                                               "and as a positional arg");
                name = argv[optind];
        }
        body = json_pack("{s:s, s:s, s:O, s:O}", "Name", name ? name : "", "Driver", driver, "DriverOpts", opts,
                         "Labels", labels);
        if (!body)
                return moat_error_set(reterr, -ENOMEM, "volume create");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = moat_client_call(client, "POST", "/volumes/create", body, NULL, &reply, reterr);
        if (r < 0)
                return r;
        printf("%s\n", json_string_value(json_object_get(reply, "Name")) ?: "");
        return 0;
}

static int name_cmp(const void *a, const void *b)
{
        const char *x = json_string_value(json_object_get(*(json_t *const *) a, "Name"));
        const char *y = json_string_value(json_object_get(*(json_t *const *) b, "Name"));
        return strcmp(x ? x : "", y ? y : "");
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* docker's Labels column: "k=v" joined by commas, here in key order. */
static char *labels_text(json_t *labels)
{
        size_t n = json_object_size(labels), i = 0, size = 0;
        _cleanup_free_ const char **keys = calloc(n + 1, sizeof(char *));
        char *buf = NULL;
        const char *k;
        json_t *v;
        FILE *f;

        if (!keys)
                return NULL;
        json_object_foreach(labels, k, v)
                keys[i++] = k;
        qsort(keys, n, sizeof(char *), str_cmp);
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (i = 0; i < n; i++)
                fprintf(f, "%s%s=%s", i ? "," : "", keys[i],
                        json_string_value(json_object_get(labels, keys[i])) ?: "");
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

static json_t *volume_row(json_t *v)
{
        _cleanup_free_ char *labels = labels_text(json_object_get(v, "Labels"));
        json_t *usage = json_object_get(v, "UsageData");
        char size[32] = "N/A", links[32] = "N/A";

        if (!labels)
                return NULL;
        if (json_integer_value(json_object_get(usage, "Size")) >= 0 && json_object_get(usage, "Size"))
                cli_human_size(json_integer_value(json_object_get(usage, "Size")), size, sizeof(size));
        if (json_integer_value(json_object_get(usage, "RefCount")) >= 0 && json_object_get(usage, "RefCount"))
                snprintf(links, sizeof(links), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(json_object_get(usage, "RefCount")));
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Availability", "N/A", "Driver",
                         json_string_value(json_object_get(v, "Driver")) ?: "", "Group", "N/A", "Labels", labels,
                         "Links", links, "Mountpoint", json_string_value(json_object_get(v, "Mountpoint")) ?: "",
                         "Name", json_string_value(json_object_get(v, "Name")) ?: "", "Scope",
                         json_string_value(json_object_get(v, "Scope")) ?: "", "Size", size, "Status", "N/A");
}

int cli_volume_rows(json_t *volumes, json_t **ret)
{
        size_t n = json_array_size(volumes);
        _cleanup_free_ json_t **sorted = calloc(n + 1, sizeof(json_t *));
        _cleanup_json_ json_t *rows = json_array();

        if (!sorted || !rows)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                sorted[i] = json_array_get(volumes, i);
        qsort(sorted, n, sizeof(json_t *), name_cmp);
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(rows, volume_row(sorted[i])) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(rows);
        return 0;
}

static int volume_ls(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_FORMAT = 256 };
        static const struct option options[] = {
                { "quiet", no_argument, NULL, 'q' },
                { "filter", required_argument, NULL, 'f' },
                { "format", required_argument, NULL, OPT_FORMAT },
                {},
        };
        static const char *const fields[] = { "Name", "Driver", "Scope", "Mountpoint", "Labels", "Links", "Size",
                                              "Availability", "Group", "Status", NULL };
        static const char *const headers[] = { "VOLUME NAME", "DRIVER", "SCOPE", "MOUNTPOINT", "LABELS", "LINKS",
                                               "SIZE", "AVAILABILITY", "GROUP", "STATUS" };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *filters = json_object(), *reply = NULL, *rows = NULL;
        _cleanup_free_ char *query = NULL, *target = NULL;
        const char *format = NULL;
        bool quiet = false;
        int c, r;

        if (!filters)
                return moat_error_set(reterr, -ENOMEM, "volume ls");
        while ((c = getopt_long(argc, argv, ":qf:", options, NULL)) != -1) {
                switch (c) {
                case 'q':
                        quiet = true;
                        break;
                case 'f':
                        r = cli_filter_add(filters, "volume ls", optarg, reterr);
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
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat volume ls\" accepts no arguments.");
        if (quiet && !format)
                format = "{{.Name}}";
        if (cli_filters_query(filters, &query) < 0 || asprintf(&target, "/volumes%s%s", *query ? "?" : "", query) < 0)
                return moat_error_set(reterr, -ENOMEM, "volume ls");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = moat_client_call(client, "GET", target, NULL, NULL, &reply, reterr);
        if (r < 0)
                return r;
        if (cli_volume_rows(json_object_get(reply, "Volumes"), &rows) < 0)
                return moat_error_set(reterr, -ENOMEM, "volume ls");
        return cli_print_list("volume ls", format, "table {{.Driver}}\t{{.Name}}", fields, headers, rows, reterr);
}

static int volume_inspect(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "format", required_argument, NULL, 'f' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        _cleanup_json_ json_t *all = json_array();
        bool failed = false;
        int c, r;

        if (!all)
                return moat_error_set(reterr, -ENOMEM, "volume inspect");
        while ((c = getopt_long(argc, argv, ":f:", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                        if (streq(optarg, "json"))
                                break;
                        r = cli_format_parse("volume inspect", optarg, NULL, &fmt, reterr);
                        if (r < 0)
                                return r;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat volume inspect\" requires at least 1 argument.");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        for (int i = optind; i < argc; i++) {
                _cleanup_error_ struct moat_error *err = NULL;
                _cleanup_free_ char *e = moat_client_escape(argv[i]), *target = NULL;
                json_t *v = NULL;
                if (!e || asprintf(&target, "/volumes/%s", e) < 0)
                        return moat_error_set(reterr, -ENOMEM, "volume inspect");
                r = moat_client_call(client, "GET", target, NULL, NULL, &v, &err);
                if (r == -ECONNREFUSED) {
                        *reterr = TAKE_PTR(err);
                        return r;
                }
                if (r < 0) {
                        cli_print_error(err);
                        failed = true;
                        continue;
                }
                json_array_append_new(all, v);
        }
        if (fmt) {
                json_t *v;
                size_t i;
                json_array_foreach(all, i, v) {
                        _cleanup_free_ char *line = NULL;
                        r = cli_format_render(fmt, "volume inspect", v, &line, reterr);
                        if (r < 0)
                                return r;
                        printf("%s\n", line);
                }
        } else {
                _cleanup_free_ char *text = cli_json_dumps(all, JSON_INDENT(4) | JSON_SORT_KEYS);
                if (!text)
                        return moat_error_set(reterr, -ENOMEM, "volume inspect");
                printf("%s\n", text);
        }
        return failed ? CLI_FAILED_REPORTED : 0;
}

static int remove_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        if (!e || asprintf(&target, "/volumes/%s?force=%d", e, *(bool *) userdata) < 0)
                return moat_error_set(reterr, -ENOMEM, "volume rm");
        return moat_client_call(client, "DELETE", target, NULL, NULL, NULL, reterr);
}

static int volume_rm(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "force", no_argument, NULL, 'f' },
                {},
        };
        bool force = false;
        int c;

        while ((c = getopt_long(argc, argv, ":f", options, NULL)) != -1) {
                if (c != 'f')
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                force = true;
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat volume rm\" requires at least 1 argument.");
        return cli_for_each(cli, argc, argv, optind, remove_one, &force, true, reterr);
}

static int volume_prune(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *filters = json_object(), *reply = NULL;
        _cleanup_free_ char *query = NULL, *target = NULL;
        struct cli_prune_opts po;
        json_t *v;
        size_t i;
        int r;

        if (!filters)
                return moat_error_set(reterr, -ENOMEM, "volume prune");
        r = cli_prune_opts_parse("volume prune", argc, argv, false, filters, &po, reterr);
        if (r < 0)
                return r;
        bool all = po.all, force = po.force;
        if (all && json_object_get(filters, "all"))
                return moat_error_setx(reterr, -EINVAL, "conflicting options: cannot specify both --all and "
                                                        "--filter all=1");
        if (all) {
                r = cli_filter_add(filters, "volume prune", "all=true", reterr);
                if (r < 0)
                        return r;
        }
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        if (!force && !cli_confirm(all ? "WARNING! This will remove all local volumes not used by at least one "
                                         "container.\nAre you sure you want to continue?"
                                       : "WARNING! This will remove anonymous local volumes not used by at least one "
                                         "container.\nAre you sure you want to continue?"))
                return 0;
        if (cli_filters_query(filters, &query) < 0 ||
            asprintf(&target, "/volumes/prune%s%s", *query ? "?" : "", query) < 0)
                return moat_error_set(reterr, -ENOMEM, "volume prune");
        r = moat_client_call(client, "POST", target, NULL, NULL, &reply, reterr);
        if (r < 0)
                return r;
        json_t *deleted = json_object_get(reply, "VolumesDeleted");
        if (json_array_size(deleted) > 0) {
                printf("Deleted Volumes:\n");
                json_array_foreach(deleted, i, v)
                        printf("%s\n", json_string_value(v) ?: "");
                printf("\n");
        }
        char size[32];
        cli_human_size4((uint64_t) json_integer_value(json_object_get(reply, "SpaceReclaimed")), size, sizeof(size));
        printf("Total reclaimed space: %s\n", size);
        return 0;
}

int cmd_volume(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct {
                const char *name;
                moat_cli_verb_fn fn;
        } subs[] = {
                { "create", volume_create }, { "ls", volume_ls },         { "list", volume_ls },
                { "inspect", volume_inspect }, { "rm", volume_rm },       { "remove", volume_rm },
                { "prune", volume_prune },
        };

        for (size_t i = 0; argc >= 2 && i < ELEMENTSOF(subs); i++)
                if (streq(argv[1], subs[i].name)) {
                        optind = 0;
                        return subs[i].fn(cli, argc - 1, argv + 1, reterr);
                }
        return moat_error_setx(reterr, -EINVAL, "moat: unknown command: moat volume %s\n\nRun 'moat volume --help' "
                                                "for more information",
                               argc >= 2 ? argv[1] : "");
}
