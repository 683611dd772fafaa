/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The config.json parser: jansson reads the text, then one pass converts
 * the fields moat uses into struct oci_config and checks everything else
 * the schema (runtime-spec 1.0-1.3) types, so that a bad config fails at
 * "create" with the JSON path of the problem instead of half-way through
 * setting up a container. Sections that other modules interpret
 * (linux.resources, linux.seccomp, ...) are checked against small schema
 * tables (struct vschema) and handed on as borrowed json_t.
 *
 * jansson cannot hold integers above INT64_MAX, yet Go producers write
 * uint64 fields up to 2^64-1 (RLIM_INFINITY for rlimits). Such literals are
 * rewritten to reals before parsing and read back by oci_json_uint64().
 */

#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/capability.h>
#include <sys/resource.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "oci/runtime-spec.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define STRING_MAX (1024u * 1024u)
#define ARRAY_MAX (64u * 1024u)
#define MOUNTS_MAX 4096u
#define HOOKS_MAX 1024u
#define DEVICES_MAX 4096u
#define CAPS_MAX 1024u
#define RLIMITS_MAX 1024u
#define ID_MAPPINGS_MAX 340u /* the kernel's limit per uid_map/gid_map */
#define GIDS_MAX 65536u      /* NGROUPS_MAX */

/* ---- names ---- */

static const char *const namespace_names[OCI_NS__MAX] = {
        [OCI_NS_PID] = "pid",
        [OCI_NS_NETWORK] = "network",
        [OCI_NS_MOUNT] = "mount",
        [OCI_NS_IPC] = "ipc",
        [OCI_NS_UTS] = "uts",
        [OCI_NS_USER] = "user",
        [OCI_NS_CGROUP] = "cgroup",
        [OCI_NS_TIME] = "time",
};

static const unsigned long namespace_flags[OCI_NS__MAX] = {
        [OCI_NS_PID] = CLONE_NEWPID,
        [OCI_NS_NETWORK] = CLONE_NEWNET,
        [OCI_NS_MOUNT] = CLONE_NEWNS,
        [OCI_NS_IPC] = CLONE_NEWIPC,
        [OCI_NS_UTS] = CLONE_NEWUTS,
        [OCI_NS_USER] = CLONE_NEWUSER,
        [OCI_NS_CGROUP] = CLONE_NEWCGROUP,
        [OCI_NS_TIME] = CLONE_NEWTIME,
};

const char *oci_namespace_type_to_string(enum oci_namespace_type t)
{
        if ((int) t < 0 || t >= OCI_NS__MAX)
                return NULL;
        return namespace_names[t];
}

enum oci_namespace_type oci_namespace_type_from_string(const char *s)
{
        if (!s)
                return OCI_NS__INVALID;
        for (int t = 0; t < OCI_NS__MAX; t++)
                if (streq(namespace_names[t], s))
                        return (enum oci_namespace_type) t;
        return OCI_NS__INVALID;
}

unsigned long oci_namespace_type_clone_flag(enum oci_namespace_type t)
{
        if ((int) t < 0 || t >= OCI_NS__MAX)
                return 0;
        return namespace_flags[t];
}

static const char *const hook_names[OCI_HOOK__MAX] = {
        [OCI_HOOK_PRESTART] = "prestart",
        [OCI_HOOK_CREATE_RUNTIME] = "createRuntime",
        [OCI_HOOK_CREATE_CONTAINER] = "createContainer",
        [OCI_HOOK_START_CONTAINER] = "startContainer",
        [OCI_HOOK_POSTSTART] = "poststart",
        [OCI_HOOK_POSTSTOP] = "poststop",
};

const char *oci_hook_kind_to_string(enum oci_hook_kind k)
{
        if ((int) k < 0 || k >= OCI_HOOK__MAX)
                return NULL;
        return hook_names[k];
}

static const struct {
        const char *name;
        int resource;
} rlimit_table[] = {
        { "RLIMIT_CPU", RLIMIT_CPU },
        { "RLIMIT_FSIZE", RLIMIT_FSIZE },
        { "RLIMIT_DATA", RLIMIT_DATA },
        { "RLIMIT_STACK", RLIMIT_STACK },
        { "RLIMIT_CORE", RLIMIT_CORE },
        { "RLIMIT_RSS", RLIMIT_RSS },
        { "RLIMIT_NPROC", RLIMIT_NPROC },
        { "RLIMIT_NOFILE", RLIMIT_NOFILE },
        { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
        { "RLIMIT_AS", RLIMIT_AS },
        { "RLIMIT_LOCKS", RLIMIT_LOCKS },
        { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
        { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
        { "RLIMIT_NICE", RLIMIT_NICE },
        { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
        { "RLIMIT_RTTIME", RLIMIT_RTTIME },
};

static int rlimit_from_name(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(rlimit_table); i++)
                if (streq(rlimit_table[i].name, name))
                        return rlimit_table[i].resource;
        return -1;
}

/* ---- numbers above INT64_MAX ---- */

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* A decimal literal in (INT64_MAX, UINT64_MAX]: jansson refuses those, so
 * they become reals. Larger ones are left for jansson to reject. */
static bool big_uint_literal(const char *p, size_t n)
{
        static const char i64max[] = "9223372036854775807";
        static const char u64max[] = "18446744073709551615";

        if (n < 19 || n > 20 || p[0] == '0')
                return false;
        if (n == 19)
                return memcmp(p, i64max, 19) > 0;
        return memcmp(p, u64max, 20) <= 0;
}

/* Returns 1 and a rewritten copy when the text holds such literals, 0 when
 * it can be parsed as is. */
static int rewrite_big_integers(const char *buf, size_t len, char **ret, size_t *ret_len)
{
        size_t count = 0;

        for (int pass = 0; pass < 2; pass++) {
                _cleanup_free_ char *out = NULL;
                size_t o = 0;
                bool in_string = false;

                if (pass == 1) {
                        if (count == 0)
                                return 0;
                        out = malloc(len + 2 * count + 1);
                        if (!out)
                                return -ENOMEM;
                }
                for (size_t i = 0; i < len;) {
                        char c = buf[i];

                        if (in_string) {
                                size_t step = (c == '\\' && i + 1 < len) ? 2 : 1;
                                if (c == '"')
                                        in_string = false;
                                if (out)
                                        memcpy(out + o, buf + i, step);
                                o += step;
                                i += step;
                                continue;
                        }
                        if (c == '"')
                                in_string = true;
                        if (!is_digit(c) || (i > 0 && (is_digit(buf[i - 1]) || strchr("-+.eE", buf[i - 1])))) {
                                if (out)
                                        out[o] = c;
                                o++;
                                i++;
                                continue;
                        }
                        size_t n = 0;
                        while (i + n < len && is_digit(buf[i + n]))
                                n++;
                        bool big = big_uint_literal(buf + i, n) &&
                                   !(i + n < len && strchr(".eE", buf[i + n]) && buf[i + n] != '\0');
                        if (out)
                                memcpy(out + o, buf + i, n);
                        o += n;
                        i += n;
                        if (big) {
                                if (out)
                                        memcpy(out + o, ".0", 2);
                                o += 2;
                                if (pass == 0)
                                        count++;
                        }
                }
                if (out) {
                        out[o] = '\0';
                        *ret = TAKE_PTR(out);
                        *ret_len = o;
                        return 1;
                }
        }
        return 0;
}

int oci_json_uint64(const json_t *v, uint64_t *ret)
{
        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);
                if (i < 0)
                        return -ERANGE;
                *ret = (uint64_t) i;
                return 0;
        }
        if (json_is_real(v)) {
                double d = json_real_value(v);
                /* Only what rewrite_big_integers() produces: values from
                 * 2^63 to 2^64 (2^64-1 rounds up to 2^64); doubles that
                 * large are all integral. Smaller reals are not integers. */
                if (d > 18446744073709551616.0)
                        return -ERANGE;
                if (d < 9223372036854775808.0)
                        return -EINVAL;
                *ret = d >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t) d;
                return 0;
        }
        return -EINVAL;
}

/* ---- the JSON path of the value being looked at, and errors ---- */

struct jpath {
        char buf[512];
        size_t len;
};

struct parser {
        struct jpath path;
        struct moat_error **reterr;
};

#define QUOTE_MAX 128
struct qbuf {
        char s[QUOTE_MAX * 4 + 8];
};

/* User text for a message: quoted, escaped, shortened. */
static const char *quote(struct qbuf *b, const char *s)
{
        size_t o = 0, n = 0;

        b->s[o++] = '"';
        for (const unsigned char *p = (const unsigned char *) s; *p; p++, n++) {
                if (n >= QUOTE_MAX) {
                        memcpy(b->s + o, "...", 3);
                        o += 3;
                        break;
                }
                if (*p == '"' || *p == '\\') {
                        b->s[o++] = '\\';
                        b->s[o++] = (char) *p;
                } else if (*p < 0x20 || *p == 0x7f) {
                        o += (size_t) snprintf(b->s + o, sizeof(b->s) - o, "\\x%02x", *p);
                } else
                        b->s[o++] = (char) *p;
        }
        b->s[o++] = '"';
        b->s[o] = '\0';
        return b->s;
}

