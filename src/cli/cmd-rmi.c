/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat rmi [-f] [--no-prune] IMAGE...: docker rmi, through DELETE
 * /images/{name}: each image's report printed as docker prints it
 * ("Untagged: x", "Deleted: sha256:..."), each failure on stderr; exit 1
 * when any failed.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

struct rmi_args {
        bool force, no_prune;
};

static int rmi_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        const struct rmi_args *a = userdata;
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        _cleanup_json_ json_t *reply = NULL;
        json_t *item;
        size_t i;
        int r;

        if (!e || asprintf(&target, "/images/%s?force=%d&noprune=%d", e, a->force, a->no_prune) < 0)
                return moat_error_set(reterr, -ENOMEM, "rmi");
        r = moat_client_call(client, "DELETE", target, NULL, NULL, &reply, reterr);
        if (r < 0)
                return r;
        json_array_foreach(reply, i, item) {
                const char *u = json_string_value(json_object_get(item, "Untagged"));
                const char *d = json_string_value(json_object_get(item, "Deleted"));
                if (u)
                        printf("Untagged: %s\n", u);
                if (d)
                        printf("Deleted: %s\n", d);
        }
        return 0;
}

int cmd_rmi(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_NO_PRUNE = 256 };
        static const struct option options[] = {
                { "force", no_argument, NULL, 'f' },
                { "no-prune", no_argument, NULL, OPT_NO_PRUNE },
                {},
        };
        struct rmi_args a = {};
        int c;

        while ((c = getopt_long(argc, argv, ":f", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                        a.force = true;
                        break;
                case OPT_NO_PRUNE:
                        a.no_prune = true;
                        break;
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat rmi\" requires at least 1 argument.");
        return cli_for_each(cli, argc, argv, optind, rmi_one, &a, false, reterr);
}
