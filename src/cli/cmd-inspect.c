/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat inspect REF: docker's image inspect JSON, an array with one object:
 * Id (config digest), RepoTags (every reference naming the same target),
 * Created, Architecture, Os, Config, RootFS (the DiffIDs) and Size (sum of
 * the layers as stored).
 */

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"

static json_t *strv_json(char **v)
{
        json_t *a = json_array();
        for (size_t i = 0; a && v && v[i]; i++)
                if (json_array_append_new(a, json_string(v[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

/* docker prints null for an absent list and for an absent string "". */
static json_t *strv_or_null(char **v, bool present)
{
        return present || v ? strv_json(v) : json_null();
}

static json_t *config_json(const struct oci_image_config *cfg)
{
        const struct oci_image_exec_config *x = &cfg->config;
        json_t *labels = json_object(), *ports = json_object();

        for (size_t i = 0; labels && i < x->n_labels; i++)
                json_object_set_new(labels, x->labels[i].key, json_string(x->labels[i].value));
        for (size_t i = 0; ports && x->exposed_ports && x->exposed_ports[i]; i++)
                json_object_set_new(ports, x->exposed_ports[i], json_object());
        return json_pack("{s:o, s:o, s:o, s:s, s:s, s:o, s:o}",
                         "Env", strv_or_null(x->env, false),
                         "Cmd", strv_or_null(x->cmd, x->has_cmd),
                         "Entrypoint", strv_or_null(x->entrypoint, x->has_entrypoint),
                         "WorkingDir", x->working_dir ? x->working_dir : "",
                         "User", x->user ? x->user : "",
                         "Labels", x->n_labels ? labels : (json_decref(labels), json_null()),
                         "ExposedPorts", json_object_size(ports) ? ports : (json_decref(ports), json_null()));
}

int cmd_inspect(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_image_ struct moat_image *img = NULL;
        struct moat_image_ref *refs = NULL;
        size_t n = 0;
        json_t *root = NULL;
        int c, r;

        if ((c = getopt(argc, argv, "+")) != -1)
                return cli_bad_option("inspect", argv[optind - 1], reterr);
        if (argc - optind != 1)
                return moat_error_setx(reterr, -EINVAL, "inspect: requires exactly 1 argument (REF)");
        const char *ref = argv[optind];

        r = cli_open_store(cli, false, &s, reterr);
        if (r < 0)
                return r;
        r = moat_images_resolve(s, ref, NULL, &img, reterr);
        if (r < 0)
                return r == -ENOENT ? moat_error_wrap(reterr, r, "No such image: %s", ref) : r;
        r = moat_images_list(s, &refs, &n, reterr);
        if (r < 0)
                return r;

        const struct oci_image_config *cfg = img->config;
        json_t *tags = json_array();
        for (size_t i = 0; tags && i < n; i++) {
                _cleanup_free_ char *fam = NULL;
                if (!streq(refs[i].digest, img->target_digest))
                        continue;
                r = cli_familiar(refs[i].reference, &fam, reterr);
                if (r < 0) {
                        json_decref(tags);
                        goto finish;
                }
                json_array_append_new(tags, json_string(fam));
        }
        json_t *obj = json_pack("{s:s, s:o, s:s, s:s, s:s, s:o, s:{s:s, s:o}, s:I}",
                                "Id", img->config_digest,
                                "RepoTags", tags ? tags : json_null(),
                                "Created", cfg->created ? cfg->created : "",
                                "Architecture", cfg->architecture ? cfg->architecture : "",
                                "Os", cfg->os ? cfg->os : "",
                                "Config", config_json(cfg),
                                "RootFS", "Type", "layers", "Layers", strv_json(cfg->diff_ids),
                                "Size", (json_int_t) cli_image_size(img));
        root = obj ? json_pack("[o]", obj) : NULL;
        char *text = root ? json_dumps(root, JSON_INDENT(4) | JSON_PRESERVE_ORDER) : NULL;
        if (!text) {
                r = moat_error_set(reterr, -ENOMEM, "inspect: JSON");
                goto finish;
        }
        printf("%s\n", text);
        free(text);
        r = 0;
finish:
        json_decref(root);
        moat_image_refs_free(refs, n);
        return r;
}