static bool is_identifier(const char *s)
{
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || is_digit(*s) || *s == '_' || *s == '-'))
                        return false;
        return true;
}

static size_t jp_push_key(struct jpath *p, const char *key)
{
        size_t saved = p->len;

        if (is_identifier(key))
                snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "%s%s", p->len > 0 ? "." : "", key);
        else {
                struct qbuf qb;
                snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "[%s]", quote(&qb, key));
        }
        p->len += strlen(p->buf + p->len);
        return saved;
}

static size_t jp_push_index(struct jpath *p, size_t i)
{
        size_t saved = p->len;

        snprintf(p->buf + p->len, sizeof(p->buf) - p->len, "[%zu]", i);
        p->len += strlen(p->buf + p->len);
        return saved;
}

static void jp_pop(struct jpath *p, size_t saved)
{
        p->len = saved;
        p->buf[saved] = '\0';
}

/* Evaluate expr with the path extended by a key or an index. */
#define AT_KEY(ps, key, expr)                                       \
        ({                                                          \
                size_t _saved = jp_push_key(&(ps)->path, (key));    \
                int _r = (expr);                                    \
                jp_pop(&(ps)->path, _saved);                        \
                _r;                                                 \
        })
#define AT_INDEX(ps, i, expr)                                       \
        ({                                                          \
                size_t _saved = jp_push_index(&(ps)->path, (i));    \
                int _r = (expr);                                    \
                jp_pop(&(ps)->path, _saved);                        \
                _r;                                                 \
        })

/* "path: message", -EINVAL. */
MOAT_PRINTF(2, 3) static int fail(struct parser *ps, const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg)
                return moat_error_setx(ps->reterr, -ENOMEM, "out of memory");
        if (ps->path.len == 0)
                return moat_error_setx(ps->reterr, -EINVAL, "%s", msg);
        return moat_error_setx(ps->reterr, -EINVAL, "%s: %s", ps->path.buf, msg);
}

static int oom(struct parser *ps)
{
        return moat_error_setx(ps->reterr, -ENOMEM, "out of memory");
}

/* ---- typed values at the current path ---- */

/* A member, with JSON null read as absent (Go producers write null for
 * unset pointers). */
static json_t *member(const json_t *obj, const char *key)
{
        json_t *v = json_object_get(obj, key);
        return json_is_null(v) ? NULL : v;
}

static int check_string(struct parser *ps, const json_t *v)
{
        if (!json_is_string(v))
                return fail(ps, "must be a string");
        if (json_string_length(v) > STRING_MAX)
                return fail(ps, "too long (%zu bytes, at most %u)", json_string_length(v), STRING_MAX);
        return 0;
}

static int string_value(struct parser *ps, const json_t *v, char **ret)
{
        int r = check_string(ps, v);
        if (r < 0)
                return r;
        char *s = strdup(json_string_value(v));
        if (!s)
                return oom(ps);
        free(*ret);
        *ret = s;
        return 0;
}

static int int_value(struct parser *ps, const json_t *v, int64_t min, int64_t max, int64_t *ret)
{
        if (!json_is_integer(v)) {
                uint64_t u;
                if (json_is_real(v) && oci_json_uint64(v, &u) == 0)
                        return fail(ps, "must be between %" PRId64 " and %" PRId64 ", got %" PRIu64, min, max, u);
                return fail(ps, "must be an integer");
        }
        json_int_t i = json_integer_value(v);
        if (i < min || i > max)
                return fail(ps, "must be between %" PRId64 " and %" PRId64 ", got %lld", min, max, (long long) i);
        *ret = i;
        return 0;
}

static int u64_value(struct parser *ps, const json_t *v, uint64_t *ret)
{
        int r = oci_json_uint64(v, ret);
        if (r == -ERANGE && json_is_integer(v))
                return fail(ps, "must not be negative, got %lld", (long long) json_integer_value(v));
        if (r == -ERANGE)
                return fail(ps, "must be at most %" PRIu64, UINT64_MAX);
        if (r < 0)
                return fail(ps, "must be an integer");
        return 0;
}

static int u32_value(struct parser *ps, const json_t *v, uint32_t *ret)
{
        int64_t x = 0;
        int r = int_value(ps, v, 0, UINT32_MAX, &x);
        if (r < 0)
                return r;
        *ret = (uint32_t) x;
        return 0;
}

static int bool_value(struct parser *ps, const json_t *v, bool *ret)
{
        if (!json_is_boolean(v))
                return fail(ps, "must be a boolean");
        *ret = json_is_true(v);
        return 0;
}

static int check_array(struct parser *ps, const json_t *v, size_t max)
{
        if (!json_is_array(v))
                return fail(ps, "must be an array");
        if (json_array_size(v) > max)
                return fail(ps, "too many entries (%zu, at most %zu)", json_array_size(v), max);
        return 0;
}

static int check_object(struct parser *ps, const json_t *v)
{
        if (!json_is_object(v))
                return fail(ps, "must be an object");
        return 0;
}

static int strv_value(struct parser *ps, const json_t *v, size_t max, char ***ret)
{
        int r = check_array(ps, v, max);
        if (r < 0)
                return r;

        size_t n = json_array_size(v);
        _cleanup_strv_free_ char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return oom(ps);
        for (size_t i = 0; i < n; i++) {
                r = AT_INDEX(ps, i, string_value(ps, json_array_get(v, i), &l[i]));
                if (r < 0)
                        return r;
        }
        strv_free(*ret);
        *ret = TAKE_PTR(l);
        return 0;
}

/* Member helpers: absent (or null) leaves *ret alone and returns 0;
 * present returns 1. The req_ forms report "<path>.<key>: required". */

static int req_missing(struct parser *ps, const char *key)
{
        return AT_KEY(ps, key, fail(ps, "required"));
}

static int opt_string(struct parser *ps, const json_t *obj, const char *key, char **ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        int r = AT_KEY(ps, key, string_value(ps, v, ret));
        return r < 0 ? r : 1;
}

static int req_string(struct parser *ps, const json_t *obj, const char *key, char **ret)
{
        int r = opt_string(ps, obj, key, ret);
        return r == 0 ? req_missing(ps, key) : r;
}

static int opt_bool(struct parser *ps, const json_t *obj, const char *key, bool *ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        int r = AT_KEY(ps, key, bool_value(ps, v, ret));
        return r < 0 ? r : 1;
}

static int opt_int(struct parser *ps, const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        int r = AT_KEY(ps, key, int_value(ps, v, min, max, ret));
        return r < 0 ? r : 1;
}

static int opt_u32(struct parser *ps, const json_t *obj, const char *key, uint32_t *ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        int r = AT_KEY(ps, key, u32_value(ps, v, ret));
        return r < 0 ? r : 1;
}

static int req_u32(struct parser *ps, const json_t *obj, const char *key, uint32_t *ret)
{
        int r = opt_u32(ps, obj, key, ret);
        return r == 0 ? req_missing(ps, key) : r;
}

static int req_u64(struct parser *ps, const json_t *obj, const char *key, uint64_t *ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return req_missing(ps, key);
        return AT_KEY(ps, key, u64_value(ps, v, ret));
}

static int opt_strv(struct parser *ps, const json_t *obj, const char *key, size_t max, char ***ret)
{
        json_t *v = member(obj, key);
        if (!v)
                return 0;
        int r = AT_KEY(ps, key, strv_value(ps, v, max, ret));
        return r < 0 ? r : 1;
}

/* Arrays and objects are returned borrowed, NULL when absent. */
static int opt_array(struct parser *ps, const json_t *obj, const char *key, size_t max, json_t **ret)
{
        json_t *v = member(obj, key);
        *ret = NULL;
        if (!v)
                return 0;
        int r = AT_KEY(ps, key, check_array(ps, v, max));
        if (r < 0)
                return r;
        *ret = v;
        return 1;
}

static int opt_object(struct parser *ps, const json_t *obj, const char *key, json_t **ret)
{
        json_t *v = member(obj, key);
        *ret = NULL;
        if (!v)
                return 0;
        int r = AT_KEY(ps, key, check_object(ps, v));
        if (r < 0)
                return r;
        *ret = v;
        return 1;
}

/* ---- schema tables for the sections kept as JSON ---- */

enum vkind {
        VK_BOOL,
        VK_STRING,
        VK_INT32,
        VK_INT64,
        VK_UINT16,
        VK_UINT32,
        VK_UINT64,
        VK_OBJECT, /* fixed members */
        VK_ARRAY,
        VK_MAP,    /* any keys, values of one schema */
};

struct vfield;

struct vschema {
        enum vkind kind;
        const struct vfield *fields;   /* VK_OBJECT */
        const struct vschema *items;   /* VK_ARRAY elements, VK_MAP values */
        const char *const *enums;      /* VK_STRING: allowed values, NULL-terminated */
        bool (*valid)(const char *s);  /* VK_STRING: further check */
        const char *valid_what;        /* what valid() wants, for the message */
        bool non_empty;                /* VK_ARRAY */
};

