/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat inspect [-f FORMAT] IMAGE...: docker's image inspect, a JSON array
 * with one object per image found (IMAGE: a reference, an ID or a unique
 * ID prefix, see moat_images_lookup). The fields are docker's, in its
 * order: Id (config digest), RepoTags (every name holding the same ID),
 * RepoDigests (name@digest of the manifest or index each name holds, as
 * docker's containerd store gives them), Parent and Comment, Created,
 * DockerVersion, Author, Config, Architecture, Variant (when set), Os, Size
 * (the layers as stored), RootFS (the DiffIDs) and Metadata.LastTagTime
 * (when a name was last set; Go's zero time when never). With -f each
 * object goes through the --format template instead. An image not found
 * is an error "No such image: X" after the others are printed (exit 1).
 */

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"

#define ZERO_TIME "0001-01-01T00:00:00Z"

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

static json_t *keys_object(char **keys)
{
        json_t *o = json_object();
        for (size_t i = 0; o && keys && keys[i]; i++)
                json_object_set_new(o, keys[i], json_object());
        return o;
}

static json_t *config_json(const struct oci_image_config *cfg)
{
        const struct oci_image_exec_config *x = &cfg->config;
        json_t *labels = json_object(), *o;

        for (size_t i = 0; labels && i < x->n_labels; i++)
                json_object_set_new(labels, x->labels[i].key, json_string(x->labels[i].value));
        o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:s, s:o}",
                      "User", x->user ? x->user : "",
                      "ExposedPorts", x->exposed_ports ? keys_object(x->exposed_ports) : json_null(),
                      "Env", strv_or_null(x->env, false),
                      "Cmd", strv_or_null(x->cmd, x->has_cmd),
                      "Entrypoint", strv_or_null(x->entrypoint, x->has_entrypoint),
                      "WorkingDir", x->working_dir ? x->working_dir : "",
                      "Labels", x->n_labels ? labels : (json_decref(labels), json_null()));
        if (!o)
                return NULL;
        if (x->volumes)
                json_object_set_new(o, "Volumes", keys_object(x->volumes));
        if (x->stop_signal)
                json_object_set_new(o, "StopSignal", json_string(x->stop_signal));
        if (x->args_escaped)
                json_object_set_new(o, "ArgsEscaped", json_true());
        if (x->healthcheck)
                json_object_set(o, "Healthcheck", x->healthcheck);
        return o;
}

static const char *doc_string(const struct oci_image_doc *doc, const char *key)
{
        const char *v = json_string_value(json_object_get(doc->json, key));
        return v ? v : "";
}

static int inspect_json(struct moat_store *s, const struct moat_image *img, json_t **ret,
                        struct moat_error **reterr)
{
        struct moat_image_entry *v = NULL;
        const struct oci_image_config *cfg = img->config;
        const char *last_tag = NULL;
        size_t n = 0;
        int r;

        r = moat_images_entries(s, NULL, &v, &n, reterr);
        if (r < 0)
                return r;
        json_t *tags = json_array(), *digests = json_array();
        for (size_t i = 0; tags && digests && i < n; i++) {
                _cleanup_free_ char *fam = NULL, *repo = NULL, *tag = NULL, *rd = NULL;
                if (!v[i].reference || !v[i].id || !streq(v[i].id, img->config_digest))
                        continue;
                if (v[i].tag_time && (!last_tag || strcmp(v[i].tag_time, last_tag) > 0))
                        last_tag = v[i].tag_time;
                r = cli_familiar(v[i].reference, &fam, reterr);
                if (r >= 0)
                        r = cli_repo_tag(v[i].reference, &repo, &tag, reterr);
                if (r < 0)
                        break;
                if (!strchr(v[i].reference, '@'))
                        json_array_append_new(tags, json_string(fam));
                if (asprintf(&rd, "%s@%s", repo, v[i].digest) < 0) {
                        r = -ENOMEM;
                        break;
                }
                bool seen = false;
                for (size_t k = 0; k < json_array_size(digests); k++)
                        seen = seen || streq(json_string_value(json_array_get(digests, k)), rd);
                if (!seen)
                        json_array_append_new(digests, json_string(rd));
        }
        json_t *obj = NULL;
        if (r >= 0 && tags && digests)
                obj = json_pack("{s:s, s:O, s:O, s:s, s:s, s:s, s:s, s:s, s:o, s:s}",
                                "Id", img->config_digest,
                                "RepoTags", tags,
                                "RepoDigests", digests,
                                "Parent", "",
                                "Comment", doc_string(img->config_doc, "comment"),
                                "Created", cfg->created ? cfg->created : "",
                                "DockerVersion", doc_string(img->config_doc, "docker_version"),
                                "Author", cfg->author ? cfg->author : "",
                                "Config", config_json(cfg),
                                "Architecture", cfg->architecture ? cfg->architecture : "");
        if (obj) {
                if (cfg->variant)
                        json_object_set_new(obj, "Variant", json_string(cfg->variant));
                json_object_set_new(obj, "Os", json_string(cfg->os ? cfg->os : ""));
                if (cfg->os_version)
                        json_object_set_new(obj, "OsVersion", json_string(cfg->os_version));
                json_object_set_new(obj, "Size", json_integer(cli_image_size(img)));
                json_object_set_new(obj, "RootFS",
                                    json_pack("{s:s, s:o}", "Type", "layers", "Layers", strv_json(cfg->diff_ids)));
                json_object_set_new(obj, "Metadata", json_pack("{s:s}", "LastTagTime", last_tag ? last_tag : ZERO_TIME));
        }
        json_decref(tags);
        json_decref(digests);
        moat_image_entries_free(v, n);
        if (r < 0)
                return r == -ENOMEM ? moat_error_set(reterr, r, "inspect") : r;
        if (!obj)
                return moat_error_set(reterr, -ENOMEM, "inspect: JSON");
        *ret = obj;
        return 0;
}

