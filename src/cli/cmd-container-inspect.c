/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat inspect [-f FORMAT] [--type container|image] NAME...: docker
 * inspect. Each NAME is looked up as docker's inspectAll does: GET
 * /containers/NAME/json, then /images/NAME/json (a 404 means "try the
 * next kind"); the objects found are printed as one indented JSON array,
 * or each through the --format template, and every name found nowhere is
 * "Error: No such object: NAME" (exit 1).
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static int lookup(struct moat_client *client, const char *kind, const char *name, json_t **ret,
                  struct moat_error **reterr)
{
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        if (!e || asprintf(&target, "/%s/%s/json", kind, e) < 0)
                return moat_error_set(reterr, -ENOMEM, "inspect");
        return moat_client_call(client, "GET", target, NULL, NULL, ret, reterr);
}

static int inspect(struct moat_cli *cli, int argc, char **argv, const char *fixed_type, struct moat_error **reterr)
{
        enum { OPT_TYPE = 256, OPT_SIZE };
        static const struct option options[] = {
                { "format", required_argument, NULL, 'f' },
                { "type", required_argument, NULL, OPT_TYPE },
                { "size", no_argument, NULL, 's' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        _cleanup_json_ json_t *all = json_array();
        const char *type = fixed_type;
        bool failed = false;
        int c, r;

        while ((c = getopt_long(argc, argv, ":f:s", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                        r = cli_format_parse("inspect", optarg, NULL, &fmt, reterr);
                        if (r < 0)
                                return r;
                        break;
                case OPT_TYPE:
                        if (fixed_type)
                                return moat_error_setx(reterr, -EINVAL, "unknown flag: --type");
                        if (!streq(optarg, "container") && !streq(optarg, "image"))
                                return moat_error_setx(reterr, -EINVAL, "\"%s\" is not a valid value for --type",
                                                       optarg);
                        type = optarg;
                        break;
                case 's':
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat %s\" requires at least 1 argument.", fixed_type ? "image inspect" : "inspect");
        if (!all)
                return moat_error_set(reterr, -ENOMEM, "inspect");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        for (int i = optind; i < argc; i++) {
                static const char *const kinds[] = { "containers", "images" };
                json_t *obj = NULL;
                r = -ENOENT;
                for (size_t k = 0; k < ELEMENTSOF(kinds) && r == -ENOENT; k++) {
                        _cleanup_error_ struct moat_error *err = NULL;
                        if (type && !startswith(kinds[k], type))
                                continue;
                        r = lookup(client, kinds[k], argv[i], &obj, &err);
                        if (r < 0 && r != -ENOENT) {
                                *reterr = TAKE_PTR(err);
                                return r;
                        }
                }
                if (r == -ENOENT) {
                        fprintf(stderr, "Error: No such %s: %s\n", type ? type : "object", argv[i]);
                        failed = true;
                        continue;
                }
                json_array_append_new(all, obj);
        }
        if (fmt) {
                json_t *obj;
                size_t i;
                json_array_foreach(all, i, obj) {
                        _cleanup_free_ char *line = NULL;
                        r = cli_format_render(fmt, "inspect", obj, &line, reterr);
                        if (r < 0)
                                return r;
                        printf("%s\n", line);
                }
        } else {
                _cleanup_free_ char *text = cli_json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
                if (!text)
                        return moat_error_set(reterr, -ENOMEM, "inspect");
                printf("%s\n", text);
        }
        return failed ? CLI_FAILED_REPORTED : 0;
}

int cmd_container_inspect(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return inspect(cli, argc, argv, NULL, reterr);
}

int cmd_image_inspect(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return inspect(cli, argc, argv, "image", reterr);
}
