/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The image-spec document parser: jansson reads the text, then one pass
 * converts manifests, indexes and image configs (OCI and Docker schema 2)
 * into the types of image-spec.h, checking what moat relies on (digests,
 * sizes, media types, counts) and naming the JSON path of the first
 * problem. These documents come from registries and archives moat does not
 * trust, so every size, count and string is bounded before it is used.
 * Platform selection and ChainIDs live here too because they are pure
 * functions of these documents.
 */

#include <inttypes.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "oci/image-spec.h"

/* ---- JSON path and errors ---- */

struct parser {
        char path[256];
        size_t len;
        struct moat_error **reterr;
};

static bool is_identifier(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '_' || *s == '-' || *s == '.'))
                        return false;
        return true;
}

static size_t push(struct parser *ps, const char *fmt, ...) MOAT_PRINTF(2, 3);
static size_t push(struct parser *ps, const char *fmt, ...)
{
        size_t saved = ps->len;
        va_list ap;

        if (ps->len < sizeof(ps->path)) {
                va_start(ap, fmt);
                vsnprintf(ps->path + ps->len, sizeof(ps->path) - ps->len, fmt, ap);
                va_end(ap);
                ps->len += strlen(ps->path + ps->len);
        }
        return saved;
}

static size_t push_key(struct parser *ps, const char *key)
{
        /* Keys here are ours (never user text), all identifiers. */
        return push(ps, "%s%s", ps->len > 0 ? "." : "", key);
}

static void pop(struct parser *ps, size_t saved)
{
        ps->len = saved;
        ps->path[saved] = '\0';
}

#define AT_KEY(ps, key, expr)                                   \
        ({                                                      \
                size_t _saved = push_key((ps), (key));          \
                int _r = (expr);                                \
                pop((ps), _saved);                              \
                _r;                                             \
        })
#define AT_INDEX(ps, i, expr)                                   \
        ({                                                      \
                size_t _saved = push((ps), "[%zu]", (size_t) (i)); \
                int _r = (expr);                                \
                pop((ps), _saved);                              \
                _r;                                             \
        })

static int fail(struct parser *ps, int r, const char *fmt, ...) MOAT_PRINTF(3, 4);
static int fail(struct parser *ps, int r, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg)
                return moat_error_setx(ps->reterr, -ENOMEM, "out of memory");
        if (ps->len == 0)
                return moat_error_setx(ps->reterr, r, "%s", msg);
        return moat_error_setx(ps->reterr, r, "%s: %s", ps->path, msg);
}

static int oom(struct parser *ps)
{
        return moat_error_setx(ps->reterr, -ENOMEM, "out of memory");
}

#define QUOTE_MAX 80 /* a whole sha256 digest fits */
/* User text for a message: quoted, escaped, shortened. */
static const char *quote(char *b, size_t size, const char *s)
{
        size_t o = 0, n = 0;

        b[o++] = '"';
        for (const unsigned char *p = (const unsigned char *) s; *p && o + 8 < size; p++, n++) {
                if (n >= QUOTE_MAX) {
                        memcpy(b + o, "...", 3);
                        o += 3;
                        break;
                }
                if (*p == '"' || *p == '\\') {
                        b[o++] = '\\';
                        b[o++] = (char) *p;
                } else if (*p < 0x20 || *p >= 0x7f)
                        o += (size_t) snprintf(b + o, size - o, "\\x%02x", *p);
                else
                        b[o++] = (char) *p;
        }
        b[o++] = '"';
        b[o] = '\0';
        return b;
}
#define QUOTE(s) quote((char[QUOTE_MAX * 4 + 16]){ 0 }, QUOTE_MAX * 4 + 16, (s))

/* ---- typed values ---- */

/* A member, with JSON null read as absent (Go producers write null). */
static json_t *member(const json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);
        return json_is_null(v) ? NULL : v;
}

static int string_value(struct parser *ps, const json_t *v, char **ret)
{
        if (!json_is_string(v))
                return fail(ps, -EINVAL, "must be a string");
        if (json_string_length(v) > OCI_IMAGE_STRING_MAX)
                return fail(ps, -EINVAL, "too long (%zu bytes, at most %u)", json_string_length(v),
                            OCI_IMAGE_STRING_MAX);
        if (strlen(json_string_value(v)) != json_string_length(v))
                return fail(ps, -EINVAL, "must not contain NUL characters");
        char *s = strdup(json_string_value(v));
        if (!s)
                return oom(ps);
        free(*ret);
        *ret = s;
        return 0;
}

/* An optional string member. */
static int opt_string(struct parser *ps, const json_t *obj, const char *key, char **ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        return AT_KEY(ps, key, string_value(ps, v, ret));
}

static int req_string(struct parser *ps, const json_t *obj, const char *key, char **ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return AT_KEY(ps, key, fail(ps, -EINVAL, "missing"));
        return AT_KEY(ps, key, string_value(ps, v, ret));
}

static int bool_value(struct parser *ps, const json_t *obj, const char *key, bool *ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        if (!json_is_boolean(v))
                return AT_KEY(ps, key, fail(ps, -EINVAL, "must be a boolean"));
        *ret = json_is_true(v);
        return 0;
}