struct vfield {
        const char *key;
        const struct vschema *schema;
        bool required;
};

#define REQ(k, s) { k, s, true }
#define OPT(k, s) { k, s, false }
#define END { NULL, NULL, false }

static int validate(struct parser *ps, const json_t *v, const struct vschema *s);

static int validate_enum(struct parser *ps, const char *s, const char *const *enums)
{
        char allowed[1024];
        size_t o = 0;
        struct qbuf qb;

        for (const char *const *e = enums; *e; e++)
                if (streq(*e, s))
                        return 0;
        allowed[0] = '\0';
        for (const char *const *e = enums; *e && o < sizeof(allowed); e++)
                o += (size_t) snprintf(allowed + o, sizeof(allowed) - o, "%s%s", o > 0 ? ", " : "", *e);
        return fail(ps, "must be one of %s, got %s", allowed, quote(&qb, s));
}

static int validate_object(struct parser *ps, const json_t *v, const struct vfield *fields)
{
        int r = check_object(ps, v);
        if (r < 0)
                return r;
        for (const struct vfield *f = fields; f->key; f++) {
                json_t *m = member(v, f->key);
                if (!m) {
                        if (f->required)
                                return req_missing(ps, f->key);
                        continue;
                }
                r = AT_KEY(ps, f->key, validate(ps, m, f->schema));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int validate(struct parser *ps, const json_t *v, const struct vschema *s)
{
        int64_t i;
        uint64_t u;
        int r;

        switch (s->kind) {
        case VK_BOOL:
                if (!json_is_boolean(v))
                        return fail(ps, "must be a boolean");
                return 0;
        case VK_STRING: {
                struct qbuf qb;
                r = check_string(ps, v);
                if (r < 0)
                        return r;
                if (s->enums) {
                        r = validate_enum(ps, json_string_value(v), s->enums);
                        if (r < 0)
                                return r;
                }
                if (s->valid && !s->valid(json_string_value(v)))
                        return fail(ps, "must be %s, got %s", s->valid_what, quote(&qb, json_string_value(v)));
                return 0;
        }
        case VK_INT32:
                return int_value(ps, v, INT32_MIN, INT32_MAX, &i);
        case VK_INT64:
                return int_value(ps, v, INT64_MIN, INT64_MAX, &i);
        case VK_UINT16:
                return int_value(ps, v, 0, UINT16_MAX, &i);
        case VK_UINT32:
                return int_value(ps, v, 0, UINT32_MAX, &i);
        case VK_UINT64:
                return u64_value(ps, v, &u);
        case VK_OBJECT:
                return validate_object(ps, v, s->fields);
        case VK_ARRAY:
                r = check_array(ps, v, ARRAY_MAX);
                if (r < 0)
                        return r;
                if (s->non_empty && json_array_size(v) == 0)
                        return fail(ps, "must not be empty");
                for (size_t k = 0; k < json_array_size(v); k++) {
                        r = AT_INDEX(ps, k, validate(ps, json_array_get(v, k), s->items));
                        if (r < 0)
                                return r;
                }
                return 0;
        case VK_MAP: {
                const char *key;
                json_t *m;

                r = check_object(ps, v);
                if (r < 0)
                        return r;
                json_object_foreach((json_t *) v, key, m) {
                        if (!*key)
                                return fail(ps, "keys must not be empty");
                        r = AT_KEY(ps, key, validate(ps, m, s->items));
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        }
        return fail(ps, "internal error: unknown schema kind");
}

static const struct vschema v_bool = { .kind = VK_BOOL };
static const struct vschema v_string = { .kind = VK_STRING };
static const struct vschema v_int32 = { .kind = VK_INT32 };
static const struct vschema v_int64 = { .kind = VK_INT64 };
static const struct vschema v_uint16 = { .kind = VK_UINT16 };
static const struct vschema v_uint32 = { .kind = VK_UINT32 };
static const struct vschema v_uint64 = { .kind = VK_UINT64 };
static const struct vschema v_strings = { .kind = VK_ARRAY, .items = &v_string };
static const struct vschema v_map_string = { .kind = VK_MAP, .items = &v_string };

/* linux.resources */

static bool valid_page_size(const char *s)
{
        /* ^[1-9][0-9]*[KMG]B$ */
        if (!(*s >= '1' && *s <= '9'))
                return false;
        while (is_digit(*s))
                s++;
        return (s[0] == 'K' || s[0] == 'M' || s[0] == 'G') && s[1] == 'B' && s[2] == '\0';
}

static bool valid_device_access(const char *s)
{
        return strspn(s, "rwm") == strlen(s);
}

static const char *const device_cgroup_types[] = { "a", "b", "c", NULL };
static const struct vschema v_device_cgroup_type = { .kind = VK_STRING, .enums = device_cgroup_types };
static const struct vschema v_device_access = {
        .kind = VK_STRING,
        .valid = valid_device_access,
        .valid_what = "made of the letters r, w and m",
};
static const struct vfield f_device_cgroup[] = {
        REQ("allow", &v_bool),
        OPT("type", &v_device_cgroup_type),
        OPT("major", &v_int64),
        OPT("minor", &v_int64),
        OPT("access", &v_device_access),
        END,
};
static const struct vschema v_device_cgroup = { .kind = VK_OBJECT, .fields = f_device_cgroup };
static const struct vschema v_device_cgroups = { .kind = VK_ARRAY, .items = &v_device_cgroup };

static const struct vfield f_pids[] = { REQ("limit", &v_int64), END };
static const struct vschema v_pids = { .kind = VK_OBJECT, .fields = f_pids };

static const struct vfield f_blkio_throttle[] = {
        REQ("major", &v_int64),
        REQ("minor", &v_int64),
        OPT("rate", &v_uint64),
        END,
};
static const struct vschema v_blkio_throttle = { .kind = VK_OBJECT, .fields = f_blkio_throttle };
static const struct vschema v_blkio_throttles = { .kind = VK_ARRAY, .items = &v_blkio_throttle };
static const struct vfield f_blkio_weight_device[] = {
        REQ("major", &v_int64),
        REQ("minor", &v_int64),
        OPT("weight", &v_uint16),
        OPT("leafWeight", &v_uint16),
        END,
};
static const struct vschema v_blkio_weight_device = { .kind = VK_OBJECT, .fields = f_blkio_weight_device };
static const struct vschema v_blkio_weight_devices = { .kind = VK_ARRAY, .items = &v_blkio_weight_device };
static const struct vfield f_blkio[] = {
        OPT("weight", &v_uint16),
        OPT("leafWeight", &v_uint16),
        OPT("throttleReadBpsDevice", &v_blkio_throttles),
        OPT("throttleWriteBpsDevice", &v_blkio_throttles),
        OPT("throttleReadIOPSDevice", &v_blkio_throttles),
        OPT("throttleWriteIOPSDevice", &v_blkio_throttles),
        OPT("weightDevice", &v_blkio_weight_devices),
        END,
};
static const struct vschema v_blkio = { .kind = VK_OBJECT, .fields = f_blkio };

static const struct vfield f_cpu[] = {
        OPT("cpus", &v_string),
        OPT("mems", &v_string),
        OPT("period", &v_uint64),
        OPT("quota", &v_int64),
        OPT("burst", &v_uint64),
        OPT("realtimePeriod", &v_uint64),
        OPT("realtimeRuntime", &v_int64),
        OPT("shares", &v_uint64),
        OPT("idle", &v_int64),
        END,
};
static const struct vschema v_cpu = { .kind = VK_OBJECT, .fields = f_cpu };

static const struct vschema v_page_size = {
        .kind = VK_STRING,
        .valid = valid_page_size,
        .valid_what = "a page size like \"2MB\"",
};
static const struct vfield f_hugepage_limit[] = {
        REQ("pageSize", &v_page_size),
        REQ("limit", &v_uint64),
        END,
};
static const struct vschema v_hugepage_limit = { .kind = VK_OBJECT, .fields = f_hugepage_limit };
static const struct vschema v_hugepage_limits = { .kind = VK_ARRAY, .items = &v_hugepage_limit };

static const struct vfield f_memory[] = {
        OPT("kernel", &v_int64),
        OPT("kernelTCP", &v_int64),
        OPT("limit", &v_int64),
        OPT("reservation", &v_int64),
        OPT("swap", &v_int64),
        OPT("swappiness", &v_uint64),
        OPT("disableOOMKiller", &v_bool),
        OPT("useHierarchy", &v_bool),
        OPT("checkBeforeUpdate", &v_bool),
        END,
};
static const struct vschema v_memory = { .kind = VK_OBJECT, .fields = f_memory };

static const struct vfield f_net_priority[] = {
        REQ("name", &v_string),
        REQ("priority", &v_uint32),
        END,
};
static const struct vschema v_net_priority = { .kind = VK_OBJECT, .fields = f_net_priority };
static const struct vschema v_net_priorities = { .kind = VK_ARRAY, .items = &v_net_priority };
static const struct vfield f_network[] = {
        OPT("classID", &v_uint32),
        OPT("priorities", &v_net_priorities),
        END,
};
static const struct vschema v_network = { .kind = VK_OBJECT, .fields = f_network };

static const struct vfield f_rdma[] = {
        OPT("hcaHandles", &v_uint32),
        OPT("hcaObjects", &v_uint32),
        END,
};
static const struct vschema v_rdma = { .kind = VK_OBJECT, .fields = f_rdma };
static const struct vschema v_rdma_map = { .kind = VK_MAP, .items = &v_rdma };

static const struct vfield f_resources[] = {
        OPT("unified", &v_map_string),
        OPT("devices", &v_device_cgroups),
        OPT("pids", &v_pids),
        OPT("blockIO", &v_blkio),
        OPT("cpu", &v_cpu),
        OPT("hugepageLimits", &v_hugepage_limits),
        OPT("memory", &v_memory),
        OPT("network", &v_network),
        OPT("rdma", &v_rdma_map),
        END,
};
static const struct vschema v_resources = { .kind = VK_OBJECT, .fields = f_resources };

/* linux.seccomp */

static const char *const seccomp_actions[] = {
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", NULL,
};
static const char *const seccomp_flags[] = {
        "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", NULL,
};
static const char *const seccomp_archs[] = {
        "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
        "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
        "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
        "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", NULL,
};
static const char *const seccomp_operators[] = {
        "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ", NULL,
};
static const struct vschema v_seccomp_action = { .kind = VK_STRING, .enums = seccomp_actions };
static const struct vschema v_seccomp_flag = { .kind = VK_STRING, .enums = seccomp_flags };
static const struct vschema v_seccomp_flags = { .kind = VK_ARRAY, .items = &v_seccomp_flag };
static const struct vschema v_seccomp_arch = { .kind = VK_STRING, .enums = seccomp_archs };
static const struct vschema v_seccomp_archs = { .kind = VK_ARRAY, .items = &v_seccomp_arch };
static const struct vschema v_seccomp_operator = { .kind = VK_STRING, .enums = seccomp_operators };
static const struct vfield f_syscall_arg[] = {
        REQ("index", &v_uint32),
        REQ("value", &v_uint64),
        OPT("valueTwo", &v_uint64),
        REQ("op", &v_seccomp_operator),
        END,
};
static const struct vschema v_syscall_arg = { .kind = VK_OBJECT, .fields = f_syscall_arg };
static const struct vschema v_syscall_args = { .kind = VK_ARRAY, .items = &v_syscall_arg };
static const struct vschema v_syscall_names = { .kind = VK_ARRAY, .items = &v_string, .non_empty = true };
static const struct vfield f_syscall[] = {
        REQ("names", &v_syscall_names),
        REQ("action", &v_seccomp_action),
        OPT("errnoRet", &v_uint32),
        OPT("args", &v_syscall_args),
        END,
};
static const struct vschema v_syscall = { .kind = VK_OBJECT, .fields = f_syscall };
static const struct vschema v_syscalls = { .kind = VK_ARRAY, .items = &v_syscall };
static const struct vfield f_seccomp[] = {
        REQ("defaultAction", &v_seccomp_action),
        OPT("defaultErrnoRet", &v_uint32),
        OPT("flags", &v_seccomp_flags),
        OPT("listenerPath", &v_string),
        OPT("listenerMetadata", &v_string),
        OPT("architectures", &v_seccomp_archs),
        OPT("syscalls", &v_syscalls),
        END,
};
static const struct vschema v_seccomp = { .kind = VK_OBJECT, .fields = f_seccomp };

/* linux.intelRdt, linux.netDevices, linux.memoryPolicy */

static bool valid_mem_bw_schema(const char *s)
{
        return startswith(s, "MB:") && !strchr(s, '\n');
}

static const struct vschema v_mem_bw_schema = {
        .kind = VK_STRING,
        .valid = valid_mem_bw_schema,
        .valid_what = "a line starting with \"MB:\"",
};
static const struct vfield f_intel_rdt[] = {
        OPT("closID", &v_string),
        OPT("schemata", &v_strings),
        OPT("l3CacheSchema", &v_string),
        OPT("memBwSchema", &v_mem_bw_schema),
        OPT("enableMonitoring", &v_bool),
        END,
};
static const struct vschema v_intel_rdt = { .kind = VK_OBJECT, .fields = f_intel_rdt };

static const struct vfield f_net_device[] = { OPT("name", &v_string), END };
static const struct vschema v_net_device = { .kind = VK_OBJECT, .fields = f_net_device };
static const struct vschema v_net_devices = { .kind = VK_MAP, .items = &v_net_device };

static const char *const mpol_modes[] = {
        "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED",
        "MPOL_PREFERRED_MANY", "MPOL_LOCAL", NULL,
};
static const char *const mpol_flags[] = {
        "MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES", NULL,
};
static const struct vschema v_mpol_mode = { .kind = VK_STRING, .enums = mpol_modes };
static const struct vschema v_mpol_flag = { .kind = VK_STRING, .enums = mpol_flags };
static const struct vschema v_mpol_flags = { .kind = VK_ARRAY, .items = &v_mpol_flag };
static const struct vfield f_memory_policy[] = {
        OPT("mode", &v_mpol_mode),
        OPT("nodes", &v_string),
        OPT("flags", &v_mpol_flags),
        END,
};
static const struct vschema v_memory_policy = { .kind = VK_OBJECT, .fields = f_memory_policy };

/* process.scheduler, process.ioPriority, process.execCPUAffinity */

static const char *const sched_policies[] = {
        "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE", "SCHED_DEADLINE", NULL,
};
static const char *const sched_flags[] = {
        "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_KEEP_POLICY",
        "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN", "SCHED_FLAG_UTIL_CLAMP_MAX", NULL,
};
static const struct vschema v_sched_policy = { .kind = VK_STRING, .enums = sched_policies };
static const struct vschema v_sched_flag = { .kind = VK_STRING, .enums = sched_flags };
static const struct vschema v_sched_flags = { .kind = VK_ARRAY, .items = &v_sched_flag };
static const struct vfield f_scheduler[] = {
        REQ("policy", &v_sched_policy),
        OPT("nice", &v_int32),
        OPT("priority", &v_int32),
        OPT("flags", &v_sched_flags),
        OPT("runtime", &v_uint64),
        OPT("deadline", &v_uint64),
        OPT("period", &v_uint64),
        END,
};
static const struct vschema v_scheduler = { .kind = VK_OBJECT, .fields = f_scheduler };

static const char *const ioprio_classes[] = { "IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE", NULL };
static const struct vschema v_ioprio_class = { .kind = VK_STRING, .enums = ioprio_classes };
static const struct vfield f_io_priority[] = {
        REQ("class", &v_ioprio_class),
        OPT("priority", &v_int32),
        END,
};
static const struct vschema v_io_priority = { .kind = VK_OBJECT, .fields = f_io_priority };

static bool valid_cpu_list(const char *s)
{
        return strspn(s, "0123456789, -") == strlen(s);
}

static const struct vschema v_cpu_list = {
        .kind = VK_STRING,
        .valid = valid_cpu_list,
        .valid_what = "a CPU list like \"0-3,7\"",
};
static const struct vfield f_exec_cpu_affinity[] = {
        OPT("initial", &v_cpu_list),
        OPT("final", &v_cpu_list),
        END,
};
static const struct vschema v_exec_cpu_affinity = { .kind = VK_OBJECT, .fields = f_exec_cpu_affinity };

/* Check obj.key against a schema and hand it out borrowed (NULL if absent). */
static int opt_checked(struct parser *ps, const json_t *obj, const char *key, const struct vschema *s, json_t **ret)
{
        json_t *v = member(obj, key);
        *ret = NULL;
        if (!v)
                return 0;
        int r = AT_KEY(ps, key, validate(ps, v, s));
        if (r < 0)
                return r;
        *ret = v;
        return 1;
}

/* ---- typed sections ---- */

static int check_absolute(struct parser *ps, const char *p)
{
        struct qbuf qb;
        if (p[0] != '/')
                return fail(ps, "must be an absolute path, got %s", quote(&qb, p));
        return 0;
}

static int check_env(struct parser *ps, char **env)
{
        struct qbuf qb;

        for (size_t i = 0; env && env[i]; i++)
                if (!strchr(env[i], '=') || env[i][0] == '=')
                        return AT_INDEX(ps, i, fail(ps, "must be of the form KEY=VALUE, got %s", quote(&qb, env[i])));
        return 0;
}

static int parse_id_mapping(struct parser *ps, const json_t *v, struct oci_id_mapping *m)
{
        int r = check_object(ps, v);
        if (r < 0)
                return r;
        r = req_u32(ps, v, "containerID", &m->container_id);
        if (r < 0)
                return r;
        r = req_u32(ps, v, "hostID", &m->host_id);
        if (r < 0)
                return r;
        r = req_u32(ps, v, "size", &m->size);
        if (r < 0)
                return r;
        if (m->size == 0)
                return AT_KEY(ps, "size", fail(ps, "must be > 0"));
        if ((uint64_t) m->container_id + m->size > (UINT64_C(1) << 32))
                return fail(ps, "containerID %" PRIu32 " + size %" PRIu32 " goes beyond 4294967295",
                            m->container_id, m->size);
        if ((uint64_t) m->host_id + m->size > (UINT64_C(1) << 32))
                return fail(ps, "hostID %" PRIu32 " + size %" PRIu32 " goes beyond 4294967295", m->host_id, m->size);
        return 0;
}

static bool ranges_overlap(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
        return (uint64_t) a < (uint64_t) b + blen && (uint64_t) b < (uint64_t) a + alen;
}

static int parse_id_mappings(struct parser *ps, const json_t *obj, const char *key, struct oci_id_mapping **ret,
                             size_t *ret_n)
{
        json_t *a;
        int r = opt_array(ps, obj, key, SIZE_MAX, &a);
        if (r <= 0)
                return r;

        size_t n = json_array_size(a);
        if (n > ID_MAPPINGS_MAX)
                return AT_KEY(ps, key, fail(ps, "too many entries (%zu, the kernel allows %u)", n, ID_MAPPINGS_MAX));
        if (n == 0)
                return 0;

        _cleanup_free_ struct oci_id_mapping *m = calloc(n, sizeof(*m));
        if (!m)
                return oom(ps);
        size_t saved = jp_push_key(&ps->path, key);
        for (size_t i = 0; i < n; i++) {
                r = AT_INDEX(ps, i, parse_id_mapping(ps, json_array_get(a, i), &m[i]));
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++) {
                        if (ranges_overlap(m[i].container_id, m[i].size, m[j].container_id, m[j].size))
                                return AT_INDEX(ps, i, fail(ps, "container IDs overlap with %s[%zu]", key, j));
                        if (ranges_overlap(m[i].host_id, m[i].size, m[j].host_id, m[j].size))
                                return AT_INDEX(ps, i, fail(ps, "host IDs overlap with %s[%zu]", key, j));
                }
        }
        jp_pop(&ps->path, saved);
        free(*ret);
        *ret = TAKE_PTR(m);
        *ret_n = n;
        return 1;
}

static int parse_user(struct parser *ps, const json_t *o, struct oci_user *u)
{
        json_t *gids;
        int r;

        r = check_object(ps, o);
        if (r < 0)
                return r;
        r = opt_u32(ps, o, "uid", &u->uid);
        if (r < 0)
                return r;
        r = opt_u32(ps, o, "gid", &u->gid);
        if (r < 0)
                return r;
        r = opt_u32(ps, o, "umask", &u->umask);
        if (r < 0)
                return r;
        u->has_umask = r > 0;
        r = opt_string(ps, o, "username", &u->username);
        if (r < 0)
                return r;
        r = opt_array(ps, o, "additionalGids", GIDS_MAX, &gids);
        if (r <= 0)
                return r;
        u->n_additional_gids = json_array_size(gids);
        u->additional_gids = calloc(u->n_additional_gids + 1, sizeof(uint32_t));
        if (!u->additional_gids)
                return oom(ps);
        size_t saved = jp_push_key(&ps->path, "additionalGids");
        for (size_t i = 0; i < u->n_additional_gids; i++) {
                r = AT_INDEX(ps, i, u32_value(ps, json_array_get(gids, i), &u->additional_gids[i]));
                if (r < 0)
                        return r;
        }
        jp_pop(&ps->path, saved);
        return 0;
}

/* "CAP_KILL" -> 5. cap_from_name() also takes numbers, lower case and
 * trailing junk, so the name must be upper case and round-trip. */
static int capability_from_name(const char *name)
{
        cap_value_t v;

        if (!startswith(name, "CAP_") || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(name))
                return -EINVAL;
        if (cap_from_name(name, &v) < 0 || v < 0 || v >= 64)
                return -EINVAL;
        char *back = cap_to_name(v);
        if (!back)
                return -ENOMEM;
        bool same = strcasecmp(back, name) == 0;
        cap_free(back);
        return same ? (int) v : -EINVAL;
}

static int parse_capability_set(struct parser *ps, const json_t *v, uint64_t *ret)
{
        struct qbuf qb;
        uint64_t mask = 0;
        int r = check_array(ps, v, CAPS_MAX);
        if (r < 0)
                return r;

        for (size_t i = 0; i < json_array_size(v); i++) {
                json_t *e = json_array_get(v, i);
                r = AT_INDEX(ps, i, check_string(ps, e));
                if (r < 0)
                        return r;
                const char *name = json_string_value(e);
                int cap = capability_from_name(name);
                if (cap == -ENOMEM)
                        return oom(ps);
                if (cap < 0) {
                        if (!startswith(name, "CAP_"))
                                return AT_INDEX(ps, i, fail(ps, "must start with \"CAP_\", got %s", quote(&qb, name)));
                        return AT_INDEX(ps, i, fail(ps, "unknown capability %s", quote(&qb, name)));
                }
                mask |= UINT64_C(1) << cap;
        }
        *ret = mask;
        return 0;
}

static int parse_capabilities(struct parser *ps, const json_t *o, struct oci_capabilities *c)
{
        static const struct {
                const char *key;
                size_t offset;
        } sets[] = {
                { "bounding", offsetof(struct oci_capabilities, bounding) },
                { "effective", offsetof(struct oci_capabilities, effective) },
                { "inheritable", offsetof(struct oci_capabilities, inheritable) },
                { "permitted", offsetof(struct oci_capabilities, permitted) },
                { "ambient", offsetof(struct oci_capabilities, ambient) },
        };
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
                json_t *v = member(o, sets[i].key);
                if (!v)
                        continue;
                uint64_t *mask = (uint64_t *) ((char *) c + sets[i].offset);
                r = AT_KEY(ps, sets[i].key, parse_capability_set(ps, v, mask));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_rlimit(struct parser *ps, const json_t *o, struct oci_rlimit *rl)
{
        struct qbuf qb;
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        r = req_string(ps, o, "type", &rl->type);
        if (r < 0)
                return r;
        rl->resource = rlimit_from_name(rl->type);
        if (rl->resource < 0)
                return AT_KEY(ps, "type", fail(ps, "unknown rlimit %s", quote(&qb, rl->type)));
        r = req_u64(ps, o, "soft", &rl->soft);
        if (r < 0)
                return r;
        r = req_u64(ps, o, "hard", &rl->hard);
        if (r < 0)
                return r;
        if (rl->soft > rl->hard)
                return fail(ps, "soft limit %" PRIu64 " is above hard limit %" PRIu64, rl->soft, rl->hard);
        return 0;
}

static int parse_rlimits(struct parser *ps, const json_t *a, struct oci_process *p)
{
        struct qbuf qb;
        int r = check_array(ps, a, RLIMITS_MAX);
        if (r < 0)
                return r;

        size_t n = json_array_size(a);
        p->rlimits = calloc(n + 1, sizeof(struct oci_rlimit));
        if (!p->rlimits)
                return oom(ps);
        for (size_t i = 0; i < n; i++) {
                p->n_rlimits = i + 1;
                r = AT_INDEX(ps, i, parse_rlimit(ps, json_array_get(a, i), &p->rlimits[i]));
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (p->rlimits[j].resource == p->rlimits[i].resource)
                                return AT_INDEX(ps, i, fail(ps, "duplicate rlimit %s", quote(&qb, p->rlimits[i].type)));
        }
        return 0;
}

static int parse_console_size(struct parser *ps, const json_t *o, struct oci_process *p)
{
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        r = req_u32(ps, o, "height", &p->console_height);
        if (r < 0)
                return r;
        r = req_u32(ps, o, "width", &p->console_width);
        if (r < 0)
                return r;
        p->has_console_size = true;
        return 0;
}

static int parse_process(struct parser *ps, const json_t *o, struct oci_process *p)
{
        json_t *v;
        int64_t i;
        int r;

        r = check_object(ps, o);
        if (r < 0)
                return r;
        r = opt_bool(ps, o, "terminal", &p->terminal);
        if (r < 0)
                return r;
        r = opt_object(ps, o, "consoleSize", &v);
        if (r > 0)
                r = AT_KEY(ps, "consoleSize", parse_console_size(ps, v, p));
        if (r < 0)
                return r;
        r = opt_object(ps, o, "user", &v);
        if (r > 0)
                r = AT_KEY(ps, "user", parse_user(ps, v, &p->user));
        if (r < 0)
                return r;

        r = opt_strv(ps, o, "args", ARRAY_MAX, &p->args);
        if (r < 0)
                return r;
        if (r == 0)
                return AT_KEY(ps, "args", fail(ps, "required when process is present"));
        if (!p->args[0])
                return AT_KEY(ps, "args", fail(ps, "must not be empty"));
        r = opt_string(ps, o, "commandLine", &p->command_line);
        if (r < 0)
                return r;
        r = opt_strv(ps, o, "env", ARRAY_MAX, &p->env);
        if (r < 0)
                return r;
        r = AT_KEY(ps, "env", check_env(ps, p->env));
        if (r < 0)
                return r;
        r = req_string(ps, o, "cwd", &p->cwd);
        if (r < 0)
                return r;
        r = AT_KEY(ps, "cwd", check_absolute(ps, p->cwd));
        if (r < 0)
                return r;

        r = opt_object(ps, o, "capabilities", &v);
        if (r > 0) {
                p->has_capabilities = true;
                r = AT_KEY(ps, "capabilities", parse_capabilities(ps, v, &p->capabilities));
        }
        if (r < 0)
                return r;
        v = member(o, "rlimits");
        if (v) {
                r = AT_KEY(ps, "rlimits", parse_rlimits(ps, v, p));
                if (r < 0)
                        return r;
        }
        r = opt_bool(ps, o, "noNewPrivileges", &p->no_new_privileges);
        if (r < 0)
                return r;
        r = opt_int(ps, o, "oomScoreAdj", -1000, 1000, &i);
        if (r < 0)
                return r;
        if (r > 0) {
                p->has_oom_score_adj = true;
                p->oom_score_adj = (int) i;
        }
        r = opt_string(ps, o, "apparmorProfile", &p->apparmor_profile);
        if (r < 0)
                return r;
        r = opt_string(ps, o, "selinuxLabel", &p->selinux_label);
        if (r < 0)
                return r;
        r = opt_checked(ps, o, "scheduler", &v_scheduler, &p->scheduler);
        if (r < 0)
                return r;
        r = opt_checked(ps, o, "ioPriority", &v_io_priority, &p->io_priority);
        if (r < 0)
                return r;
        r = opt_checked(ps, o, "execCPUAffinity", &v_exec_cpu_affinity, &p->exec_cpu_affinity);
        if (r < 0)
                return r;
        return 0;
}

static int parse_root(struct parser *ps, const json_t *o, struct oci_root *root)
{
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        r = req_string(ps, o, "path", &root->path);
        if (r < 0)
                return r;
        if (root->path[0] == '\0')
                return AT_KEY(ps, "path", fail(ps, "must not be empty"));
        r = opt_bool(ps, o, "readonly", &root->readonly);
        return r < 0 ? r : 0;
}

/* A ".." component never leads outside the root (targets are resolved
 * inside it), but a destination that needs one is a mistake or an attack:
 * refuse it instead of guessing. */
static bool has_dotdot_component(const char *path)
{
        for (const char *p = path; (p = strstr(p, "..")); p += 2)
                if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
                        return true;
        return false;
}

static int parse_mount(struct parser *ps, const json_t *o, struct oci_mount *m)
{
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        r = req_string(ps, o, "destination", &m->destination);
        if (r < 0)
                return r;
        if (m->destination[0] == '\0')
                return AT_KEY(ps, "destination", fail(ps, "must not be empty"));
        if (has_dotdot_component(m->destination))
                return AT_KEY(ps, "destination",
                              fail(ps, "must not contain \"..\" components, got \"%s\"", m->destination));
        r = opt_string(ps, o, "type", &m->type);
        if (r < 0)
                return r;
        r = opt_string(ps, o, "source", &m->source);
        if (r < 0)
                return r;
        r = opt_strv(ps, o, "options", ARRAY_MAX, &m->options);
        if (r < 0)
                return r;
        r = parse_id_mappings(ps, o, "uidMappings", &m->uid_mappings, &m->n_uid_mappings);
        if (r < 0)
                return r;
        r = parse_id_mappings(ps, o, "gidMappings", &m->gid_mappings, &m->n_gid_mappings);
        return r < 0 ? r : 0;
}

static int parse_mounts(struct parser *ps, const json_t *a, struct oci_config *c)
{
        int r = check_array(ps, a, MOUNTS_MAX);
        if (r < 0)
                return r;
        size_t n = json_array_size(a);
        c->mounts = calloc(n + 1, sizeof(struct oci_mount));
        if (!c->mounts)
                return oom(ps);
        for (size_t i = 0; i < n; i++) {
                c->n_mounts = i + 1;
                r = AT_INDEX(ps, i, parse_mount(ps, json_array_get(a, i), &c->mounts[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_hook(struct parser *ps, const json_t *o, struct oci_hook *h)
{
        int64_t t;
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        r = req_string(ps, o, "path", &h->path);
        if (r < 0)
                return r;
        r = AT_KEY(ps, "path", check_absolute(ps, h->path));
        if (r < 0)
                return r;
        r = opt_strv(ps, o, "args", ARRAY_MAX, &h->args);
        if (r < 0)
                return r;
        r = opt_strv(ps, o, "env", ARRAY_MAX, &h->env);
        if (r < 0)
                return r;
        r = AT_KEY(ps, "env", check_env(ps, h->env));
        if (r < 0)
                return r;
        r = opt_int(ps, o, "timeout", INT64_MIN, INT64_MAX, &t);
        if (r < 0)
                return r;
        if (r > 0) {
                if (t < 1)
                        return AT_KEY(ps, "timeout", fail(ps, "must be >= 1, got %" PRId64, t));
                if (t > INT_MAX)
                        return AT_KEY(ps, "timeout", fail(ps, "must be at most %d, got %" PRId64, INT_MAX, t));
                h->has_timeout = true;
                h->timeout = (int) t;
        }
        return 0;
}

static int parse_hook_list(struct parser *ps, const json_t *a, struct oci_hook_list *l)
{
        int r = check_array(ps, a, HOOKS_MAX);
        if (r < 0)
                return r;
        size_t n = json_array_size(a);
        l->hooks = calloc(n + 1, sizeof(struct oci_hook));
        if (!l->hooks)
                return oom(ps);
        for (size_t i = 0; i < n; i++) {
                l->n_hooks = i + 1;
                r = AT_INDEX(ps, i, parse_hook(ps, json_array_get(a, i), &l->hooks[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_hooks(struct parser *ps, const json_t *o, struct oci_config *c)
{
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        for (int k = 0; k < OCI_HOOK__MAX; k++) {
                json_t *a = member(o, hook_names[k]);
                if (!a)
                        continue;
                r = AT_KEY(ps, hook_names[k], parse_hook_list(ps, a, &c->hooks[k]));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A string-to-string object (annotations, sysctl) into an array. */
static int parse_string_map(struct parser *ps, const json_t *o, struct oci_key_value **ret, size_t *ret_n)
{
        const char *key;
        json_t *v;
        size_t n = 0;

        int r = check_object(ps, o);
        if (r < 0)
                return r;
        if (json_object_size(o) > ARRAY_MAX)
                return fail(ps, "too many entries (%zu, at most %u)", json_object_size(o), ARRAY_MAX);
        *ret = calloc(json_object_size(o) + 1, sizeof(struct oci_key_value));
        if (!*ret)
                return oom(ps);
        json_object_foreach((json_t *) o, key, v) {
                if (!*key)
                        return fail(ps, "keys must not be empty");
                if (strlen(key) > STRING_MAX)
                        return fail(ps, "key too long (%zu bytes, at most %u)", strlen(key), STRING_MAX);
                (*ret)[n].key = strdup(key);
                *ret_n = ++n;
                if (!(*ret)[n - 1].key)
                        return oom(ps);
                r = AT_KEY(ps, key, string_value(ps, v, &(*ret)[n - 1].value));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_namespaces(struct parser *ps, const json_t *a, struct oci_linux *l)
{
        struct qbuf qb;
        int r = check_array(ps, a, ARRAY_MAX);
        if (r < 0)
                return r;

        size_t n = json_array_size(a);
        l->namespaces = calloc(n + 1, sizeof(struct oci_namespace));
        if (!l->namespaces)
                return oom(ps);
        for (size_t i = 0; i < n; i++) {
                json_t *o = json_array_get(a, i);
                struct oci_namespace *ns = &l->namespaces[i];
                _cleanup_free_ char *type = NULL;

                l->n_namespaces = i + 1;
                size_t saved = jp_push_index(&ps->path, i);
                r = check_object(ps, o);
                if (r < 0)
                        return r;
                r = req_string(ps, o, "type", &type);
                if (r < 0)
                        return r;
                ns->type = oci_namespace_type_from_string(type);
                if (ns->type == OCI_NS__INVALID)
                        return AT_KEY(ps, "type", fail(ps, "unknown namespace %s", quote(&qb, type)));
                for (size_t j = 0; j < i; j++)
                        if (l->namespaces[j].type == ns->type)
                                return fail(ps, "duplicate namespace %s", quote(&qb, type));
                r = opt_string(ps, o, "path", &ns->path);
                if (r < 0)
                        return r;
                if (ns->path && ns->path[0] == '\0') {
                        /* Go producers write "" for "create a new one". */
                        free(ns->path);
                        ns->path = NULL;
                }
                if (ns->path) {
                        r = AT_KEY(ps, "path", check_absolute(ps, ns->path));
                        if (r < 0)
                                return r;
                }
                jp_pop(&ps->path, saved);
        }
        return 0;
}

static int parse_device(struct parser *ps, const json_t *o, struct oci_device *d)
{
        _cleanup_free_ char *type = NULL;
        struct qbuf qb;
        int64_t major = 0, minor = 0, mode = 0;
        int r, has_major, has_minor;

        r = check_object(ps, o);
        if (r < 0)
                return r;
        r = req_string(ps, o, "path", &d->path);
        if (r < 0)
                return r;
        r = AT_KEY(ps, "path", check_absolute(ps, d->path));
        if (r < 0)
                return r;
        r = req_string(ps, o, "type", &type);
        if (r < 0)
                return r;
        if (strlen(type) != 1 || !strchr("cbup", type[0]))
                return AT_KEY(ps, "type", fail(ps, "must be one of \"c\", \"b\", \"u\", \"p\", got %s", quote(&qb, type)));
        d->type = type[0];
        has_major = opt_int(ps, o, "major", INT64_MIN, INT64_MAX, &major);
        if (has_major < 0)
                return has_major;
        has_minor = opt_int(ps, o, "minor", INT64_MIN, INT64_MAX, &minor);
        if (has_minor < 0)
                return has_minor;
        if (d->type != 'p' && !has_major)
                return AT_KEY(ps, "major", fail(ps, "required for type \"%c\"", d->type));
        if (d->type != 'p' && !has_minor)
                return AT_KEY(ps, "minor", fail(ps, "required for type \"%c\"", d->type));
        d->has_major_minor = has_major && has_minor;
        d->major = major;
        d->minor = minor;
        r = opt_int(ps, o, "fileMode", 0, 0777, &mode);
        if (r < 0)
                return r;
        d->has_file_mode = r > 0;
        d->file_mode = (uint32_t) mode;
        r = opt_u32(ps, o, "uid", &d->uid);
        if (r < 0)
                return r;
        d->has_uid = r > 0;
        r = opt_u32(ps, o, "gid", &d->gid);
        if (r < 0)
                return r;
        d->has_gid = r > 0;
        return 0;
}

static int parse_devices(struct parser *ps, const json_t *a, struct oci_linux *l)
{
        int r = check_array(ps, a, DEVICES_MAX);
        if (r < 0)
                return r;
        size_t n = json_array_size(a);
        l->devices = calloc(n + 1, sizeof(struct oci_device));
        if (!l->devices)
                return oom(ps);
        for (size_t i = 0; i < n; i++) {
                l->n_devices = i + 1;
                r = AT_INDEX(ps, i, parse_device(ps, json_array_get(a, i), &l->devices[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_time_offset(struct parser *ps, const json_t *o, struct oci_time_offset *t)
{
        int64_t secs = 0;
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        r = opt_int(ps, o, "secs", INT64_MIN, INT64_MAX, &secs);
        if (r < 0)
                return r;
        t->secs = secs;
        r = opt_u32(ps, o, "nanosecs", &t->nanosecs);
        if (r < 0)
                return r;
        if (t->nanosecs >= 1000000000u)
                return AT_KEY(ps, "nanosecs", fail(ps, "must be below 1000000000, got %" PRIu32, t->nanosecs));
        return 0;
}

static int parse_time_offsets(struct parser *ps, const json_t *o, struct oci_linux *l)
{
        const char *key;
        json_t *v;
        struct qbuf qb;

        int r = check_object(ps, o);
        if (r < 0)
                return r;
        l->time_offsets = calloc(2, sizeof(struct oci_time_offset));
        if (!l->time_offsets)
                return oom(ps);
        json_object_foreach((json_t *) o, key, v) {
                struct oci_time_offset *t;

                if (json_is_null(v))
                        continue;
                if (!streq(key, "monotonic") && !streq(key, "boottime"))
                        return fail(ps, "unknown clock %s (expected \"monotonic\" or \"boottime\")", quote(&qb, key));
                t = &l->time_offsets[l->n_time_offsets++];
                t->clock = streq(key, "monotonic") ? OCI_CLOCK_MONOTONIC : OCI_CLOCK_BOOTTIME;
                r = AT_KEY(ps, key, parse_time_offset(ps, v, t));
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *const rootfs_propagations[] = {
        "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable", NULL,
};
static const char *const personality_domains[] = { "LINUX", "LINUX32", NULL };

static int parse_personality(struct parser *ps, const json_t *o, struct oci_linux *l)
{
        _cleanup_strv_free_ char **flags = NULL;
        int r = check_object(ps, o);
        if (r < 0)
                return r;
        r = req_string(ps, o, "domain", &l->personality_domain);
        if (r < 0)
                return r;
        r = AT_KEY(ps, "domain", validate_enum(ps, l->personality_domain, personality_domains));
        if (r < 0)
                return r;
        r = opt_strv(ps, o, "flags", ARRAY_MAX, &flags);
        if (r < 0)
                return r;
        l->has_personality = true;
        return 0;
}

static int parse_linux(struct parser *ps, const json_t *o, struct oci_linux *l)
{
        json_t *v;
        int r;

        r = check_object(ps, o);
        if (r < 0)
                return r;
        if ((v = member(o, "namespaces"))) {
                r = AT_KEY(ps, "namespaces", parse_namespaces(ps, v, l));
                if (r < 0)
                        return r;
        }
        r = parse_id_mappings(ps, o, "uidMappings", &l->uid_mappings, &l->n_uid_mappings);
        if (r < 0)
                return r;
        r = parse_id_mappings(ps, o, "gidMappings", &l->gid_mappings, &l->n_gid_mappings);
        if (r < 0)
                return r;
        if ((v = member(o, "timeOffsets"))) {
                r = AT_KEY(ps, "timeOffsets", parse_time_offsets(ps, v, l));
                if (r < 0)
                        return r;
        }
        if ((v = member(o, "devices"))) {
                r = AT_KEY(ps, "devices", parse_devices(ps, v, l));
                if (r < 0)
                        return r;
        }
        r = opt_string(ps, o, "cgroupsPath", &l->cgroups_path);
        if (r < 0)
                return r;
        r = opt_string(ps, o, "rootfsPropagation", &l->rootfs_propagation);
        if (r > 0)
                r = AT_KEY(ps, "rootfsPropagation", validate_enum(ps, l->rootfs_propagation, rootfs_propagations));
        if (r < 0)
                return r;
        r = opt_strv(ps, o, "maskedPaths", ARRAY_MAX, &l->masked_paths);
        if (r < 0)
                return r;
        r = opt_strv(ps, o, "readonlyPaths", ARRAY_MAX, &l->readonly_paths);
        if (r < 0)
                return r;
        r = opt_string(ps, o, "mountLabel", &l->mount_label);
        if (r < 0)
                return r;
        if ((v = member(o, "sysctl"))) {
                r = AT_KEY(ps, "sysctl", parse_string_map(ps, v, &l->sysctl, &l->n_sysctl));
                if (r < 0)
                        return r;
        }
        if ((v = member(o, "personality"))) {
                r = AT_KEY(ps, "personality", parse_personality(ps, v, l));
                if (r < 0)
                        return r;
        }
        r = opt_checked(ps, o, "resources", &v_resources, &l->resources);
        if (r < 0)
                return r;
        r = opt_checked(ps, o, "seccomp", &v_seccomp, &l->seccomp);
        if (r < 0)
                return r;
        r = opt_checked(ps, o, "intelRdt", &v_intel_rdt, &l->intel_rdt);
        if (r < 0)
                return r;
        r = opt_checked(ps, o, "netDevices", &v_net_devices, &l->net_devices);
        if (r < 0)
                return r;
        r = opt_checked(ps, o, "memoryPolicy", &v_memory_policy, &l->memory_policy);
        if (r < 0)
                return r;
        return 0;
}

/* "MAJOR.MINOR.PATCH" with an optional "-prerelease" or "+build". */
static int check_version(struct parser *ps, const char *v)
{
        struct qbuf qb;
        unsigned long major = 0;
        const char *p = v;

        for (int part = 0; part < 3; part++) {
                size_t n = strspn(p, "0123456789");
                if (n == 0 || n > 9)
                        return fail(ps, "must be a version like \"1.0.0\", got %s", quote(&qb, v));
                if (part == 0)
                        major = strtoul(p, NULL, 10);
                p += n;
                if (part < 2) {
                        if (*p != '.')
                                return fail(ps, "must be a version like \"1.0.0\", got %s", quote(&qb, v));
                        p++;
                }
        }
        if (*p != '\0' && !((*p == '-' || *p == '+') && p[1] != '\0'))
                return fail(ps, "must be a version like \"1.0.0\", got %s", quote(&qb, v));
        if (major > 1)
                return fail(ps, "unsupported version %s (this runtime supports 1.x)", quote(&qb, v));
        return 0;
}

static bool has_namespace(const struct oci_config *c, enum oci_namespace_type t)
{
        return oci_config_find_namespace(c, t) != NULL;
}

/* Which namespace a namespaced sysctl needs; OCI_NS__INVALID for the
 * others (whether those may be set at all is the runtime's call). */
static enum oci_namespace_type sysctl_namespace(const char *key)
{
        char k[128];
        size_t n = strlen(key);

        if (n >= sizeof(k))
                n = sizeof(k) - 1;
        for (size_t i = 0; i < n; i++)
                k[i] = key[i] == '/' ? '.' : key[i];
        k[n] = '\0';

        /* Only keys that a namespace holds: anything else would be written
         * to the host's kernel (kernel.core_pattern means code execution
         * on the host). The ipc list is the kernel's ipc_sysctls. */
        static const char *const ipc_keys[] = {
                "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", "kernel.auto_msgmni",
        };
        if (n != strlen(key))
                return OCI_NS__INVALID;
        if (startswith(k, "net."))
                return OCI_NS_NETWORK;
        if (startswith(k, "fs.mqueue."))
                return OCI_NS_IPC;
        for (size_t i = 0; i < ELEMENTSOF(ipc_keys); i++)
                if (streq(k, ipc_keys[i]))
                        return OCI_NS_IPC;
        if (streq(k, "kernel.hostname") || streq(k, "kernel.domainname"))
                return OCI_NS_UTS;
        return OCI_NS__INVALID;
}

/* Rules that tie sections together, checked once everything is parsed. */
static int check_cross_references(struct parser *ps, const struct oci_config *c)
{
        const struct oci_linux *l = &c->linux_;
        struct qbuf qb;

        if (!strempty(c->hostname) && !has_namespace(c, OCI_NS_UTS))
                return AT_KEY(ps, "hostname", fail(ps, "needs a uts namespace"));
        if (!strempty(c->domainname) && !has_namespace(c, OCI_NS_UTS))
                return AT_KEY(ps, "domainname", fail(ps, "needs a uts namespace"));

        size_t saved = jp_push_key(&ps->path, "linux");
        if (l->n_uid_mappings > 0 && !has_namespace(c, OCI_NS_USER))
                return AT_KEY(ps, "uidMappings", fail(ps, "needs a user namespace"));
        if (l->n_gid_mappings > 0 && !has_namespace(c, OCI_NS_USER))
                return AT_KEY(ps, "gidMappings", fail(ps, "needs a user namespace"));
        if (l->n_time_offsets > 0 && !has_namespace(c, OCI_NS_TIME))
                return AT_KEY(ps, "timeOffsets", fail(ps, "needs a time namespace"));
        for (size_t i = 0; i < l->n_sysctl; i++) {
                enum oci_namespace_type t = sysctl_namespace(l->sysctl[i].key);
                if (t == OCI_NS__INVALID)
                        return AT_KEY(ps, "sysctl",
                                      fail(ps, "%s is not in a separate kernel namespace: setting it would "
                                               "change the host",
                                           quote(&qb, l->sysctl[i].key)));
                if (!has_namespace(c, t))
                        return AT_KEY(ps, "sysctl",
                                      fail(ps, "%s needs a%s %s namespace", quote(&qb, l->sysctl[i].key),
                                           t == OCI_NS_IPC ? "n" : "", oci_namespace_type_to_string(t)));
        }
        jp_pop(&ps->path, saved);
        return 0;
}

static int parse_config(struct parser *ps, struct oci_config *c)
{
        const json_t *doc = c->json;
        json_t *v;
        int r;

        r = req_string(ps, doc, "ociVersion", &c->oci_version);
        if (r < 0)
                return r;
        r = AT_KEY(ps, "ociVersion", check_version(ps, c->oci_version));
        if (r < 0)
                return r;

        v = member(doc, "root");
        if (!v)
                return req_missing(ps, "root");
        r = AT_KEY(ps, "root", parse_root(ps, v, &c->root));
        if (r < 0)
                return r;

        r = opt_object(ps, doc, "process", &v);
        if (r > 0) {
                c->has_process = true;
                r = AT_KEY(ps, "process", parse_process(ps, v, &c->process));
        }
        if (r < 0)
                return r;

        r = opt_string(ps, doc, "hostname", &c->hostname);
        if (r < 0)
                return r;
        r = opt_string(ps, doc, "domainname", &c->domainname);
        if (r < 0)
                return r;
        if ((v = member(doc, "mounts"))) {
                r = AT_KEY(ps, "mounts", parse_mounts(ps, v, c));
                if (r < 0)
                        return r;
        }
        if ((v = member(doc, "hooks"))) {
                r = AT_KEY(ps, "hooks", parse_hooks(ps, v, c));
                if (r < 0)
                        return r;
        }
        if ((v = member(doc, "annotations"))) {
                r = AT_KEY(ps, "annotations", parse_string_map(ps, v, &c->annotations, &c->n_annotations));
                if (r < 0)
                        return r;
        }
        r = opt_object(ps, doc, "linux", &v);
        if (r > 0) {
                c->has_linux = true;
                r = AT_KEY(ps, "linux", parse_linux(ps, v, &c->linux_));
        }
        if (r < 0)
                return r;

        return check_cross_references(ps, c);
}

int oci_config_parse(const char *buf, size_t len, struct oci_config **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *rewritten = NULL;
        size_t rewritten_len = 0;
        json_error_t e;
        int r;

        if (len > OCI_CONFIG_MAX_SIZE)
                return moat_error_setx(reterr, -EFBIG, "config is too large (%zu bytes, at most %u)", len,
                                       OCI_CONFIG_MAX_SIZE);
        r = rewrite_big_integers(buf, len, &rewritten, &rewritten_len);
        if (r < 0)
                return moat_error_setx(reterr, r, "out of memory");
        if (r > 0) {
                buf = rewritten;
                len = rewritten_len;
        }

        json_t *doc = json_loadb(buf, len, 0, &e);
        if (!doc)
                return moat_error_setx(reterr, -EINVAL, "invalid JSON at line %d, column %d: %s", e.line, e.column,
                                       e.text);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return moat_error_setx(reterr, -EINVAL, "invalid config: the top level must be a JSON object");
        }

        struct oci_config *c = calloc(1, sizeof(*c));
        if (!c) {
                json_decref(doc);
                return moat_error_setx(reterr, -ENOMEM, "out of memory");
        }
        c->json = doc;

        struct parser ps = { .reterr = reterr };
        r = parse_config(&ps, c);
        if (r < 0) {
                oci_config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int oci_config_load_at(int dir_fd, const char *path, struct oci_config **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r;

        r = read_full_file_at(dir_fd, path, OCI_CONFIG_MAX_SIZE, &buf, &len);
        if (r == -EFBIG)
                return moat_error_setx(reterr, r, "%s: larger than %u bytes", path, OCI_CONFIG_MAX_SIZE);
        if (r < 0)
                return moat_error_set(reterr, r, "reading %s", path);
        r = oci_config_parse(buf, len, ret, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s", path);
        return 0;
}

/* ---- release and lookups ---- */

static void hook_list_done(struct oci_hook_list *l)
{
        for (size_t i = 0; i < l->n_hooks; i++) {
                free(l->hooks[i].path);
                strv_free(l->hooks[i].args);
                strv_free(l->hooks[i].env);
        }
        free(l->hooks);
}

static void key_values_free(struct oci_key_value *kv, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

static void process_done(struct oci_process *p)
{
        free(p->user.additional_gids);
        free(p->user.username);
        strv_free(p->args);
        free(p->command_line);
        strv_free(p->env);
        free(p->cwd);
        for (size_t i = 0; i < p->n_rlimits; i++)
                free(p->rlimits[i].type);
        free(p->rlimits);
        free(p->apparmor_profile);
        free(p->selinux_label);
}

static void linux_done(struct oci_linux *l)
{
        for (size_t i = 0; i < l->n_namespaces; i++)
                free(l->namespaces[i].path);
        free(l->namespaces);
        free(l->uid_mappings);
        free(l->gid_mappings);
        free(l->time_offsets);
        for (size_t i = 0; i < l->n_devices; i++)
                free(l->devices[i].path);
        free(l->devices);
        free(l->cgroups_path);
        free(l->rootfs_propagation);
        strv_free(l->masked_paths);
        strv_free(l->readonly_paths);
        free(l->mount_label);
        key_values_free(l->sysctl, l->n_sysctl);
        free(l->personality_domain);
}

void oci_config_free(struct oci_config *c)
{
        if (!c)
                return;
        free(c->oci_version);
        free(c->root.path);
        process_done(&c->process);
        free(c->hostname);
        free(c->domainname);
        for (size_t i = 0; i < c->n_mounts; i++) {
                struct oci_mount *m = &c->mounts[i];
                free(m->destination);
                free(m->type);
                free(m->source);
                strv_free(m->options);
                free(m->uid_mappings);
                free(m->gid_mappings);
        }
        free(c->mounts);
        for (int k = 0; k < OCI_HOOK__MAX; k++)
                hook_list_done(&c->hooks[k]);
        key_values_free(c->annotations, c->n_annotations);
        linux_done(&c->linux_);
        json_decref(c->json);
        free(c);
}

const struct oci_namespace *oci_config_find_namespace(const struct oci_config *c, enum oci_namespace_type t)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->linux_.n_namespaces; i++)
                if (c->linux_.namespaces[i].type == t)
                        return &c->linux_.namespaces[i];
        return NULL;
}

const char *oci_config_annotation(const struct oci_config *c, const char *key)
{
        if (!c || !key)
                return NULL;
        for (size_t i = 0; i < c->n_annotations; i++)
                if (streq(c->annotations[i].key, key))
                        return c->annotations[i].value;
        return NULL;
}
