/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat tag SOURCE TARGET: docker tag, through POST
 * /images/{source}/tag?repo=...&tag=... (TARGET split at the colon after
 * its last slash; no tag is the daemon's "latest").
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

int cmd_tag(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option none[] = { {} };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *es = NULL, *repo = NULL, *er = NULL, *et = NULL, *target = NULL;
        int c, r;

        if ((c = getopt_long(argc, argv, "", none, NULL)) != -1)
                return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
        if (argc - optind != 2)
                return moat_error_setx(reterr, -EINVAL, "\"moat tag\" requires exactly 2 arguments.");
        const char *to = argv[optind + 1], *slash = strrchr(to, '/'), *colon = strrchr(to, ':');
        bool tagged = colon && (!slash || colon > slash);
        repo = tagged ? strndup(to, (size_t) (colon - to)) : strdup(to);
        es = moat_client_escape(argv[optind]);
        er = repo ? moat_client_escape(repo) : NULL;
        et = moat_client_escape(tagged ? colon + 1 : "");
        if (!es || !er || !et || asprintf(&target, "/images/%s/tag?repo=%s%s%s", es, er, tagged ? "&tag=" : "",
                                          tagged ? et : "") < 0)
                return moat_error_set(reterr, -ENOMEM, "tag");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        return moat_client_call(client, "POST", target, NULL, NULL, NULL, reterr);
}