static int string_array(struct parser *ps, const json_t *v, size_t max, char ***ret, size_t *ret_n)
{
        if (!json_is_array(v))
                return fail(ps, -EINVAL, "must be an array");
        size_t n = json_array_size(v);
        if (n > max)
                return fail(ps, -E2BIG, "too many entries (%zu, at most %zu)", n, max);
        _cleanup_strv_free_ char **a = calloc(n + 1, sizeof(char *));
        if (!a)
                return oom(ps);
        for (size_t i = 0; i < n; i++) {
                int r = AT_INDEX(ps, i, string_value(ps, json_array_get(v, i), &a[i]));
                if (r < 0)
                        return r;
        }
        strv_free(*ret);
        *ret = TAKE_PTR(a);
        if (ret_n)
                *ret_n = n;
        return 0;
}

/* The keys of an object whose values must be objects ({"80/tcp": {}}). */
static int key_set(struct parser *ps, const json_t *v, char ***ret)
{
        const char *k;
        json_t *val;
        size_t i = 0;

        if (!json_is_object(v))
                return fail(ps, -EINVAL, "must be an object");
        size_t n = json_object_size(v);
        if (n > OCI_IMAGE_MANIFESTS_MAX)
                return fail(ps, -E2BIG, "too many entries (%zu, at most %u)", n, OCI_IMAGE_MANIFESTS_MAX);
        _cleanup_strv_free_ char **a = calloc(n + 1, sizeof(char *));
        if (!a)
                return oom(ps);
        json_object_foreach ((json_t *) v, k, val) {
                if (!json_is_object(val) && !json_is_null(val))
                        return fail(ps, -EINVAL, "%s: must be an object", QUOTE(k));
                if (strlen(k) > OCI_IMAGE_STRING_MAX)
                        return fail(ps, -EINVAL, "key too long");
                a[i] = strdup(k);
                if (!a[i])
                        return oom(ps);
                i++;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static void key_values_free(struct oci_key_value *kv, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

static int string_map(struct parser *ps, const json_t *v, struct oci_key_value **ret, size_t *ret_n)
{
        const char *k;
        json_t *val;
        size_t i = 0;

        if (!json_is_object(v))
                return fail(ps, -EINVAL, "must be an object");
        size_t n = json_object_size(v);
        if (n > OCI_IMAGE_MANIFESTS_MAX)
                return fail(ps, -E2BIG, "too many entries (%zu, at most %u)", n, OCI_IMAGE_MANIFESTS_MAX);
        struct oci_key_value *kv = calloc(n ? n : 1, sizeof(*kv));
        if (!kv)
                return oom(ps);
        json_object_foreach ((json_t *) v, k, val) {
                int r;
                if (strlen(k) > OCI_IMAGE_STRING_MAX)
                        r = fail(ps, -EINVAL, "key too long");
                else if (!(kv[i].key = strdup(k)))
                        r = oom(ps);
                else if (is_identifier(k))
                        r = AT_KEY(ps, k, string_value(ps, val, &kv[i].value));
                else {
                        size_t saved = push(ps, "[%s]", QUOTE(k));
                        r = string_value(ps, val, &kv[i].value);
                        pop(ps, saved);
                }
                i++;
                if (r < 0) {
                        key_values_free(kv, i);
                        return r;
                }
        }
        key_values_free(*ret, *ret_n);
        *ret = kv;
        *ret_n = n;
        return 0;
}

static int opt_string_map(struct parser *ps, const json_t *obj, const char *key, struct oci_key_value **ret,
                          size_t *ret_n)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        return AT_KEY(ps, key, string_map(ps, v, ret, ret_n));
}

/* ---- digests and media types ---- */

static bool is_lower_hex(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Without a path prefix; the caller's parser adds it. */
static int digest_problem(const char *s, char *buf, size_t size)
{
        const char *colon = strchr(s, ':');

        if (!colon || colon == s) {
                snprintf(buf, size, "invalid digest %s: must be \"sha256:\" followed by 64 hex digits", QUOTE(s));
                return -EINVAL;
        }
        if ((size_t) (colon - s) != 6 || strncmp(s, "sha256", 6) != 0) {
                char alg[32];
                size_t n = (size_t) (colon - s) < sizeof(alg) - 1 ? (size_t) (colon - s) : sizeof(alg) - 1;
                memcpy(alg, s, n);
                alg[n] = '\0';
                snprintf(buf, size, "unsupported digest algorithm %s in %s (only sha256 is supported)", QUOTE(alg),
                         QUOTE(s));
                return -EINVAL;
        }
        size_t n = strlen(colon + 1);
        bool hex = true;
        for (size_t i = 0; i < n; i++)
                if (!is_lower_hex(colon[1 + i]))
                        hex = false;
        if (n != 64 || !hex) {
                snprintf(buf, size, "invalid digest %s: sha256 needs 64 lowercase hex digits", QUOTE(s));
                return -EINVAL;
        }
        return 0;
}

int oci_digest_validate(const char *s, struct moat_error **reterr)
{
        char msg[512];

        if (!s)
                return moat_error_setx(reterr, -EINVAL, "missing digest");
        if (digest_problem(s, msg, sizeof(msg)) < 0)
                return moat_error_setx(reterr, -EINVAL, "%s", msg);
        return 0;
}

static int digest_value(struct parser *ps, const json_t *v, char **ret)
{
        char msg[512];
        int r = string_value(ps, v, ret);
        if (r < 0)
                return r;
        if (digest_problem(*ret, msg, sizeof(msg)) < 0)
                return fail(ps, -EINVAL, "%s", msg);
        return 0;
}

/* RFC 6838 restricted names, as the schema's mediaType pattern. */
static bool media_type_part_valid(const char *s, size_t n)
{
        if (n < 1 || n > 127)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!alnum && (i == 0 || !strchr("!#$&^_.+-", c)))
                        return false;
        }
        return true;
}

static bool media_type_valid(const char *s)
{
        const char *slash = strchr(s, '/');
        return slash && media_type_part_valid(s, (size_t) (slash - s)) &&
               media_type_part_valid(slash + 1, strlen(slash + 1));
}

static int media_type_value(struct parser *ps, const json_t *v, char **ret)
{
        int r = string_value(ps, v, ret);
        if (r < 0)
                return r;
        if (!media_type_valid(*ret))
                return fail(ps, -EINVAL, "invalid media type %s", QUOTE(*ret));
        return 0;
}

static int opt_media_type(struct parser *ps, const json_t *obj, const char *key, char **ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        return AT_KEY(ps, key, media_type_value(ps, v, ret));
}

int oci_layer_media_type(const char *mt, enum oci_compression *ret_compression, bool *ret_nondistributable)
{
        static const struct {
                const char *mt;
                enum oci_compression c;
                bool nd;
        } table[] = {
                { OCI_MT_LAYER_TAR, OCI_COMPRESSION_NONE, false },
                { OCI_MT_LAYER_TAR_GZIP, OCI_COMPRESSION_GZIP, false },
                { OCI_MT_LAYER_TAR_ZSTD, OCI_COMPRESSION_ZSTD, false },
                { OCI_MT_LAYER_ND_TAR, OCI_COMPRESSION_NONE, true },
                { OCI_MT_LAYER_ND_TAR_GZIP, OCI_COMPRESSION_GZIP, true },
                { OCI_MT_LAYER_ND_TAR_ZSTD, OCI_COMPRESSION_ZSTD, true },
                { DOCKER_MT_LAYER_TAR_GZIP, OCI_COMPRESSION_GZIP, false },
                { DOCKER_MT_LAYER_FOREIGN_TAR_GZIP, OCI_COMPRESSION_GZIP, true },
        };

        if (!mt)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(table[i].mt, mt)) {
                        if (ret_compression)
                                *ret_compression = table[i].c;
                        if (ret_nondistributable)
                                *ret_nondistributable = table[i].nd;
                        return 0;
                }
        return -EINVAL;
}