int cmd_inspect(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_TYPE = 256, OPT_PLATFORM };
        static const struct option options[] = {
                { "format", required_argument, NULL, 'f' },
                { "type", required_argument, NULL, OPT_TYPE },
                { "platform", required_argument, NULL, OPT_PLATFORM },
                {},
        };
        _cleanup_(cli_platform_clear) struct oci_platform platform = {};
        const char *platform_text = NULL;
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        json_t *all = NULL;
        const char *format = NULL;
        bool failed = false;
        int c, r;

        while ((c = getopt_long(argc, argv, ":f:", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                        format = optarg;
                        break;
                case OPT_PLATFORM:
                        platform_text = optarg;
                        break;
                case OPT_TYPE:
                        if (!streq(optarg, "image"))
                                return moat_error_setx(reterr, -EINVAL,
                                                       "inspect: --type \"%s\": moat inspects images only", optarg);
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "inspect: option \"%s\" needs an argument",
                                               argv[optind - 1]);
                default:
                        return cli_bad_option("inspect", argv[optind - 1], reterr);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "inspect: requires at least 1 argument (IMAGE...)");
        if (format) {
                r = cli_format_parse("inspect", format, NULL, &fmt, reterr);
                if (r < 0)
                        return r;
                if (cli_format_is_table(fmt))
                        return moat_error_setx(reterr, -EINVAL, "inspect: --format: table is not a format for inspect");
        }

        r = cli_open_store(cli, false, &s, NULL);
        if (r < 0 && r != -ENOENT)
                return cli_open_store(cli, false, &s, reterr);
        r = cli_platform(platform_text, &platform, reterr);
        if (r < 0)
                return r;
        all = json_array();
        if (!all)
                return moat_error_set(reterr, -ENOMEM, "inspect");
        for (int i = optind; i < argc; i++) {
                _cleanup_image_ struct moat_image *img = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                json_t *obj = NULL;

                r = s ? moat_images_lookup(s, argv[i], platform_text ? &platform : NULL, &img, &err) : -ENOENT;
                if (r >= 0)
                        r = cli_platform_check(img, &platform, argv[i], &err);
                if (r >= 0)
                        r = inspect_json(s, img, &obj, &err);
                if (r < 0) {
                        if (r == -ENOENT) {
                                moat_error_free(err);
                                err = NULL;
                                moat_error_setx(&err, r, "No such image: %s", argv[i]);
                        }
                        /* printed after the array, as docker does */
                        json_array_append_new(all, json_string(err && err->msg ? err->msg : strerror(-r)));
                        failed = true;
                        continue;
                }
                if (fmt) {
                        _cleanup_free_ char *line = NULL;
                        r = cli_format_render(fmt, "inspect", obj, &line, reterr);
                        json_decref(obj);
                        if (r < 0) {
                                json_decref(all);
                                return r;
                        }
                        printf("%s\n", line);
                } else
                        json_array_append_new(all, obj);
        }

        /* the array holds objects (found) and strings (errors) */
        json_t *found = json_array();
        size_t k;
        json_t *x;
        json_array_foreach(all, k, x)
                if (json_is_object(x))
                        json_array_append(found, x);
        if (!fmt) {
                _cleanup_free_ char *text = found ? cli_json_dumps(found, JSON_INDENT(4) | JSON_PRESERVE_ORDER) : NULL;
                if (!text) {
                        json_decref(found);
                        json_decref(all);
                        return moat_error_set(reterr, -ENOMEM, "inspect: JSON");
                }
                printf("%s\n", text);
        }
        fflush(stdout);
        json_array_foreach(all, k, x)
                if (json_is_string(x))
                        fprintf(stderr, "moat: %s\n", json_string_value(x));
        json_decref(found);
        json_decref(all);
        return failed ? CLI_FAILED_REPORTED : 0;
}