/* ---- descriptors ---- */

static void platform_done(struct oci_platform *p)
{
        free(p->architecture);
        free(p->os);
        free(p->os_version);
        strv_free(p->os_features);
        free(p->variant);
        *p = (struct oci_platform){ 0 };
}

static void descriptor_done(struct oci_descriptor *d)
{
        free(d->media_type);
        free(d->digest);
        strv_free(d->urls);
        key_values_free(d->annotations, d->n_annotations);
        platform_done(&d->platform);
        free(d->artifact_type);
        *d = (struct oci_descriptor){ 0 };
}

static void descriptors_free(struct oci_descriptor *d, size_t n)
{
        for (size_t i = 0; d && i < n; i++)
                descriptor_done(&d[i]);
        free(d);
}

static int parse_platform(struct parser *ps, const json_t *v, struct oci_platform *p)
{
        json_t *f;
        int r;

        if (!json_is_object(v))
                return fail(ps, -EINVAL, "must be an object");
        if ((r = req_string(ps, v, "architecture", &p->architecture)) < 0 ||
            (r = req_string(ps, v, "os", &p->os)) < 0 || (r = opt_string(ps, v, "os.version", &p->os_version)) < 0 ||
            (r = opt_string(ps, v, "variant", &p->variant)) < 0)
                return r;
        if ((f = member(v, "os.features")))
                return AT_KEY(ps, "os.features", string_array(ps, f, 256, &p->os_features, NULL));
        return 0;
}

static int parse_descriptor(struct parser *ps, const json_t *v, struct oci_descriptor *d)
{
        json_t *f;
        int r;

        if (!json_is_object(v))
                return fail(ps, -EINVAL, "must be an object");
        if (!(f = member(v, "mediaType")))
                return AT_KEY(ps, "mediaType", fail(ps, -EINVAL, "missing"));
        if ((r = AT_KEY(ps, "mediaType", media_type_value(ps, f, &d->media_type))) < 0)
                return r;
        if (!(f = member(v, "digest")))
                return AT_KEY(ps, "digest", fail(ps, -EINVAL, "missing"));
        if ((r = AT_KEY(ps, "digest", digest_value(ps, f, &d->digest))) < 0)
                return r;
        if (!(f = member(v, "size")))
                return AT_KEY(ps, "size", fail(ps, -EINVAL, "missing"));
        if (!json_is_integer(f))
                return AT_KEY(ps, "size", fail(ps, -EINVAL, "must be an integer"));
        if (json_integer_value(f) < 0)
                return AT_KEY(ps, "size",
                              fail(ps, -EINVAL, "must not be negative, got %lld", (long long) json_integer_value(f)));
        d->size = json_integer_value(f);
        if ((f = member(v, "urls")) && (r = AT_KEY(ps, "urls", string_array(ps, f, 256, &d->urls, NULL))) < 0)
                return r;
        if ((r = opt_string_map(ps, v, "annotations", &d->annotations, &d->n_annotations)) < 0)
                return r;
        if ((r = opt_media_type(ps, v, "artifactType", &d->artifact_type)) < 0)
                return r;
        if ((f = member(v, "platform"))) {
                r = AT_KEY(ps, "platform", parse_platform(ps, f, &d->platform));
                if (r < 0)
                        return r;
                d->has_platform = true;
        }
        if ((f = member(v, "data")) && !json_is_string(f))
                return AT_KEY(ps, "data", fail(ps, -EINVAL, "must be a string"));
        return 0;
}

static int parse_descriptor_array(struct parser *ps, const json_t *v, size_t max, struct oci_descriptor **ret,
                                  size_t *ret_n)
{
        if (!json_is_array(v))
                return fail(ps, -EINVAL, "must be an array");
        size_t n = json_array_size(v);
        if (n > max)
                return fail(ps, -E2BIG, "too many entries (%zu, at most %zu)", n, max);
        struct oci_descriptor *a = calloc(n ? n : 1, sizeof(*a));
        if (!a)
                return oom(ps);
        for (size_t i = 0; i < n; i++) {
                int r = AT_INDEX(ps, i, parse_descriptor(ps, json_array_get(v, i), &a[i]));
                if (r < 0) {
                        descriptors_free(a, n);
                        return r;
                }
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

static int opt_subject(struct parser *ps, const json_t *obj, struct oci_descriptor **ret)
{
        json_t *v = member(obj, "subject");
        if (!v)
                return 0;
        struct oci_descriptor *d = calloc(1, sizeof(*d));
        if (!d)
                return oom(ps);
        *ret = d;
        return AT_KEY(ps, "subject", parse_descriptor(ps, v, d));
}

static int schema_version(struct parser *ps, const json_t *doc)
{
        json_t *v = member(doc, "schemaVersion");
        if (!v)
                return AT_KEY(ps, "schemaVersion", fail(ps, -EINVAL, "missing"));
        if (!json_is_integer(v))
                return AT_KEY(ps, "schemaVersion", fail(ps, -EINVAL, "must be an integer"));
        if (json_integer_value(v) != 2)
                return AT_KEY(ps, "schemaVersion",
                              fail(ps, json_integer_value(v) == 1 ? -EPROTONOSUPPORT : -EINVAL,
                                   "must be 2, got %lld", (long long) json_integer_value(v)));
        return 0;
}

/* ---- manifest and index ---- */

static bool is_image_config_type(const char *mt)
{
        return streq(mt, OCI_MT_CONFIG) || streq(mt, DOCKER_MT_CONFIG);
}

static int parse_manifest(struct parser *ps, const json_t *doc, bool docker, struct oci_manifest *m)
{
        json_t *v;
        int r;

        m->docker = docker;
        if ((r = schema_version(ps, doc)) < 0)
                return r;
        if ((r = opt_media_type(ps, doc, "artifactType", &m->artifact_type)) < 0)
                return r;
        if (!(v = member(doc, "config")))
                return AT_KEY(ps, "config", fail(ps, -EINVAL, "missing"));
        if ((r = AT_KEY(ps, "config", parse_descriptor(ps, v, &m->config))) < 0)
                return r;
        m->artifact = m->artifact_type || !is_image_config_type(m->config.media_type);
        if (!(v = member(doc, "layers")))
                return AT_KEY(ps, "layers", fail(ps, -EINVAL, "missing"));
        if ((r = AT_KEY(ps, "layers",
                        parse_descriptor_array(ps, v, OCI_IMAGE_LAYERS_MAX, &m->layers, &m->n_layers))) < 0)
                return r;
        if (m->n_layers == 0 && !m->artifact)
                return AT_KEY(ps, "layers", fail(ps, -EINVAL, "must have at least one layer"));
        if (!m->artifact)
                for (size_t i = 0; i < m->n_layers; i++)
                        if (oci_layer_media_type(m->layers[i].media_type, NULL, NULL) < 0) {
                                size_t saved = push(ps, "layers[%zu].mediaType", i);
                                r = fail(ps, -EINVAL, "unknown layer media type %s",
                                         QUOTE(m->layers[i].media_type));
                                pop(ps, saved);
                                return r;
                        }
        if ((r = opt_subject(ps, doc, &m->subject)) < 0)
                return r;
        return opt_string_map(ps, doc, "annotations", &m->annotations, &m->n_annotations);
}

static int parse_index(struct parser *ps, const json_t *doc, bool docker, struct oci_index *x)
{
        json_t *v;
        int r;

        x->docker = docker;
        if ((r = schema_version(ps, doc)) < 0)
                return r;
        if ((r = opt_media_type(ps, doc, "artifactType", &x->artifact_type)) < 0)
                return r;
        if (!(v = member(doc, "manifests")))
                return AT_KEY(ps, "manifests", fail(ps, -EINVAL, "missing"));
        if ((r = AT_KEY(ps, "manifests",
                        parse_descriptor_array(ps, v, OCI_IMAGE_MANIFESTS_MAX, &x->manifests, &x->n_manifests))) < 0)
                return r;
        if ((r = opt_subject(ps, doc, &x->subject)) < 0)
                return r;
        return opt_string_map(ps, doc, "annotations", &x->annotations, &x->n_annotations);
}

/* ---- image config ---- */

static int parse_exec_config(struct parser *ps, const json_t *v, struct oci_image_exec_config *c)
{
        json_t *f;
        int r;

        if (!json_is_object(v))
                return fail(ps, -EINVAL, "must be an object");
        if ((r = opt_string(ps, v, "User", &c->user)) < 0)
                return r;
        if ((f = member(v, "ExposedPorts")) && (r = AT_KEY(ps, "ExposedPorts", key_set(ps, f, &c->exposed_ports))) < 0)
                return r;
        if ((f = member(v, "Env")) && (r = AT_KEY(ps, "Env", string_array(ps, f, 65536, &c->env, NULL))) < 0)
                return r;
        if ((f = member(v, "Entrypoint"))) {
                if ((r = AT_KEY(ps, "Entrypoint", string_array(ps, f, 65536, &c->entrypoint, NULL))) < 0)
                        return r;
                c->has_entrypoint = true;
        }
        if ((f = member(v, "Cmd"))) {
                if ((r = AT_KEY(ps, "Cmd", string_array(ps, f, 65536, &c->cmd, NULL))) < 0)
                        return r;
                c->has_cmd = true;
        }
        if ((f = member(v, "Volumes")) && (r = AT_KEY(ps, "Volumes", key_set(ps, f, &c->volumes))) < 0)
                return r;
        if ((r = opt_string(ps, v, "WorkingDir", &c->working_dir)) < 0)
                return r;
        if ((r = opt_string_map(ps, v, "Labels", &c->labels, &c->n_labels)) < 0)
                return r;
        if ((r = opt_string(ps, v, "StopSignal", &c->stop_signal)) < 0)
                return r;
        if ((r = bool_value(ps, v, "ArgsEscaped", &c->args_escaped)) < 0)
                return r;
        if ((f = member(v, "Healthcheck"))) {
                if (!json_is_object(f))
                        return AT_KEY(ps, "Healthcheck", fail(ps, -EINVAL, "must be an object"));
                c->healthcheck = f;
        }
        return 0;
}

static int parse_history(struct parser *ps, const json_t *v, struct oci_history *h)
{
        int r;

        if (!json_is_object(v))
                return fail(ps, -EINVAL, "must be an object");
        if ((r = opt_string(ps, v, "created", &h->created)) < 0 ||
            (r = opt_string(ps, v, "created_by", &h->created_by)) < 0 ||
            (r = opt_string(ps, v, "author", &h->author)) < 0 || (r = opt_string(ps, v, "comment", &h->comment)) < 0)
                return r;
        return bool_value(ps, v, "empty_layer", &h->empty_layer);
}

static int parse_rootfs(struct parser *ps, const json_t *v, struct oci_image_config *c)
{
        _cleanup_free_ char *type = NULL;
        json_t *ids;
        int r;

        if (!json_is_object(v))
                return fail(ps, -EINVAL, "must be an object");
        if ((r = req_string(ps, v, "type", &type)) < 0)
                return r;
        if (!streq(type, "layers"))
                return AT_KEY(ps, "type", fail(ps, -EINVAL, "must be \"layers\", got %s", QUOTE(type)));
        if (!(ids = member(v, "diff_ids")))
                return AT_KEY(ps, "diff_ids", fail(ps, -EINVAL, "missing"));
        if ((r = AT_KEY(ps, "diff_ids", string_array(ps, ids, OCI_IMAGE_LAYERS_MAX, &c->diff_ids, &c->n_diff_ids))) <
            0)
                return r;
        for (size_t i = 0; i < c->n_diff_ids; i++) {
                char msg[512];
                if (digest_problem(c->diff_ids[i], msg, sizeof(msg)) < 0) {
                        size_t saved = push(ps, ".diff_ids[%zu]", i);
                        r = fail(ps, -EINVAL, "%s", msg);
                        pop(ps, saved);
                        return r;
                }
        }
        return 0;
}

static int parse_image_config(struct parser *ps, const json_t *doc, struct oci_image_config *c)
{
        json_t *v;
        int r;

        if ((r = req_string(ps, doc, "architecture", &c->architecture)) < 0 ||
            (r = req_string(ps, doc, "os", &c->os)) < 0 || (r = opt_string(ps, doc, "os.version", &c->os_version)) < 0 ||
            (r = opt_string(ps, doc, "variant", &c->variant)) < 0 ||
            (r = opt_string(ps, doc, "created", &c->created)) < 0 || (r = opt_string(ps, doc, "author", &c->author)) < 0)
                return r;
        if ((v = member(doc, "os.features")) &&
            (r = AT_KEY(ps, "os.features", string_array(ps, v, 256, &c->os_features, NULL))) < 0)
                return r;
        if ((v = member(doc, "config"))) {
                if ((r = AT_KEY(ps, "config", parse_exec_config(ps, v, &c->config))) < 0)
                        return r;
                c->has_config = true;
        }
        if (!(v = member(doc, "rootfs")))
                return AT_KEY(ps, "rootfs", fail(ps, -EINVAL, "missing"));
        if ((r = AT_KEY(ps, "rootfs", parse_rootfs(ps, v, c))) < 0)
                return r;
        if ((v = member(doc, "history"))) {
                if (!json_is_array(v))
                        return AT_KEY(ps, "history", fail(ps, -EINVAL, "must be an array"));
                size_t n = json_array_size(v);
                if (n > 4 * OCI_IMAGE_LAYERS_MAX)
                        return AT_KEY(ps, "history", fail(ps, -E2BIG, "too many entries (%zu, at most %u)", n,
                                                          4 * OCI_IMAGE_LAYERS_MAX));
                c->history = calloc(n ? n : 1, sizeof(*c->history));
                if (!c->history)
                        return oom(ps);
                c->n_history = n;
                for (size_t i = 0; i < n; i++) {
                        size_t saved = push(ps, "history[%zu]", i);
                        r = parse_history(ps, json_array_get(v, i), &c->history[i]);
                        pop(ps, saved);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- the entry point ---- */

static const struct {
        const char *mt;
        enum oci_image_doc_kind kind;
        bool docker;
} doc_types[] = {
        { OCI_MT_MANIFEST, OCI_DOC_MANIFEST, false },
        { DOCKER_MT_MANIFEST, OCI_DOC_MANIFEST, true },
        { OCI_MT_INDEX, OCI_DOC_INDEX, false },
        { DOCKER_MT_MANIFEST_LIST, OCI_DOC_INDEX, true },
        { OCI_MT_CONFIG, OCI_DOC_CONFIG, false },
        { DOCKER_MT_CONFIG, OCI_DOC_CONFIG, true },
};

static int doc_type(const char *mt, enum oci_image_doc_kind *kind, bool *docker)
{
        for (size_t i = 0; i < ELEMENTSOF(doc_types); i++)
                if (streq(doc_types[i].mt, mt)) {
                        *kind = doc_types[i].kind;
                        *docker = doc_types[i].docker;
                        return 0;
                }
        return -EINVAL;
}

static bool is_schema1(const char *mt)
{
        return streq(mt, "application/vnd.docker.distribution.manifest.v1+json") ||
               streq(mt, "application/vnd.docker.distribution.manifest.v1+prettyjws");
}

static int detect(struct parser *ps, const json_t *doc, const char *hint, char **ret_mt)
{
        _cleanup_free_ char *own = NULL;
        int r;

        if ((r = opt_media_type(ps, doc, "mediaType", &own)) < 0)
                return r;
        if (own && hint && !streq(own, hint))
                return AT_KEY(ps, "mediaType", fail(ps, -EINVAL, "is %s but the document was referred to as %s",
                                                    QUOTE(own), QUOTE(hint)));
        const char *mt = own ? own : hint;
        if (!mt) {
                /* No type anywhere: an OCI document, by its shape. */
                if (member(doc, "manifests"))
                        mt = OCI_MT_INDEX;
                else if (member(doc, "layers") || (member(doc, "config") && member(doc, "schemaVersion")))
                        mt = OCI_MT_MANIFEST;
                else if (member(doc, "rootfs"))
                        mt = OCI_MT_CONFIG;
                else if (member(doc, "fsLayers") || member(doc, "schemaVersion"))
                        mt = OCI_MT_MANIFEST;
                else
                        return fail(ps, -EINVAL, "unknown document: no mediaType, manifests, layers or rootfs");
        }
        if (is_schema1(mt))
                return fail(ps, -EPROTONOSUPPORT, "Docker schema 1 manifests (%s) are not supported", QUOTE(mt));
        if (own && doc_type(own, &(enum oci_image_doc_kind){ 0 }, &(bool){ false }) < 0)
                return AT_KEY(ps, "mediaType", fail(ps, -EPROTONOSUPPORT, "unsupported media type %s", QUOTE(own)));
        if (!own && doc_type(mt, &(enum oci_image_doc_kind){ 0 }, &(bool){ false }) < 0)
                return fail(ps, -EPROTONOSUPPORT, "unsupported media type %s", QUOTE(mt));
        *ret_mt = strdup(mt);
        if (!*ret_mt)
                return oom(ps);
        return 0;
}

int oci_image_doc_parse(const char *buf, size_t len, const char *media_type, struct oci_image_doc **ret,
                        struct moat_error **reterr)
{
        struct parser ps = { .reterr = reterr };
        json_error_t e;
        bool docker = false;
        int r;

        if (len > OCI_IMAGE_DOC_MAX_SIZE)
                return moat_error_setx(reterr, -EFBIG, "document is too large (%zu bytes, at most %u)", len,
                                       OCI_IMAGE_DOC_MAX_SIZE);
        json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
        if (!doc)
                return moat_error_setx(reterr, -EINVAL, "invalid JSON at line %d, column %d: %s", e.line, e.column,
                                       e.text);
        struct oci_image_doc *d = calloc(1, sizeof(*d));
        if (!d) {
                json_decref(doc);
                return moat_error_setx(reterr, -ENOMEM, "out of memory");
        }
        d->json = doc;
        if (!json_is_object(doc))
                r = fail(&ps, -EINVAL, "the top level must be a JSON object");
        else
                r = detect(&ps, doc, media_type, &d->media_type);
        if (r >= 0) {
                r = doc_type(d->media_type, &d->kind, &docker);
                if (r < 0) /* detect() checked it */
                        r = fail(&ps, -EINVAL, "unsupported media type");
        }
        if (r >= 0)
                switch (d->kind) {
                case OCI_DOC_MANIFEST:
                        r = parse_manifest(&ps, doc, docker, &d->manifest);
                        break;
                case OCI_DOC_INDEX:
                        r = parse_index(&ps, doc, docker, &d->index);
                        break;
                case OCI_DOC_CONFIG:
                        r = parse_image_config(&ps, doc, &d->config);
                        break;
                }
        if (r < 0) {
                oci_image_doc_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

const struct oci_manifest *oci_image_doc_manifest(const struct oci_image_doc *d)
{
        return d && d->kind == OCI_DOC_MANIFEST ? &d->manifest : NULL;
}

const struct oci_index *oci_image_doc_index(const struct oci_image_doc *d)
{
        return d && d->kind == OCI_DOC_INDEX ? &d->index : NULL;
}

const struct oci_image_config *oci_image_doc_config(const struct oci_image_doc *d)
{
        return d && d->kind == OCI_DOC_CONFIG ? &d->config : NULL;
}

void oci_image_doc_free(struct oci_image_doc *d)
{
        if (!d)
                return;
        struct oci_manifest *m = &d->manifest;
        descriptor_done(&m->config);
        descriptors_free(m->layers, m->n_layers);
        if (m->subject)
                descriptor_done(m->subject);
        free(m->subject);
        free(m->artifact_type);
        key_values_free(m->annotations, m->n_annotations);

        struct oci_index *x = &d->index;
        descriptors_free(x->manifests, x->n_manifests);
        if (x->subject)
                descriptor_done(x->subject);
        free(x->subject);
        free(x->artifact_type);
        key_values_free(x->annotations, x->n_annotations);

        struct oci_image_config *c = &d->config;
        free(c->architecture);
        free(c->os);
        free(c->os_version);
        strv_free(c->os_features);
        free(c->variant);
        free(c->created);
        free(c->author);
        free(c->config.user);
        strv_free(c->config.exposed_ports);
        strv_free(c->config.env);
        strv_free(c->config.entrypoint);
        strv_free(c->config.cmd);
        strv_free(c->config.volumes);
        free(c->config.working_dir);
        key_values_free(c->config.labels, c->config.n_labels);
        free(c->config.stop_signal);
        strv_free(c->diff_ids);
        for (size_t i = 0; c->history && i < c->n_history; i++) {
                free(c->history[i].created);
                free(c->history[i].created_by);
                free(c->history[i].author);
                free(c->history[i].comment);
        }
        free(c->history);

        free(d->media_type);
        json_decref(d->json);
        free(d);
}

const char *oci_key_value_find(const struct oci_key_value *kv, size_t n, const char *key)
{
        for (size_t i = 0; kv && i < n; i++)
                if (streq(kv[i].key, key))
                        return kv[i].value;
        return NULL;
}

/* ---- platform selection ---- */

/* Normalize like containerd's platforms.Normalize: Go names, default
 * variants (arm64 → v8, arm → v7). */
static void normalize_platform(const char *arch, const char *variant, const char **ret_arch, const char **ret_variant)
{
        const char *a = arch, *v = strempty(variant) ? NULL : variant;

        if (streq(a, "x86_64") || streq(a, "x86-64"))
                a = "amd64";
        else if (streq(a, "i386") || streq(a, "i686"))
                a = "386";
        else if (streq(a, "aarch64"))
                a = "arm64";
        else if (streq(a, "armhf")) {
                a = "arm";
                v = v ? v : "v7";
        } else if (streq(a, "armel")) {
                a = "arm";
                v = v ? v : "v6";
        }
        if (streq(a, "arm64")) {
                if (!v || streq(v, "8"))
                        v = "v8";
        } else if (streq(a, "arm")) {
                if (!v || streq(v, "7"))
                        v = "v7";
                else if (streq(v, "5"))
                        v = "v5";
                else if (streq(v, "6"))
                        v = "v6";
                else if (streq(v, "8"))
                        v = "v8";
        } else if (streq(a, "amd64") && v && streq(v, "v1"))
                v = NULL; /* amd64/v1 is plain amd64 */
        *ret_arch = a;
        *ret_variant = v;
}

static int arm_level(const char *v)
{
        if (v && v[0] == 'v' && v[1] >= '5' && v[1] <= '8' && !v[2])
                return v[1] - '0';
        return -1;
}

static int amd64_level(const char *v)
{
        if (!v)
                return 1;
        if (v[0] == 'v' && v[1] >= '1' && v[1] <= '4' && !v[2])
                return v[1] - '0';
        return -1;
}

/* Rank of a candidate for the wanted platform: 0 is an exact match, higher
 * is worse, -1 means it cannot run. */
static int platform_rank(const char *want_arch, const char *want_variant, const struct oci_platform *p)
{
        const char *arch, *variant;

        normalize_platform(p->architecture, p->variant, &arch, &variant);
        bool same_variant = (!want_variant && !variant) || (want_variant && variant && streq(want_variant, variant));
        if (streq(want_arch, arch) && same_variant)
                return 0;
        if (streq(want_arch, "arm64") && streq(arch, "arm")) {
                int have = arm_level(variant);
                return have >= 5 ? 100 + (8 - have) : -1;
        }
        if (streq(want_arch, "arm") && streq(arch, "arm")) {
                int want = arm_level(want_variant), have = arm_level(variant);
                return want >= 5 && have >= 5 && have < want ? 10 + (want - have) : -1;
        }
        if (streq(want_arch, "amd64") && streq(arch, "amd64")) {
                int want = amd64_level(want_variant), have = amd64_level(variant);
                return want >= 1 && have >= 1 && have < want ? 10 + (want - have) : -1;
        }
        return -1;
}

int oci_index_select(const struct oci_index *index, const char *os, const char *arch, const char *variant,
                     const struct oci_descriptor **ret, struct moat_error **reterr)
{
        const struct oci_descriptor *best = NULL;
        const char *want_arch, *want_variant;
        int best_rank = -1;

        if (strempty(os))
                os = "linux";
        if (strempty(arch))
                arch = "amd64";
        normalize_platform(arch, variant, &want_arch, &want_variant);

        for (size_t i = 0; i < index->n_manifests; i++) {
                const struct oci_descriptor *d = &index->manifests[i];
                if (!d->has_platform || !streq(d->platform.os, os))
                        continue;
                int rank = platform_rank(want_arch, want_variant, &d->platform);
                if (rank >= 0 && (!best || rank < best_rank)) {
                        best = d;
                        best_rank = rank;
                }
        }
        if (best) {
                *ret = best;
                return 0;
        }

        /* List what there is, bounded. */
        char list[1024] = "";
        size_t o = 0, shown = 0;
        for (size_t i = 0; i < index->n_manifests && o + 80 < sizeof(list); i++) {
                const struct oci_platform *p = &index->manifests[i].platform;
                if (!index->manifests[i].has_platform)
                        continue;
                char one[256];
                snprintf(one, sizeof(one), "%.64s/%.64s%s%.64s", p->os, p->architecture, p->variant ? "/" : "",
                         p->variant ? p->variant : "");
                o += (size_t) snprintf(list + o, sizeof(list) - o, "%s%s", shown ? ", " : "", one);
                shown++;
        }
        if (o + 80 >= sizeof(list))
                snprintf(list + o, sizeof(list) - o, ", ...");
        return moat_error_setx(reterr, -ENOENT, "no manifest for platform %.64s/%.64s%s%.64s in the index; available: %s",
                               os, want_arch, want_variant ? "/" : "", want_variant ? want_variant : "",
                               shown ? list : "none");
}

/* ---- ChainIDs ---- */

int oci_chain_ids(char *const *diff_ids, size_t n, char ***ret, struct moat_error **reterr)
{
        int r;

        if (n > OCI_IMAGE_LAYERS_MAX)
                return moat_error_setx(reterr, -E2BIG, "too many layers (%zu, at most %u)", n, OCI_IMAGE_LAYERS_MAX);
        _cleanup_strv_free_ char **out = calloc(n + 1, sizeof(char *));
        if (!out)
                return moat_error_setx(reterr, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                r = oci_digest_validate(diff_ids[i], reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "diff_ids[%zu]", i);
                if (i == 0) {
                        out[0] = strdup(diff_ids[0]);
                } else {
                        struct sha256_ctx ctx;
                        uint8_t md[SHA256_DIGEST_SIZE];
                        char *s = malloc(OCI_DIGEST_STRING_SIZE);

                        if (s) {
                                sha256_init(&ctx);
                                sha256_update(&ctx, strlen(out[i - 1]), (const uint8_t *) out[i - 1]);
                                sha256_update(&ctx, 1, (const uint8_t *) " ");
                                sha256_update(&ctx, strlen(diff_ids[i]), (const uint8_t *) diff_ids[i]);
                                sha256_digest(&ctx, sizeof(md), md);
                                memcpy(s, "sha256:", 7);
                                for (size_t j = 0; j < sizeof(md); j++)
                                        snprintf(s + 7 + 2 * j, 3, "%02x", md[j]);
                        }
                        out[i] = s;
                }
                if (!out[i])
                        return moat_error_setx(reterr, -ENOMEM, "out of memory");
        }
        *ret = TAKE_PTR(out);
        return 0;
}
