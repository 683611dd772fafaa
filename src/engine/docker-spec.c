/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Docker's container create body -> OCI runtime config (see docker-spec.h
 * for the two steps and moat's own defaults).
 *
 * Parsing builds normalised copies of Config and HostConfig field by field
 * from tables (name, JSON type, docker's default), so every member docker
 * knows is type-checked once, bounded, and present in what inspect shows;
 * the rules between fields follow moby (daemon/daemon_unix.go
 * verifyPlatformContainerSettings, daemon/container.go
 * verifyContainerSettings, volume/mounts/linux_parser.go, oci/caps) with its
 * messages, prefixed by the field's JSON path. The spec step then reads
 * only the normalised documents, whose shape is known.
 *
 * The spec starts from moat_spec_hardened() (so moat-runtime's defaults and
 * the engine's cannot drift apart) and the process from
 * moat_image_runtime_config_make() (docker's Entrypoint/Cmd/Env/User rules).
 * The seccomp profile is moat's default built for the final capability set
 * (moat_seccomp_default_profile), or a profile in docker's format (inline,
 * as the docker CLI sends it, or a file) converted the way moby does:
 * includes/excludes by capability and architecture, archMap for the native
 * architecture; it is then compiled once with libseccomp to be sure the
 * runtime will accept it.
 *
 * Mounts follow docker's order: its default filesystems (dropped where a
 * user mount takes the destination), the engine's /etc/hostname, hosts and
 * resolv.conf, then Binds, Mounts, Tmpfs and anonymous volumes sorted by
 * depth so that parents are mounted before what lies inside them.
 */

#include "engine/docker-spec.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/imageconfig.h"
#include "oci/runtime-spec.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"

#define DEFAULT_SHM_SIZE INT64_C(67108864)
#define MIN_MEMORY INT64_C(6291456)
#define MIN_DURATION_NS INT64_C(1000000)
#define DEVICE_WALK_MAX 16384u /* entries looked at (host /dev has a few hundred) */
#define DEVICE_WALK_DEPTH 8
#define PATH_SHOW "%.256s" /* client-controlled text inside a message */

/* ---- small helpers ------------------------------------------------------ */

static int oom(void)
{
        return -ENOMEM;
}

static int set(json_t *o, const char *key, json_t *v)
{
        if (!v)
                return oom();
        return json_object_set_new(o, key, v) < 0 ? oom() : 0;
}

static int append(json_t *a, json_t *v)
{
        if (!v)
                return oom();
        return json_array_append_new(a, v) < 0 ? oom() : 0;
}

static int warn(json_t *warnings, const char *msg)
{
        return append(warnings, json_string(msg));
}

static bool is_null(const json_t *v)
{
        return !v || json_is_null(v);
}

static const char *json_type_name(const json_t *v)
{
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
                return "an integer";
        case JSON_REAL:
                return "a number with a fraction";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        default:
                return "null";
        }
}

static size_t path_depth(const char *p)
{
        size_t n = 0;
        for (const char *s = p; *s; s++)
                if (*s == '/' && s[1] && s[1] != '/')
                        n++;
        return n;
}

/* An absolute path with "." and ".." resolved lexically, doubled and
 * trailing slashes removed (Go's filepath.Clean on an absolute path). */
static char *clean_path(const char *p)
{
        size_t n = strlen(p);
        char *out = malloc(n + 2);
        if (!out)
                return NULL;
        size_t o = 0;
        out[o++] = '/';
        const char *s = p;
        while (*s) {
                while (*s == '/')
                        s++;
                if (!*s)
                        break;
                const char *e = strchrnul(s, '/');
                size_t len = (size_t) (e - s);
                if (len == 1 && s[0] == '.') {
                } else if (len == 2 && s[0] == '.' && s[1] == '.') {
                        while (o > 1 && out[o - 1] != '/')
                                o--;
                        if (o > 1)
                                o--;
                } else {
                        if (o > 1)
                                out[o++] = '/';
                        memcpy(out + o, s, len);
                        o += len;
                }
                s = e;
        }
        out[o] = '\0';
        return out;
}

static bool valid_volume_name(const char *s)
{
        if (strlen(s) < 2 || !isalnum((unsigned char) s[0]))
                return false;
        for (const char *c = s + 1; *c; c++)
                if (!isalnum((unsigned char) *c) && *c != '_' && *c != '.' && *c != '-')
                        return false;
        return true;
}

/* Go's strconv.ParseBool. */
static int parse_go_bool(const char *s, bool *ret)
{
        static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
        static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (streq(s, yes[i])) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (streq(s, no[i])) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

/* ---- typed copies from the body ---------------------------------------- */

enum kind {
        K_BOOL,
        K_BOOL_OR_NULL,
        K_INT,
        K_INT_OR_NULL,
        K_STRING,
        K_STRV,      /* array of strings (or null) */
        K_STRSLICE,  /* docker's StrSlice: a string or an array of strings (or null) */
        K_STRMAP,    /* object of strings */
        K_SETMAP,    /* object whose values are {} (ExposedPorts, Volumes) */
        K_OBJECT,
        K_ARRAY,
        K_UINT_PAIR, /* ConsoleSize */
};

enum dflt {
        D_OMIT,      /* absent unless given */
        D_NULL,
        D_FALSE,
        D_ZERO,
        D_EMPTY_STRING,
        D_EMPTY_OBJECT,
        D_EMPTY_ARRAY,
        D_PAIR_ZERO,
};

struct field {
        const char *name;
        enum kind kind;
        enum dflt dflt;
};

static json_t *default_value(enum dflt d)
{
        switch (d) {
        case D_NULL:
                return json_null();
        case D_FALSE:
                return json_false();
        case D_ZERO:
                return json_integer(0);
        case D_EMPTY_STRING:
                return json_string("");
        case D_EMPTY_OBJECT:
                return json_object();
        case D_EMPTY_ARRAY:
                return json_array();
        case D_PAIR_ZERO:
                return json_pack("[i, i]", 0, 0);
        default:
                return NULL;
        }
}

static int check_string(const json_t *v, const char *path, struct moat_error **reterr)
{
        if (!json_is_string(v))
                return moat_error_setx(reterr, -EINVAL, "%s: must be a string, not %s", path, json_type_name(v));
        if (json_string_length(v) > MOAT_DOCKER_STRING_MAX)
                return moat_error_setx(reterr, -E2BIG, "%s: longer than %u bytes", path, MOAT_DOCKER_STRING_MAX);
        if (strlen(json_string_value(v)) != json_string_length(v))
                return moat_error_setx(reterr, -EINVAL, "%s: contains a NUL byte", path);
        return 0;
}

static int check_size(size_t n, const char *path, struct moat_error **reterr)
{
        if (n > MOAT_DOCKER_ARRAY_MAX)
                return moat_error_setx(reterr, -E2BIG, "%s: more than %u entries", path, MOAT_DOCKER_ARRAY_MAX);
        return 0;
}

/* Type-check v (not null) as kind; *ret is the normalised copy. */
static int copy_kind(const json_t *v, enum kind kind, const char *path, json_t **ret, struct moat_error **reterr)
{
        char sub[512];
        int r;

        switch (kind) {
        case K_BOOL:
        case K_BOOL_OR_NULL:
                if (!json_is_boolean(v))
                        return moat_error_setx(reterr, -EINVAL, "%s: must be a boolean, not %s", path,
                                               json_type_name(v));
                break;
        case K_INT:
        case K_INT_OR_NULL:
                if (!json_is_integer(v))
                        return moat_error_setx(reterr, -EINVAL, "%s: must be an integer, not %s", path,
                                               json_type_name(v));
                break;
        case K_STRING:
                r = check_string(v, path, reterr);
                if (r < 0)
                        return r;
                break;
        case K_STRSLICE:
                if (json_is_string(v)) {
                        r = check_string(v, path, reterr);
                        if (r < 0)
                                return r;
                        *ret = json_pack("[O]", v);
                        return *ret ? 0 : oom();
                }
                __attribute__((fallthrough));
        case K_STRV:
                if (!json_is_array(v))
                        return moat_error_setx(reterr, -EINVAL, "%s: must be an array of strings, not %s", path,
                                               json_type_name(v));
                r = check_size(json_array_size(v), path, reterr);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < json_array_size(v); i++) {
                        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
                        r = check_string(json_array_get(v, i), sub, reterr);
                        if (r < 0)
                                return r;
                }
                break;
        case K_STRMAP:
        case K_SETMAP: {
                if (!json_is_object(v))
                        return moat_error_setx(reterr, -EINVAL, "%s: must be an object, not %s", path,
                                               json_type_name(v));
                r = check_size(json_object_size(v), path, reterr);
                if (r < 0)
                        return r;
                const char *k;
                json_t *e;
                json_object_foreach((json_t *) v, k, e) {
                        snprintf(sub, sizeof(sub), "%s[\"" PATH_SHOW "\"]", path, k);
                        if (strlen(k) > MOAT_DOCKER_STRING_MAX)
                                return moat_error_setx(reterr, -E2BIG, "%s: key longer than %u bytes", sub,
                                                       MOAT_DOCKER_STRING_MAX);
                        if (kind == K_STRMAP) {
                                r = check_string(e, sub, reterr);
                                if (r < 0)
                                        return r;
                        } else if (!json_is_object(e) && !json_is_null(e))
                                return moat_error_setx(reterr, -EINVAL, "%s: must be an object ({}), not %s", sub,
                                                       json_type_name(e));
                }
                if (kind == K_SETMAP) {
                        json_t *o = json_object();
                        if (!o)
                                return oom();
                        json_object_foreach((json_t *) v, k, e)
                                if (json_object_set_new(o, k, json_object()) < 0) {
                                        json_decref(o);
                                        return oom();
                                }
                        *ret = o;
                        return 0;
                }
                break;
        }
        case K_OBJECT:
                if (!json_is_object(v))
                        return moat_error_setx(reterr, -EINVAL, "%s: must be an object, not %s", path,
                                               json_type_name(v));
                r = check_size(json_object_size(v), path, reterr);
                if (r < 0)
                        return r;
                break;
        case K_ARRAY:
                if (!json_is_array(v))
                        return moat_error_setx(reterr, -EINVAL, "%s: must be an array, not %s", path,
                                               json_type_name(v));
                r = check_size(json_array_size(v), path, reterr);
                if (r < 0)
                        return r;
                break;
        case K_UINT_PAIR:
                if (!json_is_array(v) || json_array_size(v) != 2)
                        return moat_error_setx(reterr, -EINVAL, "%s: must be an array of two integers [height, width]",
                                               path);
                for (size_t i = 0; i < 2; i++) {
                        json_t *e = json_array_get(v, i);
                        if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                            json_integer_value(e) > UINT16_MAX)
                                return moat_error_setx(reterr, -EINVAL, "%s[%zu]: must be an integer from 0 to %u",
                                                       path, i, UINT16_MAX);
                }
                break;
        }
        *ret = json_deep_copy(v);
        return *ret ? 0 : oom();
}

static int copy_fields(const json_t *in, const char *section, const struct field *fields, size_t n, json_t *out,
                       struct moat_error **reterr)
{
        char path[128];
        int r;

        for (size_t i = 0; i < n; i++) {
                const struct field *f = &fields[i];
                json_t *v = in ? json_object_get(in, f->name) : NULL;
                json_t *copy = NULL;

                if (section)
                        snprintf(path, sizeof(path), "%s.%s", section, f->name);
                else
                        snprintf(path, sizeof(path), "%s", f->name);
                if (is_null(v)) {
                        if (f->dflt == D_OMIT)
                                continue;
                        copy = default_value(f->dflt);
                        if (!copy)
                                return oom();
                } else {
                        r = copy_kind(v, f->kind, path, &copy, reterr);
                        if (r < 0)
                                return r;
                }
                r = set(out, f->name, copy);
                if (r < 0)
                        return r;
        }
        return 0;
}

static const char *sget(const json_t *o, const char *key)
{
        const char *s = json_string_value(json_object_get(o, key));
        return s ? s : "";
}

static int64_t iget(const json_t *o, const char *key)
{
        return json_integer_value(json_object_get(o, key));
}

static bool bget(const json_t *o, const char *key)
{
        return json_is_true(json_object_get(o, key));
}

/* ---- Binds, Mounts and Tmpfs -------------------------------------------- */

enum mount_type {
        M_BIND,
        M_VOLUME,
        M_TMPFS,
};

struct umount {
        enum mount_type type;
        char *source;           /* bind: host path; volume: name (NULL: anonymous) */
        char *dest;             /* cleaned, absolute */
        bool ro;
        bool ro_non_recursive;
        const char *propagation;/* static string; NULL: rprivate */
        bool non_recursive;
        bool create_mountpoint;
        bool nocopy;
        bool from_binds;
        char *mode;             /* inspect's Mode */
        char *tmpfs_data;       /* comma-separated options */
        const json_t *volume_options;
};

static void umount_done(struct umount *m)
{
        free(m->source);
        free(m->dest);
        free(m->mode);
        free(m->tmpfs_data);
}

static const char *const propagations[] = { "private", "rprivate", "shared", "rshared", "slave", "rslave" };

static const char *propagation_static(const char *s)
{
        for (size_t i = 0; i < ELEMENTSOF(propagations); i++)
                if (streq(s, propagations[i]))
                        return propagations[i];
        return NULL;
}

static int check_destination(const char *type, const char *dest, const char *path, struct moat_error **reterr)
{
        if (dest[0] != '/')
                return moat_error_setx(reterr, -EINVAL,
                                       "%s: invalid mount config for type \"%s\": invalid mount path: '" PATH_SHOW
                                       "' mount path must be absolute",
                                       path, type, dest);
        _cleanup_free_ char *c = clean_path(dest);
        if (!c)
                return oom();
        if (streq(c, "/"))
                return moat_error_setx(reterr, -EINVAL,
                                       "%s: invalid specification: destination can't be '/'", path);
        return 0;
}

/* "src:dst[:mode]", "dst" (moby's linux parser, ParseMountRaw). */
static int parse_bind(const char *raw, const char *path, struct umount *m, struct moat_error **reterr)
{
        _cleanup_free_ char *copy = strdup(raw);
        char *parts[4] = {};
        size_t n = 0;

        if (!copy)
                return oom();
        for (char *s = copy, *e;; s = e + 1) {
                if (n == ELEMENTSOF(parts))
                        return moat_error_setx(reterr, -EINVAL, "%s: invalid volume specification: '" PATH_SHOW "'",
                                               path, raw);
                e = strchr(s, ':');
                parts[n++] = s;
                if (!e)
                        break;
                *e = '\0';
        }
        if (n > 3 || strempty(parts[0]) || (n >= 2 && strempty(parts[1])))
                return moat_error_setx(reterr, -EINVAL, "%s: invalid volume specification: '" PATH_SHOW "'", path,
                                       raw);

        *m = (struct umount){ .type = M_VOLUME, .from_binds = true };
        const char *src = n >= 2 ? parts[0] : NULL;
        const char *dst = n >= 2 ? parts[1] : parts[0];
        const char *mode = n == 3 ? parts[2] : "";

        if (src) {
                if (src[0] == '/')
                        m->type = M_BIND;
                else if (!valid_volume_name(src))
                        return moat_error_setx(reterr, -EINVAL,
                                               "%s: \"" PATH_SHOW "\" includes invalid characters for a local volume "
                                               "name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended "
                                               "to pass a host directory, use absolute path",
                                               path, src);
        }
        int r = check_destination(m->type == M_BIND ? "bind" : "volume", dst, path, reterr);
        if (r < 0)
                return r;

        bool seen_rw = false, seen_label = false, seen_consistency = false;
        _cleanup_free_ char *modes = strdup(mode);
        if (!modes)
                return oom();
        for (char *save = NULL, *o = strtok_r(modes, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                if (streq(o, "ro") || streq(o, "rw")) {
                        if (seen_rw)
                                goto invalid;
                        seen_rw = true;
                        m->ro = streq(o, "ro");
                } else if (streq(o, "z") || streq(o, "Z")) {
                        /* SELinux relabelling: a no-op without SELinux, as in docker */
                        if (seen_label)
                                goto invalid;
                        seen_label = true;
                } else if (propagation_static(o)) {
                        if (m->propagation || m->type != M_BIND)
                                goto invalid;
                        m->propagation = propagation_static(o);
                } else if (streq(o, "nocopy")) {
                        if (m->nocopy || m->type != M_VOLUME)
                                goto invalid;
                        m->nocopy = true;
                } else if (streq(o, "consistent") || streq(o, "cached") || streq(o, "delegated")) {
                        if (seen_consistency)
                                goto invalid;
                        seen_consistency = true;
                } else
                        goto invalid;
        }

        if (src) {
                m->source = m->type == M_BIND ? clean_path(src) : strdup(src);
                if (!m->source)
                        return oom();
        }
        m->dest = clean_path(dst);
        m->mode = strdup(mode);
        if (!m->dest || !m->mode)
                return oom();
        return 0;

invalid:
        umount_done(m);
        *m = (struct umount){};
        return moat_error_setx(reterr, -EINVAL, "%s: invalid mode: " PATH_SHOW, path, mode);
}

/* TmpfsOptions -> mount data, as moby's ConvertTmpfsOptions. */
static int tmpfs_data_from_options(const json_t *opt, bool ro, const char *path, char **ret,
                                   struct moat_error **reterr)
{
        char buf[256];
        _cleanup_free_ char *out = strdup(ro ? "ro" : "");

        if (!out)
                return oom();
        if (!is_null(opt)) {
                json_t *size = json_object_get(opt, "SizeBytes"), *mode = json_object_get(opt, "Mode"),
                       *extra = json_object_get(opt, "Options");
                if (!is_null(size)) {
                        if (!json_is_integer(size) || json_integer_value(size) < 0)
                                return moat_error_setx(reterr, -EINVAL, "%s.TmpfsOptions.SizeBytes: must be an integer >= 0",
                                                       path);
                        int64_t s = json_integer_value(size);
                        if (s > 0) {
                                const char *suffix = "";
                                if (s % (INT64_C(1) << 30) == 0)
                                        s >>= 30, suffix = "g";
                                else if (s % (INT64_C(1) << 20) == 0)
                                        s >>= 20, suffix = "m";
                                else if (s % 1024 == 0)
                                        s >>= 10, suffix = "k";
                                snprintf(buf, sizeof(buf), "%s%ssize=%" PRId64 "%s", out, *out ? "," : "", s, suffix);
                                free(out);
                                if (!(out = strdup(buf)))
                                        return oom();
                        }
                }
                if (!is_null(mode)) {
                        if (!json_is_integer(mode) || json_integer_value(mode) < 0 || json_integer_value(mode) > 07777)
                                return moat_error_setx(reterr, -EINVAL,
                                                       "%s.TmpfsOptions.Mode: must be a file mode from 0 to 07777", path);
                        if (json_integer_value(mode) != 0) {
                                snprintf(buf, sizeof(buf), "%s%smode=%o", out, *out ? "," : "",
                                         (unsigned) json_integer_value(mode));
                                free(out);
                                if (!(out = strdup(buf)))
                                        return oom();
                        }
                }
                if (!is_null(extra)) {
                        if (!json_is_array(extra) || json_array_size(extra) > 64)
                                return moat_error_setx(reterr, -EINVAL,
                                                       "%s.TmpfsOptions.Options: must be an array of [name] or [name, value]",
                                                       path);
                        for (size_t i = 0; i < json_array_size(extra); i++) {
                                json_t *e = json_array_get(extra, i);
                                const char *k = json_string_value(json_array_get(e, 0));
                                const char *v = json_string_value(json_array_get(e, 1));
                                if (!json_is_array(e) || json_array_size(e) < 1 || json_array_size(e) > 2 || !k ||
                                    (json_array_size(e) == 2 && !v) || strlen(k) > 64 || (v && strlen(v) > 64) ||
                                    strchr(k, ',') || strchr(k, '=') || (v && strchr(v, ',')))
                                        return moat_error_setx(reterr, -EINVAL,
                                                               "%s.TmpfsOptions.Options[%zu]: must be [name] or [name, value]",
                                                               path, i);
                                snprintf(buf, sizeof(buf), "%s%s%s%s%s", out, *out ? "," : "", k, v ? "=" : "",
                                         v ? v : "");
                                free(out);
                                if (!(out = strdup(buf)))
                                        return oom();
                        }
                }
        }
        *ret = TAKE_PTR(out);
        return 0;
}

static int check_no_member(const json_t *m, const char *key, const char *type, const char *path,
                           struct moat_error **reterr)
{
        if (!is_null(json_object_get(m, key)))
                return moat_error_setx(reterr, -EINVAL,
                                       "%s: invalid mount config for type \"%s\": field %s must not be specified", path,
                                       type, key);
        return 0;
}

/* One HostConfig.Mounts[] entry (moby's validateMountConfig). */
static int parse_mount(const json_t *e, const char *path, struct umount *m, struct moat_error **reterr)
{
        char sub[256];
        int r;

        if (!json_is_object(e))
                return moat_error_setx(reterr, -EINVAL, "%s: must be an object, not %s", path, json_type_name(e));
        static const struct field fields[] = {
                { "Type", K_STRING, D_EMPTY_STRING },      { "Source", K_STRING, D_EMPTY_STRING },
                { "Target", K_STRING, D_EMPTY_STRING },    { "ReadOnly", K_BOOL, D_FALSE },
                { "Consistency", K_STRING, D_EMPTY_STRING }, { "BindOptions", K_OBJECT, D_OMIT },
                { "VolumeOptions", K_OBJECT, D_OMIT },     { "TmpfsOptions", K_OBJECT, D_OMIT },
        };
        json_t *t = json_object();
        if (!t)
                return oom();
        r = copy_fields(e, path, fields, ELEMENTSOF(fields), t, reterr);
        if (r < 0) {
                json_decref(t);
                return r;
        }

        const char *type = sget(t, "Type"), *source = sget(t, "Source"), *target = sget(t, "Target");
        json_t *bo = json_object_get(t, "BindOptions"), *vo = json_object_get(t, "VolumeOptions"),
               *to = json_object_get(t, "TmpfsOptions");
        *m = (struct umount){ .ro = bget(t, "ReadOnly"), .mode = strdup("") };
        if (!m->mode) {
                r = oom();
                goto out;
        }

        if (streq(type, "bind"))
                m->type = M_BIND;
        else if (streq(type, "volume"))
                m->type = M_VOLUME;
        else if (streq(type, "tmpfs"))
                m->type = M_TMPFS;
        else if (streq(type, "image") || streq(type, "npipe") || streq(type, "cluster")) {
                r = moat_error_setx(reterr, -EOPNOTSUPP, "%s.Type: mounts of type \"%s\" are not supported", path,
                                    type);
                goto out;
        } else {
                r = moat_error_setx(reterr, -EINVAL, "%s: invalid mount config for type \"" PATH_SHOW "\": mount type unknown",
                                    path, type);
                goto out;
        }

        if (!*target) {
                r = moat_error_setx(reterr, -EINVAL,
                                    "%s: invalid mount config for type \"%s\": field Target must not be empty", path,
                                    type);
                goto out;
        }
        r = check_destination(type, target, path, reterr);
        if (r < 0)
                goto out;
        m->dest = clean_path(target);
        if (!m->dest) {
                r = oom();
                goto out;
        }

        switch (m->type) {
        case M_BIND:
                if ((r = check_no_member(t, "VolumeOptions", type, path, reterr)) < 0 ||
                    (r = check_no_member(t, "TmpfsOptions", type, path, reterr)) < 0)
                        goto out;
                if (!*source) {
                        r = moat_error_setx(reterr, -EINVAL,
                                            "%s: invalid mount config for type \"bind\": field Source must not be empty",
                                            path);
                        goto out;
                }
                if (source[0] != '/') {
                        r = moat_error_setx(reterr, -EINVAL,
                                            "%s: invalid mount config for type \"bind\": invalid mount path: '" PATH_SHOW
                                            "' mount path must be absolute",
                                            path, source);
                        goto out;
                }
                m->source = clean_path(source);
                if (!m->source) {
                        r = oom();
                        goto out;
                }
                if (bo) {
                        static const struct field bfields[] = {
                                { "Propagation", K_STRING, D_EMPTY_STRING },
                                { "NonRecursive", K_BOOL, D_FALSE },
                                { "CreateMountpoint", K_BOOL, D_FALSE },
                                { "ReadOnlyNonRecursive", K_BOOL, D_FALSE },
                                { "ReadOnlyForceRecursive", K_BOOL, D_FALSE },
                        };
                        json_t *b = json_object();
                        snprintf(sub, sizeof(sub), "%s.BindOptions", path);
                        if (!b) {
                                r = oom();
                                goto out;
                        }
                        r = copy_fields(bo, sub, bfields, ELEMENTSOF(bfields), b, reterr);
                        if (r < 0) {
                                json_decref(b);
                                goto out;
                        }
                        const char *p = sget(b, "Propagation");
                        if (*p && !(m->propagation = propagation_static(p))) {
                                r = moat_error_setx(reterr, -EINVAL, "%s.Propagation: invalid propagation mode: " PATH_SHOW,
                                                    sub, p);
                                json_decref(b);
                                goto out;
                        }
                        m->non_recursive = bget(b, "NonRecursive");
                        m->create_mountpoint = bget(b, "CreateMountpoint");
                        m->ro_non_recursive = bget(b, "ReadOnlyNonRecursive");
                        if (m->ro_non_recursive && bget(b, "ReadOnlyForceRecursive")) {
                                r = moat_error_setx(reterr, -EINVAL,
                                                    "%s: option ReadOnlyNonRecursive conflicts with ReadOnlyForceRecursive",
                                                    sub);
                                json_decref(b);
                                goto out;
                        }
                        if ((m->ro_non_recursive || bget(b, "ReadOnlyForceRecursive")) && !m->ro) {
                                r = moat_error_setx(reterr, -EINVAL,
                                                    "%s: option ReadOnlyNonRecursive and ReadOnlyForceRecursive need ReadOnly",
                                                    sub);
                                json_decref(b);
                                goto out;
                        }
                        json_decref(b);
                }
                break;
        case M_VOLUME:
                if ((r = check_no_member(t, "BindOptions", type, path, reterr)) < 0 ||
                    (r = check_no_member(t, "TmpfsOptions", type, path, reterr)) < 0)
                        goto out;
                if (*source) {
                        if (!valid_volume_name(source)) {
                                r = moat_error_setx(reterr, -EINVAL,
                                                    "%s.Source: \"" PATH_SHOW "\" includes invalid characters for a local "
                                                    "volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
                                                    path, source);
                                goto out;
                        }
                        m->source = strdup(source);
                        if (!m->source) {
                                r = oom();
                                goto out;
                        }
                }
                if (vo) {
                        snprintf(sub, sizeof(sub), "%s.VolumeOptions", path);
                        json_t *v;
                        if (!is_null(v = json_object_get(vo, "NoCopy"))) {
                                if (!json_is_boolean(v)) {
                                        r = moat_error_setx(reterr, -EINVAL, "%s.NoCopy: must be a boolean", sub);
                                        goto out;
                                }
                                m->nocopy = json_is_true(v);
                        }
                        json_t *copy = NULL;
                        char sub2[300];
                        snprintf(sub2, sizeof(sub2), "%s.Labels", sub);
                        if (!is_null(v = json_object_get(vo, "Labels"))) {
                                if ((r = copy_kind(v, K_STRMAP, sub2, &copy, reterr)) < 0)
                                        goto out;
                                json_decref(copy);
                        }
                        snprintf(sub2, sizeof(sub2), "%s.Subpath", sub);
                        if (!is_null(v = json_object_get(vo, "Subpath"))) {
                                if ((r = check_string(v, sub2, reterr)) < 0)
                                        goto out;
                                if (!*source && json_string_length(v) > 0) {
                                        r = moat_error_setx(reterr, -EINVAL, "%s: needs a named volume (Source)", sub2);
                                        goto out;
                                }
                        }
                        snprintf(sub2, sizeof(sub2), "%s.DriverConfig", sub);
                        if (!is_null(v = json_object_get(vo, "DriverConfig"))) {
                                if (!json_is_object(v)) {
                                        r = moat_error_setx(reterr, -EINVAL, "%s: must be an object", sub2);
                                        goto out;
                                }
                                json_t *name = json_object_get(v, "Name"), *opts = json_object_get(v, "Options");
                                char sub3[330];
                                snprintf(sub3, sizeof(sub3), "%s.Name", sub2);
                                if (!is_null(name) && (r = check_string(name, sub3, reterr)) < 0)
                                        goto out;
                                if (json_is_string(name) && *json_string_value(name) &&
                                    !streq(json_string_value(name), "local")) {
                                        r = moat_error_setx(reterr, -EOPNOTSUPP,
                                                            "%s: volume driver \"" PATH_SHOW "\" is not supported (only \"local\")",
                                                            sub3, json_string_value(name));
                                        goto out;
                                }
                                snprintf(sub3, sizeof(sub3), "%s.Options", sub2);
                                if (!is_null(opts)) {
                                        if ((r = copy_kind(opts, K_STRMAP, sub3, &copy, reterr)) < 0)
                                                goto out;
                                        json_decref(copy);
                                }
                        }
                }
                m->volume_options = vo ? json_object_get(e, "VolumeOptions") : NULL;
                break;
        case M_TMPFS:
                if ((r = check_no_member(t, "BindOptions", type, path, reterr)) < 0 ||
                    (r = check_no_member(t, "VolumeOptions", type, path, reterr)) < 0)
                        goto out;
                if (*source) {
                        r = moat_error_setx(reterr, -EINVAL,
                                            "%s: invalid mount config for type \"tmpfs\": field Source must not be specified",
                                            path);
                        goto out;
                }
                r = tmpfs_data_from_options(to, m->ro, path, &m->tmpfs_data, reterr);
                if (r < 0)
                        goto out;
                break;
        }
        r = 0;
out:
        json_decref(t);
        if (r < 0) {
                umount_done(m);
                *m = (struct umount){};
        }
        return r;
}

/* Tmpfs options that may be given (HostConfig.Tmpfs values, TmpfsOptions):
 * what tmpfs and the generic mount flags take. Anything else (rbind...)
 * would change what kind of mount the runtime makes. */
static bool tmpfs_option_allowed(const char *o)
{
        static const char *const flags[] = {
                "ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "diratime",
                "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime", "sync", "async", "dirsync",
                "private", "rprivate", "shared", "rshared", "slave", "rslave", "tmpcopyup", "notmpcopyup",
                "noswap",
        };
        static const char *const keys[] = { "size=", "mode=", "uid=", "gid=", "nr_inodes=", "nr_blocks=", "huge=",
                                            "mpol=" };
        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                if (streq(o, flags[i]))
                        return true;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (startswith(o, keys[i]) && o[strlen(keys[i])])
                        return true;
        return false;
}

static int check_tmpfs_data(const char *data, const char *path, struct moat_error **reterr)
{
        _cleanup_free_ char *copy = strdup(data);
        if (!copy)
                return oom();
        for (char *save = NULL, *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
                if (!tmpfs_option_allowed(o))
                        return moat_error_setx(reterr, -EINVAL, "%s: unknown tmpfs option \"" PATH_SHOW "\"", path, o);
        return 0;
}

/* ---- capabilities -------------------------------------------------------- */

static int capability_number(const char *raw, int *ret)
{
        char name[64];
        size_t n = strlen(raw);
        if (n >= sizeof(name) - 4)
                return -EINVAL;
        size_t o = 0;
        if (strncasecmp(raw, "CAP_", 4) != 0) {
                memcpy(name, "CAP_", 4);
                o = 4;
        }
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) raw[i];
                if (!isalnum(ch) && ch != '_')
                        return -EINVAL;
                name[o++] = (char) toupper(ch);
        }
        name[o] = '\0';
        cap_value_t v;
        if (cap_from_name(name, &v) < 0 || v < 0 || v >= 64)
                return -EINVAL;
        char *back = cap_to_name(v);
        if (!back)
                return -ENOMEM;
        bool same = strcasecmp(back, name) == 0;
        cap_free(back);
        if (!same)
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

static int cap_list(const json_t *list, const char *path, uint64_t all, uint64_t *mask, bool *has_all,
                    struct moat_error **reterr)
{
        *mask = 0;
        *has_all = false;
        for (size_t i = 0; list && i < json_array_size(list); i++) {
                const char *s = json_string_value(json_array_get(list, i));
                if (!s)
                        return moat_error_setx(reterr, -EINVAL, "%s[%zu]: must be a string", path, i);
                if (strcasecmp(s, "ALL") == 0) {
                        *has_all = true;
                        continue;
                }
                int cap;
                int r = capability_number(s, &cap);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || !(all & (UINT64_C(1) << cap)))
                        return moat_error_setx(reterr, -EINVAL, "%s: unknown capability: \"" PATH_SHOW "\"", path, s);
                *mask |= UINT64_C(1) << cap;
        }
        return 0;
}

int moat_docker_capabilities(uint64_t base, uint64_t all, const json_t *add, const json_t *drop, bool privileged,
                             uint64_t *ret, struct moat_error **reterr)
{
        uint64_t a, d;
        bool add_all, drop_all;
        int r;

        r = cap_list(add, "HostConfig.CapAdd", all, &a, &add_all, reterr);
        if (r < 0)
                return r;
        r = cap_list(drop, "HostConfig.CapDrop", all, &d, &drop_all, reterr);
        if (r < 0)
                return r;
        if (privileged)
                *ret = all;
        else if (add_all)
                *ret = all & ~d;
        else if (drop_all)
                *ret = a;
        else
                *ret = (base & ~d) | a;
        return 0;
}

/* What "all capabilities" can mean: those the kernel knows that this
 * process (the daemon) holds in its bounding and permitted sets, as moby
 * grants privileged containers its own bounding set. A host whose root
 * lacks one (CAP_SYS_RESOURCE here) cannot hand it out. */
static uint64_t all_capabilities;
static pthread_once_t all_capabilities_once = PTHREAD_ONCE_INIT;

static void all_capabilities_init(void)
{
        uint64_t m = 0;
        int max = cap_max_bits();
        cap_t self = cap_get_proc();
        if (max <= 0 || max > 64)
                max = CAP_LAST_CAP + 1;
        for (int i = 0; i < max; i++) {
                char *n = cap_to_name((cap_value_t) i);
                cap_flag_value_t permitted = CAP_SET;
                if (!n)
                        continue;
                if (self && cap_get_flag(self, (cap_value_t) i, CAP_PERMITTED, &permitted) < 0)
                        permitted = CAP_CLEAR;
                if (strncasecmp(n, "cap_", 4) == 0 && cap_get_bound((cap_value_t) i) == 1 && permitted == CAP_SET)
                        m |= UINT64_C(1) << i;
                cap_free(n);
        }
        if (self)
                cap_free(self);
        all_capabilities = m;
}

/* The daemon's own sets do not change while it runs: read once. */
uint64_t moat_docker_all_capabilities(void)
{
        pthread_once(&all_capabilities_once, all_capabilities_init);
        return all_capabilities;
}

json_t *moat_docker_capabilities_json(uint64_t mask)
{
        json_t *a = json_array();
        for (int i = 0; a && i < 64; i++) {
                if (!(mask & (UINT64_C(1) << i)))
                        continue;
                char *n = cap_to_name((cap_value_t) i);
                if (!n) {
                        json_decref(a);
                        return NULL;
                }
                for (char *c = n; *c; c++)
                        *c = (char) toupper((unsigned char) *c);
                int r = append(a, json_string(n));
                cap_free(n);
                if (r < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}

/* ---- parse --------------------------------------------------------------- */

void moat_docker_create_free(struct moat_docker_create *c)
{
        if (!c)
                return;
        json_decref(c->config);
        json_decref(c->host_config);
        json_decref(c->networking_config);
        json_decref(c->warnings);
        free(c);
}

static const struct field config_fields[] = {
        { "Hostname", K_STRING, D_EMPTY_STRING },
        { "Domainname", K_STRING, D_EMPTY_STRING },
        { "User", K_STRING, D_EMPTY_STRING },
        { "AttachStdin", K_BOOL, D_FALSE },
        { "AttachStdout", K_BOOL, D_FALSE },
        { "AttachStderr", K_BOOL, D_FALSE },
        { "ExposedPorts", K_SETMAP, D_OMIT },
        { "Tty", K_BOOL, D_FALSE },
        { "OpenStdin", K_BOOL, D_FALSE },
        { "StdinOnce", K_BOOL, D_FALSE },
        { "Env", K_STRV, D_NULL },
        { "Cmd", K_STRSLICE, D_NULL },
        { "Healthcheck", K_OBJECT, D_OMIT },
        { "ArgsEscaped", K_BOOL, D_OMIT },
        { "Image", K_STRING, D_EMPTY_STRING },
        { "Volumes", K_SETMAP, D_NULL },
        { "WorkingDir", K_STRING, D_EMPTY_STRING },
        { "Entrypoint", K_STRSLICE, D_NULL },
        { "NetworkDisabled", K_BOOL, D_OMIT },
        { "MacAddress", K_STRING, D_OMIT },
        { "OnBuild", K_STRV, D_NULL },
        { "Labels", K_STRMAP, D_EMPTY_OBJECT },
        { "StopSignal", K_STRING, D_OMIT },
        { "StopTimeout", K_INT, D_OMIT },
        { "Shell", K_STRSLICE, D_OMIT },
};

static const struct field host_config_fields[] = {
        { "Binds", K_STRV, D_NULL },
        { "ContainerIDFile", K_STRING, D_EMPTY_STRING },
        { "LogConfig", K_OBJECT, D_EMPTY_OBJECT },
        { "NetworkMode", K_STRING, D_EMPTY_STRING },
        { "PortBindings", K_OBJECT, D_EMPTY_OBJECT },
        { "RestartPolicy", K_OBJECT, D_EMPTY_OBJECT },
        { "AutoRemove", K_BOOL, D_FALSE },
        { "VolumeDriver", K_STRING, D_EMPTY_STRING },
        { "VolumesFrom", K_STRV, D_NULL },
        { "ConsoleSize", K_UINT_PAIR, D_PAIR_ZERO },
        { "Annotations", K_STRMAP, D_OMIT },
        { "CapAdd", K_STRV, D_NULL },
        { "CapDrop", K_STRV, D_NULL },
        { "CgroupnsMode", K_STRING, D_EMPTY_STRING },
        { "Dns", K_STRV, D_EMPTY_ARRAY },
        { "DnsOptions", K_STRV, D_EMPTY_ARRAY },
        { "DnsSearch", K_STRV, D_EMPTY_ARRAY },
        { "ExtraHosts", K_STRV, D_NULL },
        { "GroupAdd", K_STRV, D_NULL },
        { "IpcMode", K_STRING, D_EMPTY_STRING },
        { "Cgroup", K_STRING, D_EMPTY_STRING },
        { "Links", K_STRV, D_NULL },
        { "OomScoreAdj", K_INT, D_ZERO },
        { "PidMode", K_STRING, D_EMPTY_STRING },
        { "Privileged", K_BOOL, D_FALSE },
        { "PublishAllPorts", K_BOOL, D_FALSE },
        { "ReadonlyRootfs", K_BOOL, D_FALSE },
        { "SecurityOpt", K_STRV, D_NULL },
        { "StorageOpt", K_STRMAP, D_OMIT },
        { "Tmpfs", K_STRMAP, D_OMIT },
        { "UTSMode", K_STRING, D_EMPTY_STRING },
        { "UsernsMode", K_STRING, D_EMPTY_STRING },
        { "ShmSize", K_INT, D_ZERO },
        { "Sysctls", K_STRMAP, D_OMIT },
        { "Runtime", K_STRING, D_EMPTY_STRING },
        { "Isolation", K_STRING, D_EMPTY_STRING },
        { "CpuShares", K_INT, D_ZERO },
        { "Memory", K_INT, D_ZERO },
        { "NanoCpus", K_INT, D_ZERO },
        { "CgroupParent", K_STRING, D_EMPTY_STRING },
        { "BlkioWeight", K_INT, D_ZERO },
        { "BlkioWeightDevice", K_ARRAY, D_EMPTY_ARRAY },
        { "BlkioDeviceReadBps", K_ARRAY, D_EMPTY_ARRAY },
        { "BlkioDeviceWriteBps", K_ARRAY, D_EMPTY_ARRAY },
        { "BlkioDeviceReadIOps", K_ARRAY, D_EMPTY_ARRAY },
        { "BlkioDeviceWriteIOps", K_ARRAY, D_EMPTY_ARRAY },
        { "CpuPeriod", K_INT, D_ZERO },
        { "CpuQuota", K_INT, D_ZERO },
        { "CpuRealtimePeriod", K_INT, D_ZERO },
        { "CpuRealtimeRuntime", K_INT, D_ZERO },
        { "CpusetCpus", K_STRING, D_EMPTY_STRING },
        { "CpusetMems", K_STRING, D_EMPTY_STRING },
        { "Devices", K_ARRAY, D_EMPTY_ARRAY },
        { "DeviceCgroupRules", K_STRV, D_NULL },
        { "DeviceRequests", K_ARRAY, D_NULL },
        { "MemoryReservation", K_INT, D_ZERO },
        { "MemorySwap", K_INT, D_ZERO },
        { "MemorySwappiness", K_INT_OR_NULL, D_NULL },
        { "OomKillDisable", K_BOOL_OR_NULL, D_NULL },
        { "PidsLimit", K_INT_OR_NULL, D_NULL },
        { "Ulimits", K_ARRAY, D_EMPTY_ARRAY },
        { "CpuCount", K_INT, D_ZERO },
        { "CpuPercent", K_INT, D_ZERO },
        { "IOMaximumIOps", K_INT, D_ZERO },
        { "IOMaximumBandwidth", K_INT, D_ZERO },
        { "MaskedPaths", K_STRV, D_OMIT },
        { "ReadonlyPaths", K_STRV, D_OMIT },
        { "Mounts", K_ARRAY, D_OMIT },
        { "Init", K_BOOL_OR_NULL, D_OMIT },
};

#define FAIL(r, ...) moat_error_setx(reterr, r, __VA_ARGS__)

static int check_healthcheck(json_t *hc, struct moat_error **reterr)
{
        static const struct field fields[] = {
                { "Test", K_STRV, D_OMIT },      { "Interval", K_INT, D_OMIT },  { "Timeout", K_INT, D_OMIT },
                { "StartPeriod", K_INT, D_OMIT }, { "StartInterval", K_INT, D_OMIT }, { "Retries", K_INT, D_OMIT },
        };
        _cleanup_(json_decrefp) json_t *t = json_object();
        if (!t)
                return oom();
        int r = copy_fields(hc, "Healthcheck", fields, ELEMENTSOF(fields), t, reterr);
        if (r < 0)
                return r;
        json_t *test = json_object_get(t, "Test");
        if (json_array_size(test) > 0) {
                const char *kind = json_string_value(json_array_get(test, 0));
                if (!streq(kind, "NONE") && !streq(kind, "CMD") && !streq(kind, "CMD-SHELL"))
                        return FAIL(-EINVAL, "Healthcheck.Test[0]: must be NONE, CMD or CMD-SHELL, not \"" PATH_SHOW "\"",
                                    kind);
                if (!streq(kind, "NONE") && json_array_size(test) < 2)
                        return FAIL(-EINVAL, "Healthcheck.Test: %s needs a command", kind);
        }
        static const char *const durations[] = { "Interval", "Timeout", "StartPeriod", "StartInterval" };
        for (size_t i = 0; i < ELEMENTSOF(durations); i++) {
                int64_t v = iget(t, durations[i]);
                if (v != 0 && v < MIN_DURATION_NS)
                        return FAIL(-EINVAL, "Healthcheck.%s: %s in Healthcheck cannot be less than 1ms", durations[i],
                                    durations[i]);
        }
        if (iget(t, "Retries") < 0)
                return FAIL(-EINVAL, "Healthcheck.Retries: Retries in Healthcheck cannot be negative");
        /* Keep exactly what was given (docker stores it as sent). */
        return 0;
}

static int check_port(const char *p, const char *path, struct moat_error **reterr)
{
        const char *slash = strchr(p, '/');
        const char *proto = slash ? slash + 1 : "tcp";
        size_t n = slash ? (size_t) (slash - p) : strlen(p);
        char num[16];
        if (n == 0 || n >= sizeof(num))
                goto bad;
        memcpy(num, p, n);
        num[n] = '\0';
        /* "80" or "8000-8010" */
        char *dash = strchr(num, '-');
        unsigned long lo, hi;
        char *end;
        errno = 0;
        lo = strtoul(num, &end, 10);
        if (end == num || (dash ? end != dash : *end) || lo > 65535)
                goto bad;
        hi = lo;
        if (dash) {
                hi = strtoul(dash + 1, &end, 10);
                if (end == dash + 1 || *end || hi > 65535 || hi < lo)
                        goto bad;
        }
        if (!streq(proto, "tcp") && !streq(proto, "udp") && !streq(proto, "sctp"))
                goto bad;
        return 0;
bad:
        return FAIL(-EINVAL, "%s: invalid port \"" PATH_SHOW "\"", path, p);
}

/* "0-3,5" (moby's parsers.ParseUintList); *max_seen the largest number. */
static int parse_uint_list(const char *s, unsigned long *max_seen)
{
        const char *p = s;
        *max_seen = 0;
        if (!*s)
                return 0;
        for (;;) {
                char *end;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                unsigned long lo = strtoul(p, &end, 10), hi = lo;
                if (lo > 65535)
                        return -EINVAL;
                p = end;
                if (*p == '-') {
                        p++;
                        if (!isdigit((unsigned char) *p))
                                return -EINVAL;
                        hi = strtoul(p, &end, 10);
                        if (hi > 65535 || hi < lo)
                                return -EINVAL;
                        p = end;
                }
                if (hi > *max_seen)
                        *max_seen = hi;
                if (!*p)
                        return 0;
                if (*p != ',')
                        return -EINVAL;
                p++;
        }
}

static const struct {
        const char *name;
        const char *oci;
} ulimit_names[] = {
        { "core", "RLIMIT_CORE" },       { "cpu", "RLIMIT_CPU" },         { "data", "RLIMIT_DATA" },
        { "fsize", "RLIMIT_FSIZE" },     { "locks", "RLIMIT_LOCKS" },     { "memlock", "RLIMIT_MEMLOCK" },
        { "msgqueue", "RLIMIT_MSGQUEUE" }, { "nice", "RLIMIT_NICE" },     { "nofile", "RLIMIT_NOFILE" },
        { "nproc", "RLIMIT_NPROC" },     { "rss", "RLIMIT_RSS" },         { "rtprio", "RLIMIT_RTPRIO" },
        { "rttime", "RLIMIT_RTTIME" },   { "sigpending", "RLIMIT_SIGPENDING" }, { "stack", "RLIMIT_STACK" },
};

static const char *ulimit_oci_name(const char *n)
{
        for (size_t i = 0; i < ELEMENTSOF(ulimit_names); i++)
                if (streq(n, ulimit_names[i].name))
                        return ulimit_names[i].oci;
        return NULL;
}

static int check_ulimits(json_t *list, struct moat_error **reterr)
{
        char path[64];
        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *u = json_array_get(list, i);
                snprintf(path, sizeof(path), "HostConfig.Ulimits[%zu]", i);
                static const struct field fields[] = {
                        { "Name", K_STRING, D_EMPTY_STRING },
                        { "Soft", K_INT, D_ZERO },
                        { "Hard", K_INT, D_ZERO },
                };
                if (!json_is_object(u))
                        return FAIL(-EINVAL, "%s: must be an object", path);
                json_t *t = json_object();
                if (!t)
                        return oom();
                int r = copy_fields(u, path, fields, ELEMENTSOF(fields), t, reterr);
                if (r < 0) {
                        json_decref(t);
                        return r;
                }
                const char *name = sget(t, "Name");
                int64_t soft = iget(t, "Soft"), hard = iget(t, "Hard");
                if (!ulimit_oci_name(name))
                        r = FAIL(-EINVAL, "%s.Name: invalid ulimit type: " PATH_SHOW, path, name);
                else if (soft < -1 || hard < -1)
                        r = FAIL(-EINVAL, "%s: ulimit values must be >= -1 (-1: unlimited)", path);
                else if (hard != -1 && (soft == -1 || soft > hard))
                        r = FAIL(-EINVAL, "%s: ulimit soft limit must be less than or equal to hard limit: %" PRId64
                                          " > %" PRId64,
                                 path, soft, hard);
                else
                        r = json_array_set_new(list, i, t) < 0 ? oom() : 0;
                if (r < 0) {
                        json_decref(t);
                        return r;
                }
        }
        return 0;
}

static bool valid_perms(const char *p)
{
        if (!*p || strlen(p) > 3)
                return false;
        for (const char *c = p; *c; c++)
                if (!strchr("rwm", *c) || strchr(c + 1, *c))
                        return false;
        return true;
}

static int check_devices(json_t *list, struct moat_error **reterr)
{
        char path[64];
        for (size_t i = 0; i < json_array_size(list); i++) {
                json_t *d = json_array_get(list, i);
                snprintf(path, sizeof(path), "HostConfig.Devices[%zu]", i);
                static const struct field fields[] = {
                        { "PathOnHost", K_STRING, D_EMPTY_STRING },
                        { "PathInContainer", K_STRING, D_EMPTY_STRING },
                        { "CgroupPermissions", K_STRING, D_EMPTY_STRING },
                };
                if (!json_is_object(d))
                        return FAIL(-EINVAL, "%s: must be an object", path);
                json_t *t = json_object();
                if (!t)
                        return oom();
                int r = copy_fields(d, path, fields, ELEMENTSOF(fields), t, reterr);
                if (r < 0) {
                        json_decref(t);
                        return r;
                }
                if (!*sget(t, "PathInContainer"))
                        r = set(t, "PathInContainer", json_string(sget(t, "PathOnHost")));
                if (r >= 0 && !*sget(t, "CgroupPermissions"))
                        r = set(t, "CgroupPermissions", json_string("rwm"));
                if (r < 0) {
                        json_decref(t);
                        return r;
                }
                if (sget(t, "PathOnHost")[0] != '/')
                        r = FAIL(-EINVAL, "%s.PathOnHost: \"" PATH_SHOW "\" is not an absolute path", path,
                                 sget(t, "PathOnHost"));
                else if (sget(t, "PathInContainer")[0] != '/')
                        r = FAIL(-EINVAL, "%s.PathInContainer: \"" PATH_SHOW "\" is not an absolute path", path,
                                 sget(t, "PathInContainer"));
                else if (!valid_perms(sget(t, "CgroupPermissions")))
                        r = FAIL(-EINVAL, "%s.CgroupPermissions: invalid device mode: " PATH_SHOW, path,
                                 sget(t, "CgroupPermissions"));
                else
                        r = json_array_set_new(list, i, t) < 0 ? oom() : 0;
                if (r < 0) {
                        json_decref(t);
                        return r;
                }
        }
        return 0;
}

/* "c 1:3 rwm", "b *:* m", "a" (moby's device cgroup rule format). */
static int parse_cgroup_rule(const char *s, json_t **ret)
{
        char type;
        char maj[16], min[16], access[8];
        int n = 0;
        if (strlen(s) > 64 || sscanf(s, "%c %15[0-9*]:%15[0-9*] %7s%n", &type, maj, min, access, &n) != 4 ||
            (size_t) n != strlen(s) || !strchr("acb", type) || !valid_perms(access))
                return -EINVAL;
        json_t *rule = json_pack("{s:b, s:s#, s:s}", "allow", 1, "type", &type, (size_t) 1, "access", access);
        if (!rule)
                return -ENOMEM;
        const char *parts[2] = { maj, min };
        const char *keys[2] = { "major", "minor" };
        for (size_t i = 0; i < 2; i++) {
                if (streq(parts[i], "*"))
                        continue;
                if (strchr(parts[i], '*') || strlen(parts[i]) > 9) {
                        json_decref(rule);
                        return -EINVAL;
                }
                if (set(rule, keys[i], json_integer(strtoll(parts[i], NULL, 10))) < 0) {
                        json_decref(rule);
                        return -ENOMEM;
                }
        }
        *ret = rule;
        return 0;
}

static bool ns_mode_valid(const char *m, bool allow_private, bool allow_container, bool allow_none)
{
        if (!*m || streq(m, "host"))
                return true;
        if (allow_private && (streq(m, "private") || streq(m, "shareable")))
                return true;
        if (allow_none && streq(m, "none"))
                return true;
        if (allow_container && startswith(m, "container:") && m[10])
                return true;
        return false;
}

static int check_security_opts(const json_t *opts, struct moat_error **reterr)
{
        for (size_t i = 0; i < json_array_size(opts); i++) {
                const char *o = json_string_value(json_array_get(opts, i));
                char path[64];
                snprintf(path, sizeof(path), "HostConfig.SecurityOpt[%zu]", i);
                if (streq(o, "no-new-privileges") || streq(o, "disable"))
                        continue;
                const char *eq = strchr(o, '='), *colon = strchr(o, ':');
                const char *sep = eq ? eq : colon;
                if (!sep)
                        return FAIL(-EINVAL, "%s: invalid --security-opt 1: \"" PATH_SHOW "\"", path, o);
                size_t kl = (size_t) (sep - o);
                const char *v = sep + 1;
                if (kl == 5 && !strncmp(o, "label", 5)) {
                        if (!streq(v, "disable"))
                                return FAIL(-EOPNOTSUPP,
                                            "%s: \"" PATH_SHOW "\": SELinux is not active on this host; only label=disable "
                                            "is accepted",
                                            path, o);
                } else if (kl == 8 && !strncmp(o, "apparmor", 8)) {
                        if (!streq(v, "unconfined"))
                                return FAIL(-EOPNOTSUPP,
                                            "%s: \"" PATH_SHOW "\": AppArmor is not active on this host; only "
                                            "apparmor=unconfined is accepted",
                                            path, o);
                } else if (kl == 7 && !strncmp(o, "seccomp", 7)) {
                        if (!*v)
                                return FAIL(-EINVAL, "%s: seccomp needs a profile, a file or \"unconfined\"", path);
                } else if (kl == 17 && !strncmp(o, "no-new-privileges", 17)) {
                        bool b;
                        if (parse_go_bool(v, &b) < 0)
                                return FAIL(-EINVAL, "%s: invalid --security-opt 2: \"" PATH_SHOW "\"", path, o);
                } else if (kl == 11 && !strncmp(o, "systempaths", 11)) {
                        if (!streq(v, "unconfined"))
                                return FAIL(-EINVAL, "%s: invalid --security-opt 2: \"" PATH_SHOW "\"", path, o);
                } else
                        return FAIL(-EINVAL, "%s: invalid --security-opt 2: \"" PATH_SHOW "\"", path, o);
        }
        return 0;
}

/* HostConfig's per-device block I/O lists: the field, its value's key,
 * and the OCI linux.resources.blockIO list each becomes. */
static const struct {
        const char *field, *value, *oci, *oci_value;
} blkio_lists[] = {
        { "BlkioWeightDevice", "Weight", "weightDevice", "weight" },
        { "BlkioDeviceReadBps", "Rate", "throttleReadBpsDevice", "rate" },
        { "BlkioDeviceWriteBps", "Rate", "throttleWriteBpsDevice", "rate" },
        { "BlkioDeviceReadIOps", "Rate", "throttleReadIOPSDevice", "rate" },
        { "BlkioDeviceWriteIOps", "Rate", "throttleWriteIOPSDevice", "rate" },
};
#define BLKIO_DEVICES_MAX 64u
#define VOLUMES_FROM_MAX 64u

static int check_resources(json_t *hc, const struct moat_docker_host *host, json_t *warnings,
                           struct moat_error **reterr)
{
        int64_t memory = iget(hc, "Memory"), swap = iget(hc, "MemorySwap"), reservation = iget(hc, "MemoryReservation");
        json_t *swappiness = json_object_get(hc, "MemorySwappiness");
        int64_t nano = iget(hc, "NanoCpus"), period = iget(hc, "CpuPeriod"), quota = iget(hc, "CpuQuota");
        unsigned ncpus = 1;
        int r;

        /* Only NanoCpus and CpusetCpus need it, and sysconf reads a file. */
        if (nano != 0 || *sget(hc, "CpusetCpus"))
                ncpus = host && host->ncpus ? host->ncpus : (unsigned) sysconf(_SC_NPROCESSORS_ONLN);
        if (ncpus == 0)
                ncpus = 1;
        if (memory < 0)
                return FAIL(-EINVAL, "HostConfig.Memory: invalid memory limit %" PRId64, memory);
        if (memory != 0 && memory < MIN_MEMORY)
                return FAIL(-EINVAL, "HostConfig.Memory: Minimum memory limit allowed is 6MB");
        if (swap < -1)
                return FAIL(-EINVAL, "HostConfig.MemorySwap: invalid memory swap limit %" PRId64, swap);
        if (memory > 0 && swap == 0) {
                if ((r = set(hc, "MemorySwap", json_integer(memory > INT64_MAX / 2 ? -1 : memory * 2))) < 0)
                        return r;
                swap = iget(hc, "MemorySwap");
        }
        if (memory > 0 && swap != -1 && host && host->no_swap_limit) {
                if ((r = warn(warnings, "Your kernel does not support swap limit capabilities or the cgroup is not "
                                        "mounted. Memory limited without swap.")) < 0 ||
                    (r = set(hc, "MemorySwap", json_integer(-1))) < 0)
                        return r;
                swap = -1;
        }
        if (memory > 0 && swap > 0 && swap < memory)
                return FAIL(-EINVAL,
                            "HostConfig.MemorySwap: Minimum memoryswap limit should be larger than memory limit, see usage");
        if (memory == 0 && swap > 0)
                return FAIL(-EINVAL,
                            "HostConfig.MemorySwap: You should always set the Memory limit when using Memoryswap limit, "
                            "see usage");
        if (!json_is_null(swappiness) && host && host->no_memory_swappiness) {
                if ((r = warn(warnings, "Your kernel does not support memory swappiness capabilities or the cgroup is "
                                        "not mounted. Memory swappiness discarded.")) < 0 ||
                    (r = set(hc, "MemorySwappiness", json_null())) < 0)
                        return r;
                swappiness = json_object_get(hc, "MemorySwappiness");
        }
        /* -1 is docker's "not set" (fixMemorySwappiness) */
        if (json_is_integer(swappiness) && json_integer_value(swappiness) == -1) {
                if ((r = set(hc, "MemorySwappiness", json_null())) < 0)
                        return r;
                swappiness = json_object_get(hc, "MemorySwappiness");
        }
        if (json_is_integer(swappiness) && (json_integer_value(swappiness) < 0 || json_integer_value(swappiness) > 100))
                return FAIL(-EINVAL, "HostConfig.MemorySwappiness: Invalid value: %" PRId64
                                     ", valid memory swappiness range is 0-100",
                            (int64_t) json_integer_value(swappiness));
        if (reservation < 0)
                return FAIL(-EINVAL, "HostConfig.MemoryReservation: invalid memory reservation %" PRId64, reservation);
        if (reservation > 0 && reservation < MIN_MEMORY)
                return FAIL(-EINVAL, "HostConfig.MemoryReservation: Minimum memory reservation allowed is 6MB");
        if (memory > 0 && reservation > 0 && memory < reservation)
                return FAIL(-EINVAL, "HostConfig.MemoryReservation: Minimum memory limit can not be less than memory "
                                     "reservation limit, see usage");

        json_t *oomk = json_object_get(hc, "OomKillDisable");
        if (json_is_true(oomk) && host && host->no_oom_kill_disable) {
                if ((r = warn(warnings, "Your kernel does not support OomKillDisable. OomKillDisable discarded.")) < 0)
                        return r;
                if ((r = set(hc, "OomKillDisable", json_false())) < 0)
                        return r;
        } else if (json_is_true(oomk) && memory == 0) {
                if ((r = warn(warnings, "OOM killer is disabled for the container, but no memory limit is set, this "
                                        "can result in the system running out of resources.")) < 0)
                        return r;
        }
        if (json_is_null(oomk) && (r = set(hc, "OomKillDisable", json_false())) < 0)
                return r;

        if (nano > 0 && period > 0)
                return FAIL(-EINVAL, "HostConfig.NanoCpus: Conflicting options: Nano CPUs and CPU Period cannot both be set");
        if (nano > 0 && quota > 0)
                return FAIL(-EINVAL, "HostConfig.NanoCpus: Conflicting options: Nano CPUs and CPU Quota cannot both be set");
        if (nano < 0 || nano > (int64_t) ncpus * INT64_C(1000000000))
                return FAIL(-EINVAL, "HostConfig.NanoCpus: Range of CPUs is from 0.01 to %u.00, as there are only %u CPUs "
                                     "available",
                            ncpus, ncpus);
        if (iget(hc, "CpuShares") < 0)
                return FAIL(-EINVAL, "HostConfig.CpuShares: shares: invalid argument");
        if (period != 0 && (period < 1000 || period > 1000000))
                return FAIL(-EINVAL, "HostConfig.CpuPeriod: CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                                     "than 1s (i.e. 1000000)");
        if (quota > 0 && quota < 1000)
                return FAIL(-EINVAL, "HostConfig.CpuQuota: CPU cfs quota can not be less than 1ms (i.e. 1000)");
        if (quota < -1)
                return FAIL(-EINVAL, "HostConfig.CpuQuota: invalid CPU quota %" PRId64 " (-1: unlimited)", quota);
        if (iget(hc, "CpuRealtimePeriod") != 0 || iget(hc, "CpuRealtimeRuntime") != 0)
                return FAIL(-EOPNOTSUPP, "HostConfig.CpuRealtimePeriod: real-time CPU scheduling limits are not supported");
        if (iget(hc, "CpuPercent") > 0 || iget(hc, "CpuCount") > 0) {
                if ((r = warn(warnings, "linux does not support CPU count or CPU percent. Discarded.")) < 0 ||
                    (r = set(hc, "CpuPercent", json_integer(0))) < 0 || (r = set(hc, "CpuCount", json_integer(0))) < 0)
                        return r;
        }
        if (iget(hc, "IOMaximumBandwidth") != 0 || iget(hc, "IOMaximumIOps") != 0)
                return FAIL(-EINVAL, "HostConfig.IOMaximumBandwidth: Invalid QoS settings: linux does not support Maximum "
                                     "IO Bandwidth or Maximum IO IOps");

        unsigned long max_seen;
        const char *cpus = sget(hc, "CpusetCpus"), *mems = sget(hc, "CpusetMems");
        if (parse_uint_list(cpus, &max_seen) < 0)
                return FAIL(-EINVAL, "HostConfig.CpusetCpus: Invalid value " PATH_SHOW " for cpuset cpus", cpus);
        if (*cpus && max_seen >= ncpus)
                return FAIL(-EINVAL, "HostConfig.CpusetCpus: Requested CPUs are not available - requested " PATH_SHOW
                                     ", available: 0-%u",
                            cpus, ncpus - 1);
        if (parse_uint_list(mems, &max_seen) < 0)
                return FAIL(-EINVAL, "HostConfig.CpusetMems: Invalid value " PATH_SHOW " for cpuset mems", mems);

        int64_t w = iget(hc, "BlkioWeight");
        if (w != 0 && (w < 10 || w > 1000))
                return FAIL(-EINVAL, "HostConfig.BlkioWeight: Range of blkio weight is from 10 to 1000");
        for (size_t i = 0; i < ELEMENTSOF(blkio_lists); i++) {
                json_t *list = json_object_get(hc, blkio_lists[i].field), *entry;
                size_t k;
                if (json_array_size(list) > BLKIO_DEVICES_MAX)
                        return FAIL(-E2BIG, "HostConfig.%s: more than %u devices", blkio_lists[i].field,
                                    BLKIO_DEVICES_MAX);
                json_array_foreach(list, k, entry) {
                        const char *dev = json_string_value(json_object_get(entry, "Path"));
                        json_t *v = json_object_get(entry, blkio_lists[i].value);
                        if (!json_is_object(entry) || !dev || dev[0] != '/')
                                return FAIL(-EINVAL, "HostConfig.%s[%zu].Path: must be an absolute device path",
                                            blkio_lists[i].field, k);
                        if (!json_is_integer(v) || json_integer_value(v) < 0)
                                return FAIL(-EINVAL, "HostConfig.%s[%zu].%s: must be a number >= 0",
                                            blkio_lists[i].field, k, blkio_lists[i].value);
                        if (i == 0 && (json_integer_value(v) < 10 || json_integer_value(v) > 1000))
                                return FAIL(-EINVAL, "HostConfig.BlkioWeightDevice[%zu].Weight: Range of blkio weight "
                                                     "is from 10 to 1000",
                                            k);
                }
        }
        if (host && host->no_blkio_weight_device && json_array_size(json_object_get(hc, "BlkioWeightDevice")) > 0) {
                if ((r = warn(warnings, "Your kernel does not support Block I/O weight_device or the cgroup is not "
                                        "mounted. Weight-device discarded.")) < 0 ||
                    (r = set(hc, "BlkioWeightDevice", json_array())) < 0)
                        return r;
        }

        if (iget(hc, "ShmSize") < 0)
                return FAIL(-EINVAL, "HostConfig.ShmSize: SHM size can not be less than 0");
        if (iget(hc, "ShmSize") == 0 && (r = set(hc, "ShmSize", json_integer(DEFAULT_SHM_SIZE))) < 0)
                return r;
        int64_t oom_adj = iget(hc, "OomScoreAdj");
        if (oom_adj < -1000 || oom_adj > 1000)
                return FAIL(-EINVAL, "HostConfig.OomScoreAdj: Invalid value %" PRId64
                                     ", range for oom score adj is [-1000, 1000]",
                            oom_adj);
        return 0;
}

static bool is_ip(const char *s)
{
        unsigned char buf[sizeof(struct in6_addr)];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static bool has_space(const char *s)
{
        for (; *s; s++)
                if (isspace((unsigned char) *s))
                        return true;
        return false;
}

/* ExtraHosts ("name:ip" or "name=ip", an IPv6 address maybe in brackets)
 * and the DNS settings, which go into the container's /etc/hosts and
 * /etc/resolv.conf (container-fs.c); normalised to "name:ip". */
static int check_hosts_and_dns(json_t *hc, struct moat_error **reterr)
{
        json_t *list = json_object_get(hc, "ExtraHosts");
        for (size_t i = 0; i < json_array_size(list); i++) {
                const char *e = json_string_value(json_array_get(list, i));
                size_t n = strcspn(e, "=:");
                char ip[INET6_ADDRSTRLEN + 2];
                if (n == 0 || !e[n] || has_space(e) || strlen(e + n + 1) >= sizeof(ip))
                        return FAIL(-EINVAL, "HostConfig.ExtraHosts[%zu]: invalid argument " PATH_SHOW
                                             " for add-host: expected host:ip",
                                    i, e);
                snprintf(ip, sizeof(ip), "%s", e + n + 1);
                if (streq(ip, "host-gateway"))
                        return FAIL(-EOPNOTSUPP, "HostConfig.ExtraHosts[%zu]: host-gateway needs a bridge network, "
                                                 "which is not supported yet",
                                    i);
                char *addr = ip;
                if (addr[0] == '[' && addr[strlen(addr) - 1] == ']') {
                        addr[strlen(addr) - 1] = '\0';
                        addr++;
                }
                if (!is_ip(addr))
                        return FAIL(-EINVAL, "HostConfig.ExtraHosts[%zu]: invalid IP address in add-host: " PATH_SHOW, i,
                                    e + n + 1);
                json_t *norm = json_sprintf("%.*s:%s", (int) n, e, addr);
                if (!norm || json_array_set_new(list, i, norm) < 0)
                        return oom();
        }
        list = json_object_get(hc, "Dns");
        for (size_t i = 0; i < json_array_size(list); i++)
                if (!is_ip(json_string_value(json_array_get(list, i))))
                        return FAIL(-EINVAL, "HostConfig.Dns[%zu]: " PATH_SHOW " is not an IP address", i,
                                    json_string_value(json_array_get(list, i)));
        const char *fields[] = { "DnsSearch", "DnsOptions" };
        for (size_t f = 0; f < ELEMENTSOF(fields); f++) {
                list = json_object_get(hc, fields[f]);
                for (size_t i = 0; i < json_array_size(list); i++) {
                        const char *v = json_string_value(json_array_get(list, i));
                        if (!*v || has_space(v) || strlen(v) > 253)
                                return FAIL(-EINVAL, "HostConfig.%s[%zu]: " PATH_SHOW " is not a %s", fields[f], i, v,
                                            f == 0 ? "domain" : "resolver option");
                }
        }
        return 0;
}

static int check_network(struct moat_docker_create *c, const json_t *body, struct moat_error **reterr)
{
        json_t *hc = c->host_config;
        const char *mode = sget(hc, "NetworkMode");
        int r;

        if (!*mode || streq(mode, "default") || (bget(c->config, "NetworkDisabled") && !streq(mode, "host")))
                mode = "none";
        else if (streq(mode, "bridge"))
                return FAIL(-EOPNOTSUPP, "HostConfig.NetworkMode: bridge networking is not supported yet");
        else if (startswith(mode, "container:")) {
                if (!mode[10])
                        return FAIL(-EINVAL, "HostConfig.NetworkMode: invalid container format container:<name|id>");
                if (*sget(c->config, "Hostname"))
                        return FAIL(-EINVAL, "Config.Hostname: conflicting options: hostname and the network mode");
                if (json_array_size(json_object_get(hc, "Dns")) > 0 || json_array_size(json_object_get(hc, "DnsSearch")) > 0 ||
                    json_array_size(json_object_get(hc, "DnsOptions")) > 0)
                        return FAIL(-EINVAL, "HostConfig.Dns: conflicting options: dns and the network mode");
                if (json_array_size(json_object_get(hc, "ExtraHosts")) > 0)
                        return FAIL(-EINVAL, "HostConfig.ExtraHosts: conflicting options: custom host-to-IP mapping and "
                                             "the network mode");
        } else if (!streq(mode, "none") && !streq(mode, "host"))
                return FAIL(-EOPNOTSUPP, "HostConfig.NetworkMode: network " PATH_SHOW
                                         " not found (user-defined networks are not supported yet)",
                            mode);
        if (!startswith(mode, "container:") && (r = check_hosts_and_dns(hc, reterr)) < 0)
                return r;
        if ((r = set(hc, "NetworkMode", json_string(mode))) < 0)
                return r;
        /* The set freed the string mode pointed into. */
        mode = c->network_mode = sget(hc, "NetworkMode");

        json_t *pb = json_object_get(hc, "PortBindings");
        if (json_object_size(pb) > 0 || bget(hc, "PublishAllPorts")) {
                if (streq(mode, "host"))
                        return warn(c->warnings, "Published ports are discarded when using host network mode");
                return FAIL(-EOPNOTSUPP, "HostConfig.PortBindings: port publishing is not supported yet");
        }

        json_t *nc = json_object_get(body, "NetworkingConfig");
        if (is_null(nc))
                c->networking_config = json_pack("{s:{}}", "EndpointsConfig");
        else {
                if (!json_is_object(nc))
                        return FAIL(-EINVAL, "NetworkingConfig: must be an object, not %s", json_type_name(nc));
                json_t *ep = json_object_get(nc, "EndpointsConfig");
                if (!is_null(ep)) {
                        if (!json_is_object(ep))
                                return FAIL(-EINVAL, "NetworkingConfig.EndpointsConfig: must be an object");
                        if (json_object_size(ep) > 1)
                                return FAIL(-EINVAL, "NetworkingConfig.EndpointsConfig: Container cannot be connected to "
                                                     "network endpoints of more than one network");
                        const char *k;
                        json_t *v;
                        json_object_foreach(ep, k, v) {
                                if (!json_is_object(v) && !json_is_null(v))
                                        return FAIL(-EINVAL, "NetworkingConfig.EndpointsConfig[\"" PATH_SHOW
                                                             "\"]: must be an object",
                                                    k);
                                bool same = streq(k, mode) || streq(k, sget(body ? json_object_get(body, "HostConfig") : NULL,
                                                                            "NetworkMode")) ||
                                            (streq(mode, "none") && streq(k, "default"));
                                if (!same)
                                        return FAIL(-EOPNOTSUPP, "NetworkingConfig.EndpointsConfig: network " PATH_SHOW
                                                                 " not found (user-defined networks are not supported yet)",
                                                    k);
                        }
                }
                c->networking_config = json_deep_copy(nc);
        }
        return c->networking_config ? 0 : oom();
}

static int check_mounts(json_t *hc, json_t *config, struct moat_error **reterr)
{
        char path[96];
        int r;
        /* destinations seen, for moby's "Duplicate mount point" */
        size_t cap = json_array_size(json_object_get(hc, "Binds")) + json_array_size(json_object_get(hc, "Mounts")) +
                     json_object_size(json_object_get(hc, "Tmpfs")) + 1;
        _cleanup_strv_free_ char **dests = calloc(cap + 1, sizeof(char *));
        size_t nd = 0;
        if (!dests)
                return oom();

#define ADD_DEST(d, p)                                                                                          \
        do {                                                                                                    \
                for (size_t _i = 0; _i < nd; _i++)                                                              \
                        if (streq(dests[_i], (d)))                                                              \
                                return FAIL(-EINVAL, "%s: Duplicate mount point: " PATH_SHOW, (p), (d));        \
                if (!(dests[nd++] = strdup(d)))                                                                 \
                        return oom();                                                                           \
        } while (0)

        json_t *binds = json_object_get(hc, "Binds");
        for (size_t i = 0; i < json_array_size(binds); i++) {
                struct umount m;
                snprintf(path, sizeof(path), "HostConfig.Binds[%zu]", i);
                r = parse_bind(json_string_value(json_array_get(binds, i)), path, &m, reterr);
                if (r < 0)
                        return r;
                bool dup = false;
                for (size_t k = 0; k < nd; k++)
                        dup = dup || streq(dests[k], m.dest);
                if (dup) {
                        r = FAIL(-EINVAL, "%s: Duplicate mount point: " PATH_SHOW, path, m.dest);
                        umount_done(&m);
                        return r;
                }
                dests[nd++] = TAKE_PTR(m.dest);
                umount_done(&m);
        }
        json_t *mounts = json_object_get(hc, "Mounts");
        for (size_t i = 0; i < json_array_size(mounts); i++) {
                struct umount m;
                snprintf(path, sizeof(path), "HostConfig.Mounts[%zu]", i);
                r = parse_mount(json_array_get(mounts, i), path, &m, reterr);
                if (r < 0)
                        return r;
                bool dup = false;
                for (size_t k = 0; k < nd; k++)
                        dup = dup || streq(dests[k], m.dest);
                if (dup) {
                        r = FAIL(-EINVAL, "%s: Duplicate mount point: " PATH_SHOW, path, m.dest);
                        umount_done(&m);
                        return r;
                }
                dests[nd++] = TAKE_PTR(m.dest);
                umount_done(&m);
        }
        json_t *tmpfs = json_object_get(hc, "Tmpfs");
        const char *k;
        json_t *v;
        json_object_foreach(tmpfs, k, v) {
                snprintf(path, sizeof(path), "HostConfig.Tmpfs[\"%.40s\"]", k);
                r = check_destination("tmpfs", k, path, reterr);
                if (r < 0)
                        return r;
                r = check_tmpfs_data(json_string_value(v), path, reterr);
                if (r < 0)
                        return r;
                _cleanup_free_ char *d = clean_path(k);
                if (!d)
                        return oom();
                ADD_DEST(d, path);
        }
        const char *vk;
        json_object_foreach(json_object_get(config, "Volumes"), vk, v) {
                snprintf(path, sizeof(path), "Config.Volumes[\"%.40s\"]", vk);
                r = check_destination("volume", vk, path, reterr);
                if (r < 0)
                        return r;
        }
#undef ADD_DEST
        for (size_t i = 0; i < json_array_size(mounts); i++) {
                json_t *m = json_array_get(mounts, i);
                if (streq(sget(m, "Type"), "tmpfs")) {
                        snprintf(path, sizeof(path), "HostConfig.Mounts[%zu].TmpfsOptions", i);
                        struct umount um;
                        r = parse_mount(m, path, &um, reterr);
                        if (r < 0)
                                return r;
                        r = check_tmpfs_data(um.tmpfs_data, path, reterr);
                        umount_done(&um);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int moat_docker_create_parse(const json_t *body, const struct moat_docker_host *host,
                             struct moat_docker_create **ret, struct moat_error **reterr)
{
        _cleanup_(moat_docker_create_freep) struct moat_docker_create *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return oom();
        if (!json_is_object(body))
                return FAIL(-EINVAL, "request body: must be a JSON object");
        c->config = json_object();
        c->host_config = json_object();
        c->warnings = json_array();
        if (!c->config || !c->host_config || !c->warnings)
                return oom();

        r = copy_fields(body, NULL, config_fields, ELEMENTSOF(config_fields), c->config, reterr);
        if (r < 0)
                return r;
        json_t *hc_in = json_object_get(body, "HostConfig");
        if (!is_null(hc_in) && !json_is_object(hc_in))
                return FAIL(-EINVAL, "HostConfig: must be an object, not %s", json_type_name(hc_in));
        r = copy_fields(hc_in, "HostConfig", host_config_fields, ELEMENTSOF(host_config_fields), c->host_config,
                        reterr);
        if (r < 0)
                return r;
        json_t *cfg = c->config, *hc = c->host_config;

        /* ---- Config ---- */
        c->image = sget(cfg, "Image");
        if (!*c->image)
                return FAIL(-EINVAL, "Config.Image: no image given");
        const char *hostname = sget(cfg, "Hostname");
        if (strlen(hostname) > 64)
                return FAIL(-EINVAL, "Config.Hostname: invalid hostname (" PATH_SHOW "): hostname cannot exceed 64 "
                                     "characters",
                            hostname);
        for (const char *s = hostname; *s; s++)
                if (!isalnum((unsigned char) *s) && *s != '-' && *s != '.' && *s != '_')
                        return FAIL(-EINVAL, "Config.Hostname: invalid hostname (" PATH_SHOW ")", hostname);
        if (strlen(sget(cfg, "Domainname")) > 255)
                return FAIL(-EINVAL, "Config.Domainname: longer than 255 characters");
        const char *wd = sget(cfg, "WorkingDir");
        if (*wd && wd[0] != '/')
                return FAIL(-EINVAL, "Config.WorkingDir: the working directory '" PATH_SHOW
                                     "' is invalid, it needs to be an absolute path",
                            wd);
        json_t *env = json_object_get(cfg, "Env");
        for (size_t i = 0; i < json_array_size(env); i++) {
                const char *e = json_string_value(json_array_get(env, i));
                if (!*e || *e == '=')
                        return FAIL(-EINVAL, "Config.Env[%zu]: invalid environment variable: " PATH_SHOW, i, e);
        }
        json_t *hcheck = json_object_get(cfg, "Healthcheck");
        if (hcheck && (r = check_healthcheck(hcheck, reterr)) < 0)
                return r;
        const char *port;
        json_t *pv;
        json_object_foreach(json_object_get(cfg, "ExposedPorts"), port, pv) {
                char path[96];
                snprintf(path, sizeof(path), "Config.ExposedPorts[\"%.40s\"]", port);
                if ((r = check_port(port, path, reterr)) < 0)
                        return r;
        }
        json_t *sig = json_object_get(cfg, "StopSignal");
        if (sig) {
                int n;
                if (moat_signal_from_string(json_string_value(sig), &n) < 0)
                        return FAIL(-EINVAL, "Config.StopSignal: Invalid signal: " PATH_SHOW, json_string_value(sig));
        }
        json_t *st = json_object_get(cfg, "StopTimeout");
        if (st) {
                if (json_integer_value(st) < -1)
                        return FAIL(-EINVAL, "Config.StopTimeout: must be -1 (wait forever) or more");
                c->has_stop_timeout = true;
                c->stop_timeout = json_integer_value(st);
        }
        c->tty = bget(cfg, "Tty");
        c->open_stdin = bget(cfg, "OpenStdin");
        c->stdin_once = bget(cfg, "StdinOnce");
        c->attach_stdin = bget(cfg, "AttachStdin");
        c->attach_stdout = bget(cfg, "AttachStdout");
        c->attach_stderr = bget(cfg, "AttachStderr");

        /* ---- HostConfig ---- */
        json_t *lc = json_object_get(hc, "LogConfig");
        {
                json_t *type = json_object_get(lc, "Type"), *conf = json_object_get(lc, "Config"), *copy = NULL;
                if (!is_null(type) && (r = check_string(type, "HostConfig.LogConfig.Type", reterr)) < 0)
                        return r;
                if (!is_null(conf) && (r = copy_kind(conf, K_STRMAP, "HostConfig.LogConfig.Config", &copy, reterr)) < 0)
                        return r;
                const char *t = json_string_value(type);
                if (strempty(t))
                        t = "json-file";
                if (!streq(t, "json-file") && !streq(t, "local") && !streq(t, "none")) {
                        json_decref(copy);
                        return FAIL(-EINVAL, "HostConfig.LogConfig.Type: logger: no log driver named '" PATH_SHOW
                                             "' is registered",
                                    t);
                }
                json_t *n = json_pack("{s:s, s:o}", "Type", t, "Config", copy ? copy : json_object());
                if ((r = set(hc, "LogConfig", n)) < 0)
                        return r;
                c->log_driver = sget(json_object_get(hc, "LogConfig"), "Type");
        }

        json_t *rp = json_object_get(hc, "RestartPolicy");
        {
                json_t *name = json_object_get(rp, "Name"), *max = json_object_get(rp, "MaximumRetryCount");
                if (!is_null(name) && (r = check_string(name, "HostConfig.RestartPolicy.Name", reterr)) < 0)
                        return r;
                if (!is_null(max) && !json_is_integer(max))
                        return FAIL(-EINVAL, "HostConfig.RestartPolicy.MaximumRetryCount: must be an integer, not %s",
                                    json_type_name(max));
                const char *n = json_string_value(name);
                int64_t m = json_integer_value(max);
                if (strempty(n))
                        n = "no";
                else if (streq(n, "always") || streq(n, "unless-stopped") || streq(n, "no")) {
                        if (m != 0)
                                return FAIL(-EINVAL, "HostConfig.RestartPolicy: invalid restart policy: maximum retry "
                                                     "count can only be used with 'on-failure'%s",
                                            m < 0 ? " and cannot be negative" : "");
                } else if (streq(n, "on-failure")) {
                        if (m < 0)
                                return FAIL(-EINVAL, "HostConfig.RestartPolicy: invalid restart policy: maximum retry "
                                                     "count cannot be negative");
                } else
                        return FAIL(-EINVAL, "HostConfig.RestartPolicy: invalid restart policy: unknown policy '" PATH_SHOW
                                             "'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'",
                                    n);
                if (streq(n, "no"))
                        m = 0;
                if ((r = set(hc, "RestartPolicy", json_pack("{s:s, s:I}", "Name", n, "MaximumRetryCount",
                                                            (json_int_t) m))) < 0)
                        return r;
                rp = json_object_get(hc, "RestartPolicy");
                c->restart_policy = sget(rp, "Name");
                c->restart_max_retries = iget(rp, "MaximumRetryCount");
        }
        c->auto_remove = bget(hc, "AutoRemove");
        if (c->auto_remove && !streq(c->restart_policy, "no"))
                return FAIL(-EINVAL, "HostConfig.AutoRemove: can't create 'AutoRemove' container with restart policy");

        json_t *from = json_object_get(hc, "VolumesFrom");
        if (json_array_size(from) > VOLUMES_FROM_MAX)
                return FAIL(-E2BIG, "HostConfig.VolumesFrom: more than %u containers", VOLUMES_FROM_MAX);
        for (size_t i = 0; i < json_array_size(from); i++) {
                const char *spec = json_string_value(json_array_get(from, i));
                const char *colon = spec ? strchr(spec, ':') : NULL;
                if (!spec || !*spec || spec == colon)
                        return FAIL(-EINVAL, "HostConfig.VolumesFrom[%zu]: a container name or id is needed", i);
                if (colon && !streq(colon + 1, "ro") && !streq(colon + 1, "rw"))
                        return FAIL(-EINVAL, "HostConfig.VolumesFrom[%zu]: invalid mode: " PATH_SHOW
                                             " (ro or rw)", i, colon + 1);
        }
        if (json_array_size(json_object_get(hc, "Links")) > 0)
                return FAIL(-EOPNOTSUPP, "HostConfig.Links: legacy container links are not supported");
        if (json_array_size(json_object_get(hc, "DeviceRequests")) > 0)
                return FAIL(-EOPNOTSUPP, "HostConfig.DeviceRequests: device requests (GPUs) are not supported");
        if (json_object_size(json_object_get(hc, "StorageOpt")) > 0)
                return FAIL(-EOPNOTSUPP, "HostConfig.StorageOpt: storage options are not supported");
        const char *vd = sget(hc, "VolumeDriver");
        if (*vd && !streq(vd, "local"))
                return FAIL(-EOPNOTSUPP, "HostConfig.VolumeDriver: volume driver \"" PATH_SHOW
                                         "\" is not supported (only \"local\")",
                            vd);
        const char *runtime = sget(hc, "Runtime");
        if (*runtime && !streq(runtime, "moat") && !streq(runtime, "runc"))
                return FAIL(-EINVAL, "HostConfig.Runtime: unknown or invalid runtime name: " PATH_SHOW, runtime);
        if ((r = set(hc, "Runtime", json_string("moat"))) < 0)
                return r;
        const char *iso = sget(hc, "Isolation");
        if (*iso && !streq(iso, "default"))
                return FAIL(-EINVAL, "HostConfig.Isolation: invalid isolation: \"" PATH_SHOW
                                     "\" - linux only supports 'default'",
                            iso);
        const char *userns = sget(hc, "UsernsMode");
        if (*userns && !streq(userns, "host"))
                return FAIL(-EOPNOTSUPP, "HostConfig.UsernsMode: user namespaces are not supported yet");
        if (*sget(hc, "Cgroup"))
                return FAIL(-EOPNOTSUPP, "HostConfig.Cgroup: joining another container's cgroup is not supported");
        const char *cgns = sget(hc, "CgroupnsMode");
        if (!*cgns)
                cgns = "private";
        if (!streq(cgns, "private") && !streq(cgns, "host"))
                return FAIL(-EINVAL, "HostConfig.CgroupnsMode: invalid cgroup namespace mode: " PATH_SHOW, cgns);
        if ((r = set(hc, "CgroupnsMode", json_string(cgns))) < 0)
                return r;

        const char *ipc = sget(hc, "IpcMode"), *pid = sget(hc, "PidMode"), *uts = sget(hc, "UTSMode");
        if (!ns_mode_valid(ipc, true, true, true))
                return FAIL(-EINVAL, "HostConfig.IpcMode: invalid IPC mode: " PATH_SHOW, ipc);
        if (!*ipc && (r = set(hc, "IpcMode", json_string("private"))) < 0)
                return r;
        if (!ns_mode_valid(pid, false, true, false))
                return FAIL(-EINVAL, "HostConfig.PidMode: invalid PID mode: " PATH_SHOW, pid);
        /* container:<id> is podman's (docker has only host) */
        if (!ns_mode_valid(uts, false, true, false))
                return FAIL(-EINVAL, "HostConfig.UTSMode: invalid UTS mode: " PATH_SHOW, uts);
        if ((streq(uts, "host") || startswith(uts, "container:")) && *sget(cfg, "Hostname"))
                return FAIL(-EINVAL, "Config.Hostname: conflicting options: hostname and the UTS mode");
        if (startswith(uts, "container:") && *sget(cfg, "Domainname"))
                return FAIL(-EINVAL, "Config.Domainname: conflicting options: domainname and the UTS mode");

        if ((r = check_resources(hc, host, c->warnings, reterr)) < 0)
                return r;
        if ((r = check_network(c, body, reterr)) < 0)
                return r;
        if ((r = check_security_opts(json_object_get(hc, "SecurityOpt"), reterr)) < 0)
                return r;
        uint64_t caps;
        if ((r = moat_docker_capabilities(moat_default_capability_mask(), moat_docker_all_capabilities(),
                                          json_object_get(hc, "CapAdd"), json_object_get(hc, "CapDrop"), false, &caps,
                                          reterr)) < 0)
                return r;
        if ((r = check_ulimits(json_object_get(hc, "Ulimits"), reterr)) < 0)
                return r;
        if ((r = check_devices(json_object_get(hc, "Devices"), reterr)) < 0)
                return r;
        json_t *rules = json_object_get(hc, "DeviceCgroupRules");
        for (size_t i = 0; i < json_array_size(rules); i++) {
                json_t *rule = NULL;
                const char *s = json_string_value(json_array_get(rules, i));
                r = parse_cgroup_rule(s, &rule);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return FAIL(-EINVAL, "HostConfig.DeviceCgroupRules[%zu]: invalid device cgroup rule format: '" PATH_SHOW
                                             "'",
                                    i, s);
                json_decref(rule);
        }
        json_t *groups = json_object_get(hc, "GroupAdd");
        for (size_t i = 0; i < json_array_size(groups); i++)
                if (!*json_string_value(json_array_get(groups, i)) ||
                    strchr(json_string_value(json_array_get(groups, i)), ':'))
                        return FAIL(-EINVAL, "HostConfig.GroupAdd[%zu]: invalid group name", i);

        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(hc, "Sysctls"), k, v) {
                bool net = startswith(k, "net."), ipc_key = startswith(k, "fs.mqueue.");
                static const char *const ipc_keys[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                                                        "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                                                        "kernel.shm_rmid_forced" };
                for (size_t i = 0; i < ELEMENTSOF(ipc_keys); i++)
                        ipc_key = ipc_key || streq(k, ipc_keys[i]);
                if (!net && !ipc_key)
                        return FAIL(-EINVAL, "HostConfig.Sysctls: sysctl '" PATH_SHOW "' is not allowed", k);
                if (net && streq(c->network_mode, "host"))
                        return FAIL(-EINVAL, "HostConfig.Sysctls: sysctl '" PATH_SHOW
                                             "' not allowed in host network namespace",
                                    k);
                if (net && startswith(c->network_mode, "container:"))
                        return FAIL(-EINVAL, "HostConfig.Sysctls: sysctl '" PATH_SHOW
                                             "' not allowed with the network namespace of another container",
                                    k);
                if (ipc_key && !streq(sget(hc, "IpcMode"), "private") && !streq(sget(hc, "IpcMode"), "shareable") &&
                    !streq(sget(hc, "IpcMode"), "none"))
                        return FAIL(-EINVAL, "HostConfig.Sysctls: sysctl '" PATH_SHOW "' is not allowed in the host's or "
                                             "another container's IPC namespace",
                                    k);
                if (strchr(json_string_value(v), '\n'))
                        return FAIL(-EINVAL, "HostConfig.Sysctls[\"" PATH_SHOW "\"]: value contains a newline", k);
        }

        const char *parent = sget(hc, "CgroupParent");
        if (*parent) {
                _cleanup_free_ char *clean = clean_path(parent);
                if (!clean)
                        return oom();
                if (strstr(parent, "..") || strlen(parent) > 4096 || streq(clean, "/"))
                        return FAIL(-EINVAL, "HostConfig.CgroupParent: \"" PATH_SHOW "\" is not a valid cgroup path", parent);
        }
        for (size_t i = 0; i < 2; i++) {
                const char *key = i ? "ReadonlyPaths" : "MaskedPaths";
                json_t *l = json_object_get(hc, key);
                for (size_t j = 0; j < json_array_size(l); j++)
                        if (json_string_value(json_array_get(l, j))[0] != '/')
                                return FAIL(-EINVAL, "HostConfig.%s[%zu]: not an absolute path", key, j);
        }
        json_t *annotations = json_object_get(hc, "Annotations");
        json_object_foreach(annotations, k, v)
                if (startswith(k, "org.moat."))
                        return FAIL(-EINVAL, "HostConfig.Annotations[\"" PATH_SHOW "\"]: the org.moat. prefix is reserved",
                                    k);

        if ((r = check_mounts(hc, cfg, reterr)) < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- spec ------------------------------------------------------------------ */

void moat_docker_spec_free(struct moat_docker_spec *s)
{
        if (!s)
                return;
        json_decref(s->spec);
        json_decref(s->config);
        json_decref(s->host_config);
        json_decref(s->mounts);
        json_decref(s->warnings);
        free(s->hostname);
        free(s->text);
        free(s);
}

static json_t *str_array(char *const *v)
{
        json_t *a = json_array();
        for (size_t i = 0; a && v && v[i]; i++)
                if (append(a, json_string(v[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

/* A NULL-terminated copy of a JSON array of strings (NULL for null). */
static char **json_to_strv(const json_t *a)
{
        if (!json_is_array(a))
                return NULL;
        char **v = calloc(json_array_size(a) + 1, sizeof(char *));
        for (size_t i = 0; v && i < json_array_size(a); i++)
                if (!(v[i] = strdup(json_string_value(json_array_get(a, i))))) {
                        strv_free(v);
                        return NULL;
                }
        return v;
}

static json_t *mount_json(const char *dest, const char *type, const char *source, json_t *options)
{
        if (!options)
                return NULL;
        return json_pack("{s:s, s:s, s:s, s:o}", "destination", dest, "type", type, "source", source, "options",
                         options);
}

static int merge_option(json_t *opts, const char *o)
{
        static const char *const pairs[][2] = {
                { "ro", "rw" },         { "exec", "noexec" },     { "suid", "nosuid" },       { "dev", "nodev" },
                { "atime", "noatime" }, { "diratime", "nodiratime" }, { "sync", "async" },
                { "relatime", "norelatime" }, { "strictatime", "nostrictatime" },
                { "tmpcopyup", "notmpcopyup" },
        };
        const char *eq = strchr(o, '=');
        size_t klen = eq ? (size_t) (eq - o + 1) : 0;
        const char *opposite = NULL;
        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                if (streq(o, pairs[i][0]))
                        opposite = pairs[i][1];
                else if (streq(o, pairs[i][1]))
                        opposite = pairs[i][0];
        }
        bool is_prop = propagation_static(o) != NULL;
        for (size_t i = json_array_size(opts); i-- > 0;) {
                const char *e = json_string_value(json_array_get(opts, i));
                if (streq(e, o) || (opposite && streq(e, opposite)) || (klen && !strncmp(e, o, klen)) ||
                    (is_prop && propagation_static(e)))
                        json_array_remove(opts, i);
        }
        return append(opts, json_string(o));
}

struct builder {
        const struct moat_docker_create *c;
        const struct moat_docker_spec_context *ctx;
        json_t *spec;
        json_t *mounts;         /* spec.mounts */
        json_t *inspect_mounts;
        json_t *warnings;
        json_t *user_mounts;    /* OCI mount objects, sorted later */
        bool privileged;
        bool readonly_rootfs;
};

static int resolve_volume(struct builder *b, const struct umount *m, char **ret_path, char **ret_name,
                          struct moat_error **reterr)
{
        const json_t *vo = m->volume_options;
        const json_t *dc = vo ? json_object_get(vo, "DriverConfig") : NULL;
        struct moat_docker_volume_request req = {
                .name = m->source,
                .destination = m->dest,
                .driver = dc ? json_string_value(json_object_get(dc, "Name")) : NULL,
                .driver_options = dc ? json_object_get(dc, "Options") : NULL,
                .labels = vo ? json_object_get(vo, "Labels") : NULL,
                .subpath = vo ? json_string_value(json_object_get(vo, "Subpath")) : NULL,
                .nocopy = m->nocopy,
                .read_only = m->ro,
        };
        if (!b->ctx->volume)
                return FAIL(-EOPNOTSUPP, "volumes are not available (the engine gave no volume resolver)");
        *ret_path = NULL;
        *ret_name = NULL;
        int r = b->ctx->volume(b->ctx->userdata, &req, ret_path, ret_name, reterr);
        if (r < 0)
                return r;
        if (!*ret_path || (*ret_path)[0] != '/') {
                free(*ret_path);
                free(*ret_name);
                *ret_path = *ret_name = NULL;
                return FAIL(-EINVAL, "volume for " PATH_SHOW ": the resolver gave no absolute host path", m->dest);
        }
        return 0;
}

static int add_user_mount(struct builder *b, const struct umount *m, const char *what, struct moat_error **reterr)
{
        _cleanup_free_ char *host = NULL, *name = NULL;
        const char *type_name = m->type == M_BIND ? "bind" : m->type == M_VOLUME ? "volume" : "tmpfs";
        const char *prop = m->propagation ? m->propagation : "rprivate";
        int r;

        json_t *opts = json_array();
        if (!opts)
                return oom();
        if (m->type == M_TMPFS) {
                static const char *const base[] = { "noexec", "nosuid", "nodev", "rprivate" };
                for (size_t i = 0; i < ELEMENTSOF(base); i++)
                        if ((r = append(opts, json_string(base[i]))) < 0)
                                goto fail;
                _cleanup_free_ char *data = strdup(m->tmpfs_data ? m->tmpfs_data : "");
                if (!data) {
                        r = oom();
                        goto fail;
                }
                for (char *save = NULL, *o = strtok_r(data, ",", &save); o; o = strtok_r(NULL, ",", &save))
                        if ((r = merge_option(opts, o)) < 0)
                                goto fail;
                if (m->ro && (r = merge_option(opts, "ro")) < 0)
                        goto fail;
                if ((r = append(b->user_mounts, mount_json(m->dest, "tmpfs", "tmpfs", opts))) < 0)
                        return r;
                return append(b->inspect_mounts,
                              json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "Type", "tmpfs", "Source", "", "Destination",
                                        m->dest, "Mode", m->mode ? m->mode : "", "RW", !m->ro, "Propagation", ""));
        }

        if (m->type == M_VOLUME) {
                r = resolve_volume(b, m, &host, &name, reterr);
                if (r < 0) {
                        json_decref(opts);
                        return moat_error_wrap(reterr, r, "%s", what);
                }
        } else {
                struct stat st;
                host = strdup(m->source);
                if (!host) {
                        r = oom();
                        goto fail;
                }
                if (stat(host, &st) < 0) {
                        r = negative_errno();
                        if (r == -ENOENT && m->from_binds && b->ctx->make_bind_source) {
                                r = b->ctx->make_bind_source(b->ctx->userdata, host, reterr);
                                if (r < 0) {
                                        json_decref(opts);
                                        return moat_error_wrap(reterr, r, "%s", what);
                                }
                        } else if (r == -ENOENT && !m->create_mountpoint) {
                                json_decref(opts);
                                return FAIL(-ENOENT, "%s: invalid mount config for type \"bind\": bind source path does "
                                                     "not exist: " PATH_SHOW,
                                            what, host);
                        } else if (r != -ENOENT) {
                                json_decref(opts);
                                return moat_error_set(reterr, r, "%s: bind source " PATH_SHOW, what, host);
                        }
                }
        }
        if ((r = append(opts, json_string(m->non_recursive ? "bind" : "rbind"))) < 0 ||
            (r = append(opts, json_string(prop))) < 0)
                goto fail;
        if (m->ro && (r = append(opts, json_string(m->ro_non_recursive || m->non_recursive ? "ro" : "rro"))) < 0)
                goto fail;
        if ((r = append(b->user_mounts, mount_json(m->dest, "bind", host, opts))) < 0)
                return r;
        opts = NULL;
        json_t *im = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "Type", type_name, "Source", host, "Destination",
                               m->dest, "Mode", m->mode ? m->mode : "", "RW", !m->ro, "Propagation",
                               m->type == M_BIND ? prop : "");
        if (im && m->type == M_VOLUME) {
                if ((r = set(im, "Name", json_string(name ? name : ""))) < 0 ||
                    (r = set(im, "Driver", json_string("local"))) < 0) {
                        json_decref(im);
                        return r;
                }
        }
        return append(b->inspect_mounts, im);
fail:
        json_decref(opts);
        return r;
}

static int user_mount_compare(const void *a, const void *b)
{
        const json_t *ma = *(const json_t *const *) a, *mb = *(const json_t *const *) b;
        size_t da = path_depth(json_string_value(json_object_get(ma, "destination")));
        size_t db = path_depth(json_string_value(json_object_get(mb, "destination")));
        return da < db ? -1 : da > db;
}

static bool dest_taken(const json_t *user_mounts, const char *dest)
{
        for (size_t i = 0; i < json_array_size(user_mounts); i++)
                if (streq(json_string_value(json_object_get(json_array_get(user_mounts, i), "destination")), dest))
                        return true;
        return false;
}

static int collect_user_mounts(struct builder *b, char *const *image_volumes, struct moat_error **reterr)
{
        const json_t *hc = b->c->host_config;
        char path[96];
        int r;

        json_t *binds = json_object_get(hc, "Binds");
        for (size_t i = 0; i < json_array_size(binds); i++) {
                struct umount m;
                snprintf(path, sizeof(path), "HostConfig.Binds[%zu]", i);
                r = parse_bind(json_string_value(json_array_get(binds, i)), path, &m, reterr);
                if (r >= 0)
                        r = add_user_mount(b, &m, path, reterr);
                umount_done(&m);
                if (r < 0)
                        return r;
        }
        json_t *mounts = json_object_get(hc, "Mounts");
        for (size_t i = 0; i < json_array_size(mounts); i++) {
                struct umount m;
                snprintf(path, sizeof(path), "HostConfig.Mounts[%zu]", i);
                r = parse_mount(json_array_get(mounts, i), path, &m, reterr);
                if (r >= 0)
                        r = add_user_mount(b, &m, path, reterr);
                umount_done(&m);
                if (r < 0)
                        return r;
        }
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(hc, "Tmpfs"), k, v) {
                struct umount m = { .type = M_TMPFS, .dest = clean_path(k), .tmpfs_data = strdup(json_string_value(v)),
                                    .mode = strdup(json_string_value(v)) };
                snprintf(path, sizeof(path), "HostConfig.Tmpfs[\"%.40s\"]", k);
                r = !m.dest || !m.tmpfs_data || !m.mode ? oom() : add_user_mount(b, &m, path, reterr);
                umount_done(&m);
                if (r < 0)
                        return r;
        }

        /* VolumesFrom: the volumes and binds of other containers, where this
         * one mounts nothing of its own; "ro"/"rw" overrides their mode. */
        json_t *from = json_object_get(hc, "VolumesFrom");
        for (size_t i = 0; i < json_array_size(from); i++) {
                _cleanup_free_ char *ref = strdup(json_string_value(json_array_get(from, i)));
                _cleanup_free_ char *their_id = NULL;
                json_t *theirs = NULL, *tm;
                size_t t;
                if (!ref)
                        return oom();
                char *colon = strchr(ref, ':');
                const char *mode = colon ? colon + 1 : NULL;
                if (colon)
                        *colon = '\0';
                if (!b->ctx->container_mounts)
                        return FAIL(-EOPNOTSUPP, "HostConfig.VolumesFrom: other containers' mounts are not available");
                r = b->ctx->container_mounts(b->ctx->userdata, ref, &theirs, &their_id, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "HostConfig.VolumesFrom[%zu]", i);
                if (b->ctx->id && their_id && streq(their_id, b->ctx->id)) {
                        json_decref(theirs);
                        return FAIL(-EINVAL, "HostConfig.VolumesFrom[%zu]: a container cannot mount its own volumes",
                                    i);
                }
                json_array_foreach(theirs, t, tm) {
                        const char *type = sget(tm, "Type"), *dest = sget(tm, "Destination");
                        bool volume = streq(type, "volume");
                        if ((!volume && !streq(type, "bind")) || !*dest || dest_taken(b->user_mounts, dest))
                                continue;
                        bool ro = mode ? streq(mode, "ro") : !bget(tm, "RW");
                        struct umount m = {
                                .type = volume ? M_VOLUME : M_BIND,
                                .source = strdup(volume ? sget(tm, "Name") : sget(tm, "Source")),
                                .dest = clean_path(dest),
                                .ro = ro,
                                .nocopy = true,
                                .mode = strdup(mode ? mode : sget(tm, "Mode")),
                        };
                        snprintf(path, sizeof(path), "HostConfig.VolumesFrom[%zu] (%.40s)", i, dest);
                        r = !m.source || !m.dest || !m.mode ? oom() : add_user_mount(b, &m, path, reterr);
                        umount_done(&m);
                        if (r < 0) {
                                json_decref(theirs);
                                return r;
                        }
                }
                json_decref(theirs);
        }

        /* Anonymous volumes: Config.Volumes, then the image's, where nothing
         * else is mounted. */
        for (size_t pass = 0; pass < 2; pass++) {
                json_t *list = json_array();
                if (!list)
                        return oom();
                if (pass == 0) {
                        json_object_foreach(json_object_get(b->c->config, "Volumes"), k, v)
                                if ((r = append(list, json_string(k))) < 0) {
                                        json_decref(list);
                                        return r;
                                }
                } else
                        for (size_t i = 0; image_volumes && image_volumes[i]; i++)
                                if ((r = append(list, json_string(image_volumes[i]))) < 0) {
                                        json_decref(list);
                                        return r;
                                }
                for (size_t i = 0; i < json_array_size(list); i++) {
                        const char *raw = json_string_value(json_array_get(list, i));
                        if (raw[0] != '/')
                                continue; /* an image volume that is not absolute: docker skips it too */
                        struct umount m = { .type = M_VOLUME, .dest = clean_path(raw), .mode = strdup("") };
                        if (!m.dest || !m.mode) {
                                umount_done(&m);
                                json_decref(list);
                                return oom();
                        }
                        r = 0;
                        if (!streq(m.dest, "/") && !dest_taken(b->user_mounts, m.dest)) {
                                snprintf(path, sizeof(path), "%s[\"%.40s\"]", pass ? "image Volumes" : "Config.Volumes",
                                         raw);
                                r = add_user_mount(b, &m, path, reterr);
                        }
                        umount_done(&m);
                        if (r < 0) {
                                json_decref(list);
                                return r;
                        }
                }
                json_decref(list);
        }

        /* parents first, stable (insertion sort; n is bounded) */
        size_t n = json_array_size(b->user_mounts);
        if (n > 1) {
                json_t **v2 = calloc(n, sizeof(json_t *));
                if (!v2)
                        return oom();
                for (size_t i = 0; i < n; i++)
                        v2[i] = json_array_get(b->user_mounts, i);
                for (size_t i = 1; i < n; i++)
                        for (size_t j = i; j > 0 && user_mount_compare(&v2[j - 1], &v2[j]) > 0; j--) {
                                json_t *t = v2[j];
                                v2[j] = v2[j - 1];
                                v2[j - 1] = t;
                        }
                json_t *sorted = json_array();
                for (size_t i = 0; sorted && i < n; i++)
                        if (json_array_append(sorted, v2[i]) < 0) {
                                json_decref(sorted);
                                sorted = NULL;
                        }
                free(v2);
                if (!sorted)
                        return oom();
                json_decref(b->user_mounts);
                b->user_mounts = sorted;
        }
        return 0;
}

static int default_mounts(struct builder *b, struct moat_error **reterr)
{
        const json_t *hc = b->c->host_config;
        const char *ipc = sget(hc, "IpcMode");
        json_t *out = json_array();
        int r;

        if (!out)
                return oom();
        /* The hardened spec's mounts, adjusted: /dev/shm by ShmSize and
         * IpcMode, /sys and the cgroup mount writable when privileged. */
        for (size_t i = 0; i < json_array_size(b->mounts); i++) {
                json_t *m = json_array_get(b->mounts, i);
                const char *dest = sget(m, "destination");
                if (dest_taken(b->user_mounts, dest))
                        continue;
                if (streq(dest, "/dev/shm")) {
                        char size[64];
                        if (streq(ipc, "none"))
                                continue;
                        if (streq(ipc, "host")) {
                                r = append(out, mount_json("/dev/shm", "bind", "/dev/shm",
                                                           json_pack("[s, s]", "rbind", "rprivate")));
                                if (r < 0)
                                        goto fail;
                                continue;
                        }
                        if (startswith(ipc, "container:"))
                                continue; /* added with the namespace, from the other container */
                        if (streq(ipc, "shareable") && b->ctx->shm_path) {
                                r = append(out, mount_json("/dev/shm", "bind", b->ctx->shm_path,
                                                           json_pack("[s, s]", "rbind", "rprivate")));
                                if (r < 0)
                                        goto fail;
                                continue;
                        }
                        int64_t shm = iget(hc, "ShmSize");
                        snprintf(size, sizeof(size), "size=%" PRId64 "k", shm / 1024 + (shm % 1024 != 0));
                        r = append(out, mount_json("/dev/shm", "tmpfs", "shm",
                                                   json_pack("[s, s, s, s, s]", "nosuid", "noexec", "nodev", "mode=1777",
                                                             size)));
                        if (r < 0)
                                goto fail;
                        continue;
                }
                if (streq(dest, "/dev/mqueue") && streq(ipc, "host")) {
                        r = append(out, mount_json("/dev/mqueue", "bind", "/dev/mqueue",
                                                   json_pack("[s, s]", "rbind", "rprivate")));
                        if (r < 0)
                                goto fail;
                        continue;
                }
                json_t *copy = json_deep_copy(m);
                if (!copy) {
                        r = oom();
                        goto fail;
                }
                if (b->privileged && (streq(dest, "/sys") || streq(dest, "/sys/fs/cgroup"))) {
                        json_t *opts = json_object_get(copy, "options");
                        for (size_t k = json_array_size(opts); k-- > 0;)
                                if (streq(json_string_value(json_array_get(opts, k)), "ro"))
                                        json_array_remove(opts, k);
                        if ((r = append(opts, json_string("rw"))) < 0) {
                                json_decref(copy);
                                goto fail;
                        }
                }
                if ((r = append(out, copy)) < 0)
                        goto fail;
        }

        /* The engine's files: writable unless the rootfs is read-only, as docker. */
        const struct {
                const char *dest;
                const char *src;
        } files[] = {
                { "/etc/resolv.conf", b->ctx->resolv_conf_path },
                { "/etc/hostname", b->ctx->hostname_path },
                { "/etc/hosts", b->ctx->hosts_path },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                if (!files[i].src || dest_taken(b->user_mounts, files[i].dest))
                        continue;
                if (files[i].src[0] != '/') {
                        r = FAIL(-EINVAL, "%s: the engine's source \"" PATH_SHOW "\" is not absolute", files[i].dest,
                                 files[i].src);
                        goto fail;
                }
                json_t *opts = b->readonly_rootfs ? json_pack("[s, s, s]", "rbind", "rprivate", "ro")
                                                  : json_pack("[s, s]", "rbind", "rprivate");
                if ((r = append(out, mount_json(files[i].dest, "bind", files[i].src, opts))) < 0)
                        goto fail;
        }
        for (size_t i = 0; i < json_array_size(b->user_mounts); i++)
                if ((r = append(out, json_incref(json_array_get(b->user_mounts, i)))) < 0)
                        goto fail;
        return set(b->spec, "mounts", out);
fail:
        json_decref(out);
        return r;
}

/* Device nodes under dir (a file or a directory walked to a bounded depth),
 * appended as linux.devices entries at prefix and, with access, as cgroup
 * rules. */
static int add_devices(const char *host_path, const char *container_path, const char *access, bool skip_special,
                       int depth, json_t *devices, json_t *rules, size_t *count, struct moat_error **reterr)
{
        struct stat st;
        /* the path given is followed (docker resolves it); what lies below is not */
        if ((depth == 0 ? stat(host_path, &st) : lstat(host_path, &st)) < 0)
                return moat_error_set(reterr, errno, "error gathering device information while adding custom device "
                                                     "\"" PATH_SHOW "\"",
                                      host_path);
        if (++*count > DEVICE_WALK_MAX)
                return FAIL(-E2BIG, "more than %u entries to look at under " PATH_SHOW, DEVICE_WALK_MAX, host_path);
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
                char type[2] = { S_ISCHR(st.st_mode) ? 'c' : 'b', 0 };
                json_t *d = json_pack("{s:s, s:s, s:I, s:I, s:i, s:i, s:i}", "path", container_path, "type", type, "major",
                                      (json_int_t) major(st.st_rdev), "minor", (json_int_t) minor(st.st_rdev), "fileMode",
                                      (int) (st.st_mode & 07777), "uid", (int) st.st_uid, "gid", (int) st.st_gid);
                int r = append(devices, d);
                if (r < 0 || !access)
                        return r;
                return append(rules, json_pack("{s:b, s:s, s:I, s:I, s:s}", "allow", 1, "type", type, "major",
                                               (json_int_t) major(st.st_rdev), "minor", (json_int_t) minor(st.st_rdev),
                                               "access", access));
        }
        if (!S_ISDIR(st.st_mode)) {
                if (depth == 0)
                        return FAIL(-EINVAL, "error gathering device information while adding custom device \"" PATH_SHOW
                                             "\": not a device node",
                                    host_path);
                return 0;
        }
        if (depth >= DEVICE_WALK_DEPTH)
                return 0;
        _cleanup_closedir_ DIR *dir = opendir(host_path);
        if (!dir)
                return moat_error_set(reterr, errno, "opening " PATH_SHOW, host_path);
        struct dirent *de;
        while ((de = readdir(dir))) {
                const char *n = de->d_name;
                if (streq(n, ".") || streq(n, ".."))
                        continue;
                if (skip_special && depth == 0 &&
                    (streq(n, "pts") || streq(n, "shm") || streq(n, "fd") || streq(n, "mqueue") || streq(n, ".lxc") ||
                     streq(n, ".lxd-mounts") || streq(n, ".udev") || streq(n, "console") || streq(n, "ptmx")))
                        continue;
                if (de->d_type == DT_LNK)
                        continue;
                _cleanup_free_ char *hp = NULL, *cp = NULL;
                if (asprintf(&hp, "%s/%s", host_path, n) < 0 || asprintf(&cp, "%s/%s", container_path, n) < 0)
                        return oom();
                int r = add_devices(hp, cp, access, skip_special, depth + 1, devices, rules, count, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_namespace_paths(struct builder *b, json_t *linux_, struct moat_error **reterr)
{
        const json_t *hc = b->c->host_config;
        json_t *nss = json_object_get(linux_, "namespaces");
        const struct {
                const char *type;
                const char *mode;
                const char *field;
        } modes[] = {
                { "pid", sget(hc, "PidMode"), "PidMode" },
                { "ipc", sget(hc, "IpcMode"), "IpcMode" },
                { "uts", sget(hc, "UTSMode"), "UTSMode" },
                { "network", sget(hc, "NetworkMode"), "NetworkMode" },
                { "cgroup", sget(hc, "CgroupnsMode"), "CgroupnsMode" },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                size_t idx = SIZE_MAX;
                for (size_t k = 0; k < json_array_size(nss); k++)
                        if (streq(sget(json_array_get(nss, k), "type"), modes[i].type))
                                idx = k;
                if (idx == SIZE_MAX)
                        continue;
                if (streq(modes[i].mode, "host")) {
                        json_array_remove(nss, idx);
                        continue;
                }
                if (!startswith(modes[i].mode, "container:") || b->ctx->volumes_only)
                        continue;
                const char *ref = modes[i].mode + 10;
                if (!b->ctx->container_pid)
                        return FAIL(-EOPNOTSUPP, "HostConfig.%s: joining another container is not available",
                                    modes[i].field);
                pid_t pid = 0;
                _cleanup_free_ char *id = NULL;
                r = b->ctx->container_pid(b->ctx->userdata, ref, &pid, &id, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "HostConfig.%s", modes[i].field);
                if (pid <= 0)
                        return FAIL(-ESRCH, "HostConfig.%s: container " PATH_SHOW " is not running", modes[i].field,
                                    ref);
                if (b->ctx->id && id && streq(id, b->ctx->id))
                        return FAIL(-EINVAL, "HostConfig.%s: cannot join own namespace", modes[i].field);
                char p[64];
                snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int) pid, streq(modes[i].type, "network") ? "net" : modes[i].type);
                if ((r = set(json_array_get(nss, idx), "path", json_string(p))) < 0)
                        return r;
                /* The other container's /dev/shm is in its own mount
                 * namespace, out of a bind's reach: as docker, only a
                 * shareable one, whose tmpfs the engine mounted on the host. */
                if (streq(modes[i].type, "ipc") && !dest_taken(b->user_mounts, "/dev/shm")) {
                        _cleanup_free_ char *src = NULL;
                        if (!b->ctx->container_shm)
                                return FAIL(-EOPNOTSUPP, "HostConfig.IpcMode: another container's /dev/shm is not "
                                                         "available");
                        r = b->ctx->container_shm(b->ctx->userdata, id, &src, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "HostConfig.IpcMode");
                        if ((r = append(json_object_get(b->spec, "mounts"),
                                        mount_json("/dev/shm", "bind", src, json_pack("[s, s]", "rbind", "rprivate")))) < 0)
                                return r;
                }
        }
        return 0;
}

/* A seccomp profile in docker's format -> linux.seccomp (moby's setupSeccomp). */
static const char *native_arch(void)
{
#if defined(__x86_64__)
        return "SCMP_ARCH_X86_64";
#elif defined(__aarch64__)
        return "SCMP_ARCH_AARCH64";
#elif defined(__s390x__)
        return "SCMP_ARCH_S390X";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return "SCMP_ARCH_PPC64LE";
#elif defined(__riscv) && __riscv_xlen == 64
        return "SCMP_ARCH_RISCV64";
#elif defined(__i386__)
        return "SCMP_ARCH_X86";
#else
        return "";
#endif
}

static bool caps_listed(const json_t *list, uint64_t caps, bool all)
{
        size_t hit = 0;
        for (size_t i = 0; i < json_array_size(list); i++) {
                int cap;
                const char *s = json_string_value(json_array_get(list, i));
                if (s && capability_number(s, &cap) == 0 && (caps & (UINT64_C(1) << cap)))
                        hit++;
        }
        return all ? hit == json_array_size(list) : hit > 0;
}

static bool arch_listed(const json_t *list)
{
        for (size_t i = 0; i < json_array_size(list); i++) {
                const char *a = json_string_value(json_array_get(list, i));
                /* docker names arches like Go ("amd64") */
                if (a && (streq(a, native_arch()) ||
#if defined(__x86_64__)
                          streq(a, "amd64") || streq(a, "x86_64")
#elif defined(__aarch64__)
                          streq(a, "arm64") || streq(a, "aarch64")
#else
                          false
#endif
                          ))
                        return true;
        }
        return false;
}

static int convert_seccomp(const json_t *p, uint64_t caps, json_t **ret, struct moat_error **reterr)
{
        if (!json_is_object(p))
                return FAIL(-EINVAL, "the profile is not a JSON object");
        json_t *out = json_object();
        if (!out)
                return oom();
        static const char *const keep[] = { "defaultAction", "defaultErrnoRet", "flags", "listenerPath",
                                            "listenerMetadata" };
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
                json_t *v = json_object_get(p, keep[i]);
                if (v && (r = set(out, keep[i], json_deep_copy(v))) < 0)
                        goto fail;
        }
        if (!json_object_get(out, "defaultAction")) {
                r = FAIL(-EINVAL, "defaultAction: missing");
                goto fail;
        }
        json_t *archs = json_object_get(p, "architectures"), *amap = json_object_get(p, "archMap");
        if (!is_null(archs) && !is_null(amap)) {
                r = FAIL(-EINVAL, "'architectures' and 'archMap' were specified in the seccomp profile, use either "
                                  "'architectures' or 'archMap'");
                goto fail;
        }
        json_t *oarch = json_array();
        if ((r = set(out, "architectures", oarch)) < 0)
                goto fail;
        if (json_is_array(archs))
                for (size_t i = 0; i < json_array_size(archs); i++)
                        if ((r = append(oarch, json_deep_copy(json_array_get(archs, i)))) < 0)
                                goto fail;
        for (size_t i = 0; json_is_array(amap) && i < json_array_size(amap); i++) {
                json_t *e = json_array_get(amap, i);
                if (!streq(sget(e, "architecture"), native_arch()))
                        continue;
                if ((r = append(oarch, json_string(native_arch()))) < 0)
                        goto fail;
                json_t *subs = json_object_get(e, "subArchitectures");
                for (size_t k = 0; k < json_array_size(subs); k++)
                        if ((r = append(oarch, json_deep_copy(json_array_get(subs, k)))) < 0)
                                goto fail;
        }
        json_t *sys = json_object_get(p, "syscalls"), *osys = json_array();
        if ((r = set(out, "syscalls", osys)) < 0)
                goto fail;
        if (!is_null(sys) && !json_is_array(sys)) {
                r = FAIL(-EINVAL, "syscalls: must be an array");
                goto fail;
        }
        for (size_t i = 0; i < json_array_size(sys); i++) {
                json_t *s = json_array_get(sys, i);
                if (!json_is_object(s)) {
                        r = FAIL(-EINVAL, "syscalls[%zu]: must be an object", i);
                        goto fail;
                }
                json_t *name = json_object_get(s, "name"), *names = json_object_get(s, "names");
                if (!is_null(name) && json_array_size(names) > 0) {
                        r = FAIL(-EINVAL, "syscalls[%zu]: 'name' and 'names' were specified in the seccomp profile, use "
                                          "either 'name' or 'names'",
                                 i);
                        goto fail;
                }
                json_t *inc = json_object_get(s, "includes"), *exc = json_object_get(s, "excludes");
                if (json_is_object(inc)) {
                        json_t *ic = json_object_get(inc, "caps"), *ia = json_object_get(inc, "arches");
                        if (json_array_size(ic) > 0 && !caps_listed(ic, caps, true))
                                continue;
                        if (json_array_size(ia) > 0 && !arch_listed(ia))
                                continue;
                }
                if (json_is_object(exc)) {
                        json_t *ec = json_object_get(exc, "caps"), *ea = json_object_get(exc, "arches");
                        if (json_array_size(ec) > 0 && caps_listed(ec, caps, false))
                                continue;
                        if (json_array_size(ea) > 0 && arch_listed(ea))
                                continue;
                }
                json_t *o = json_deep_copy(s);
                if (!o) {
                        r = oom();
                        goto fail;
                }
                json_object_del(o, "includes");
                json_object_del(o, "excludes");
                json_object_del(o, "comment");
                if (!is_null(name)) {
                        json_object_del(o, "name");
                        if ((r = set(o, "names", json_pack("[O]", name))) < 0) {
                                json_decref(o);
                                goto fail;
                        }
                }
                if ((r = append(osys, o)) < 0)
                        goto fail;
        }
        *ret = out;
        return 0;
fail:
        json_decref(out);
        return r;
}

static int seccomp_from_opt(const char *value, uint64_t caps, json_t **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        const char *text = value;
        size_t len = strlen(value);
        int r;

        while (*text == ' ' || *text == '\t' || *text == '\n')
                text++;
        if (*text != '{') {
                if (value[0] != '/')
                        return FAIL(-EINVAL, "HostConfig.SecurityOpt: seccomp=" PATH_SHOW
                                             ": not a profile, an absolute file path or \"unconfined\"",
                                    value);
                _cleanup_close_ int fd = open(value, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                struct stat st;
                if (fd < 0)
                        return moat_error_set(reterr, errno, "HostConfig.SecurityOpt: seccomp profile " PATH_SHOW, value);
                if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                        return FAIL(-EINVAL, "HostConfig.SecurityOpt: seccomp profile " PATH_SHOW " is not a regular file",
                                    value);
                r = read_full_fd(fd, MOAT_DOCKER_SECCOMP_MAX, &buf, &len);
                if (r < 0)
                        return moat_error_set(reterr, r, "HostConfig.SecurityOpt: reading seccomp profile " PATH_SHOW,
                                              value);
                text = buf;
        } else
                len = strlen(text);
        if (len > MOAT_DOCKER_SECCOMP_MAX)
                return FAIL(-E2BIG, "HostConfig.SecurityOpt: seccomp profile larger than %u bytes",
                            MOAT_DOCKER_SECCOMP_MAX);
        json_error_t jerr;
        _cleanup_(json_decrefp) json_t *p = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!p)
                return FAIL(-EINVAL, "HostConfig.SecurityOpt: decoding seccomp profile failed: %s", jerr.text);
        json_t *out = NULL;
        r = convert_seccomp(p, caps, &out, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "HostConfig.SecurityOpt: seccomp profile");
        struct moat_seccomp *compiled = NULL;
        r = moat_seccomp_prepare_json(out, NULL, NULL, &compiled, reterr);
        moat_seccomp_free(compiled);
        if (r < 0) {
                json_decref(out);
                return moat_error_wrap(reterr, r, "HostConfig.SecurityOpt: seccomp profile");
        }
        *ret = out;
        return 0;
}

/* moat's default seccomp profile for a capability set, built once per set
 * (a handful of sets in practice; beyond SECCOMP_PROFILES_MAX they are
 * built per call) and shared: the spec holds a reference, and nothing
 * modifies a spec's linux.seccomp in place (moat_docker_spec says so). */
#define SECCOMP_PROFILES_MAX 16u
static struct {
        pthread_mutex_t lock;
        size_t n;
        uint64_t caps[SECCOMP_PROFILES_MAX];
        json_t *profile[SECCOMP_PROFILES_MAX];
} default_profiles = { .lock = PTHREAD_MUTEX_INITIALIZER };

static json_t *default_seccomp_profile(uint64_t caps)
{
        json_t *p = NULL;

        pthread_mutex_lock(&default_profiles.lock);
        for (size_t i = 0; i < default_profiles.n && !p; i++)
                if (default_profiles.caps[i] == caps)
                        p = json_incref(default_profiles.profile[i]);
        if (!p && moat_seccomp_default_profile(caps, &p) >= 0 && default_profiles.n < SECCOMP_PROFILES_MAX) {
                default_profiles.caps[default_profiles.n] = caps;
                default_profiles.profile[default_profiles.n++] = json_incref(p);
        }
        pthread_mutex_unlock(&default_profiles.lock);
        return p;
}

static int security(struct builder *b, uint64_t caps, json_t *process, json_t *linux_, struct moat_error **reterr)
{
        const json_t *opts = json_object_get(b->c->host_config, "SecurityOpt");
        const char *seccomp = NULL;
        bool nnp = true, systempaths_unconfined = false;
        int r;

        for (size_t i = 0; i < json_array_size(opts); i++) {
                const char *o = json_string_value(json_array_get(opts, i));
                const char *sep = strchr(o, '=') ? strchr(o, '=') : strchr(o, ':');
                if (streq(o, "no-new-privileges"))
                        nnp = true;
                else if (sep && !strncmp(o, "no-new-privileges", (size_t) (sep - o)) && sep - o == 17) {
                        if (parse_go_bool(sep + 1, &nnp) < 0)
                                return FAIL(-EINVAL, "HostConfig.SecurityOpt[%zu]: invalid --security-opt 2", i);
                } else if (sep && sep - o == 7 && !strncmp(o, "seccomp", 7))
                        seccomp = sep + 1;
                else if (sep && sep - o == 11 && !strncmp(o, "systempaths", 11))
                        systempaths_unconfined = true;
        }

        json_t *profile = NULL;
        if (b->privileged || (seccomp && streq(seccomp, "unconfined")))
                json_object_del(linux_, "seccomp");
        else if (seccomp && !streq(seccomp, "builtin")) {
                if ((r = seccomp_from_opt(seccomp, caps, &profile, reterr)) < 0)
                        return r;
                if ((r = set(linux_, "seccomp", profile)) < 0)
                        return r;
        } else {
                if (!(profile = default_seccomp_profile(caps)))
                        return oom();
                if ((r = set(linux_, "seccomp", profile)) < 0)
                        return r;
        }
        if ((r = set(process, "noNewPrivileges", json_boolean(nnp && !b->privileged))) < 0)
                return r;

        json_t *hc = b->c->host_config;
        for (size_t i = 0; i < 2; i++) {
                const char *key = i ? "ReadonlyPaths" : "MaskedPaths", *okey = i ? "readonlyPaths" : "maskedPaths";
                json_t *given = json_object_get(hc, key);
                if (b->privileged || systempaths_unconfined)
                        r = set(linux_, okey, json_array());
                else if (given)
                        r = set(linux_, okey, json_deep_copy(given));
                else
                        r = 0;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int resources(struct builder *b, json_t *linux_, struct moat_error **reterr)
{
        const json_t *hc = b->c->host_config;
        json_t *res = json_object_get(linux_, "resources");
        int r;

        if (!res) {
                if ((r = set(linux_, "resources", json_object())) < 0)
                        return r;
                res = json_object_get(linux_, "resources");
        }

        json_t *mem = json_object();
        if ((r = set(res, "memory", mem)) < 0)
                return r;
        if (iget(hc, "Memory") > 0 && (r = set(mem, "limit", json_integer(iget(hc, "Memory")))) < 0)
                return r;
        if (iget(hc, "MemoryReservation") > 0 &&
            (r = set(mem, "reservation", json_integer(iget(hc, "MemoryReservation")))) < 0)
                return r;
        if (iget(hc, "Memory") > 0 && iget(hc, "MemorySwap") != 0 &&
            (r = set(mem, "swap", json_integer(iget(hc, "MemorySwap")))) < 0)
                return r;
        json_t *sw = json_object_get(hc, "MemorySwappiness");
        if (json_is_integer(sw) && (r = set(mem, "swappiness", json_integer(json_integer_value(sw)))) < 0)
                return r;
        if (bget(hc, "OomKillDisable") && (r = set(mem, "disableOOMKiller", json_true())) < 0)
                return r;
        if (json_object_size(mem) == 0)
                json_object_del(res, "memory");

        json_t *cpu = json_object();
        if ((r = set(res, "cpu", cpu)) < 0)
                return r;
        if (iget(hc, "CpuShares") > 0 && (r = set(cpu, "shares", json_integer(iget(hc, "CpuShares")))) < 0)
                return r;
        int64_t nano = iget(hc, "NanoCpus");
        if (nano > 0) {
                if ((r = set(cpu, "period", json_integer(100000))) < 0 ||
                    (r = set(cpu, "quota", json_integer(nano * 100000 / 1000000000))) < 0)
                        return r;
        }
        if (iget(hc, "CpuPeriod") != 0 && (r = set(cpu, "period", json_integer(iget(hc, "CpuPeriod")))) < 0)
                return r;
        if (iget(hc, "CpuQuota") != 0 && (r = set(cpu, "quota", json_integer(iget(hc, "CpuQuota")))) < 0)
                return r;
        if (*sget(hc, "CpusetCpus") && (r = set(cpu, "cpus", json_string(sget(hc, "CpusetCpus")))) < 0)
                return r;
        if (*sget(hc, "CpusetMems") && (r = set(cpu, "mems", json_string(sget(hc, "CpusetMems")))) < 0)
                return r;
        if (json_object_size(cpu) == 0)
                json_object_del(res, "cpu");

        json_t *pids = json_object_get(hc, "PidsLimit");
        if (json_is_integer(pids) &&
            (r = set(res, "pids", json_pack("{s:I}", "limit",
                                            (json_int_t) (json_integer_value(pids) <= 0 ? -1 : json_integer_value(pids))))) <
                    0)
                return r;
        json_t *blkio = json_object();
        if ((r = set(res, "blockIO", blkio)) < 0)
                return r;
        if (iget(hc, "BlkioWeight") > 0 && (r = set(blkio, "weight", json_integer(iget(hc, "BlkioWeight")))) < 0)
                return r;
        /* The devices by their numbers, read now on the host as docker does. */
        for (size_t i = 0; i < ELEMENTSOF(blkio_lists); i++) {
                json_t *list = json_object_get(hc, blkio_lists[i].field), *entry;
                size_t k;
                if (json_array_size(list) == 0)
                        continue;
                json_t *out = json_array();
                if ((r = set(blkio, blkio_lists[i].oci, out)) < 0)
                        return r;
                json_array_foreach(list, k, entry) {
                        const char *dev = sget(entry, "Path");
                        struct stat st;
                        if (stat(dev, &st) < 0)
                                return moat_error_set(reterr, errno, "HostConfig.%s[%zu].Path: " PATH_SHOW,
                                                      blkio_lists[i].field, k, dev);
                        if (!S_ISBLK(st.st_mode))
                                return FAIL(-EINVAL, "HostConfig.%s[%zu].Path: " PATH_SHOW " is not a block device",
                                            blkio_lists[i].field, k, dev);
                        if ((r = append(out, json_pack("{s:I, s:I, s:I}", "major", (json_int_t) major(st.st_rdev),
                                                       "minor", (json_int_t) minor(st.st_rdev),
                                                       blkio_lists[i].oci_value,
                                                       (json_int_t) iget(entry, blkio_lists[i].value)))) < 0)
                                return r;
                }
        }
        if (json_object_size(blkio) == 0)
                json_object_del(res, "blockIO");

        /* devices: deny all (the hardened spec), then docker's default list,
         * then what was added; privileged: everything. */
        json_t *rules = json_array(), *devices = json_array();
        if ((r = set(res, "devices", rules)) < 0 || (r = set(linux_, "devices", devices)) < 0)
                return r;
        size_t count = 0;
        if (b->privileged) {
                if ((r = append(rules, json_pack("{s:b, s:s}", "allow", 1, "access", "rwm"))) < 0)
                        return r;
                r = add_devices(b->ctx->host_dev_dir ? b->ctx->host_dev_dir : "/dev", "/dev", NULL, true, 0, devices,
                                rules, &count, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "HostConfig.Privileged: host devices");
        } else {
                static const struct {
                        char type;
                        int major, minor; /* -1: any */
                        const char *access;
                } dflt[] = {
                        { 'c', -1, -1, "m" }, { 'b', -1, -1, "m" },  { 'c', 1, 3, "rwm" },  { 'c', 1, 5, "rwm" },
                        { 'c', 1, 7, "rwm" }, { 'c', 1, 8, "rwm" },  { 'c', 1, 9, "rwm" },  { 'c', 5, 0, "rwm" },
                        { 'c', 5, 2, "rwm" }, { 'c', 136, -1, "rwm" }, { 'c', 10, 200, "rwm" },
                };
                if ((r = append(rules, json_pack("{s:b, s:s}", "allow", 0, "access", "rwm"))) < 0)
                        return r;
                for (size_t i = 0; i < ELEMENTSOF(dflt); i++) {
                        char t[2] = { dflt[i].type, 0 };
                        json_t *rule = json_pack("{s:b, s:s, s:s}", "allow", 1, "type", t, "access", dflt[i].access);
                        if (rule && dflt[i].major >= 0 && set(rule, "major", json_integer(dflt[i].major)) < 0)
                                rule = NULL;
                        if (rule && dflt[i].minor >= 0 && set(rule, "minor", json_integer(dflt[i].minor)) < 0)
                                rule = NULL;
                        if ((r = append(rules, rule)) < 0)
                                return r;
                }
                json_t *devs = json_object_get(hc, "Devices");
                for (size_t i = 0; i < json_array_size(devs); i++) {
                        json_t *d = json_array_get(devs, i);
                        r = add_devices(sget(d, "PathOnHost"), sget(d, "PathInContainer"), sget(d, "CgroupPermissions"),
                                        false, 0, devices, rules, &count, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "HostConfig.Devices[%zu]", i);
                }
                json_t *cr = json_object_get(hc, "DeviceCgroupRules");
                for (size_t i = 0; i < json_array_size(cr); i++) {
                        json_t *rule = NULL;
                        r = parse_cgroup_rule(json_string_value(json_array_get(cr, i)), &rule);
                        if (r < 0)
                                return FAIL(r, "HostConfig.DeviceCgroupRules[%zu]: invalid device cgroup rule format", i);
                        if ((r = append(rules, rule)) < 0)
                                return r;
                }
        }
        if (json_array_size(devices) == 0)
                json_object_del(linux_, "devices");
        return 0;
}

static int process_from_image(struct builder *b, const char *hostname, json_t *process, json_t **ret_config,
                              struct moat_error **reterr)
{
        const json_t *cfg = b->c->config;
        _cleanup_strv_free_ char **entrypoint = json_to_strv(json_object_get(cfg, "Entrypoint"));
        _cleanup_strv_free_ char **cmd = json_to_strv(json_object_get(cfg, "Cmd"));
        _cleanup_strv_free_ char **env = json_to_strv(json_object_get(cfg, "Env"));
        if ((json_is_array(json_object_get(cfg, "Entrypoint")) && !entrypoint) ||
            (json_is_array(json_object_get(cfg, "Cmd")) && !cmd) || (json_is_array(json_object_get(cfg, "Env")) && !env))
                return oom();
        struct moat_image_overrides ov = {
                .entrypoint = entrypoint,
                .has_entrypoint = entrypoint != NULL,
                .cmd = cmd,
                .env = env,
                .working_dir = sget(cfg, "WorkingDir"),
                .user = sget(cfg, "User"),
                .hostname = hostname,
                .terminal = b->c->tty,
        };
        _cleanup_image_runtime_config_ struct moat_image_runtime_config *rc = NULL;
        int r = moat_image_runtime_config_make(b->ctx->image, b->ctx->root_fd, &ov, &rc, reterr);
        if (r < 0)
                return r;

        /* GroupAdd: numbers as they are, names from the image's /etc/group */
        json_t *groups = json_object_get(b->c->host_config, "GroupAdd");
        for (size_t i = 0; i < json_array_size(groups); i++) {
                const char *g = json_string_value(json_array_get(groups, i));
                uint32_t gid;
                char *end;
                errno = 0;
                unsigned long v = strtoul(g, &end, 10);
                if (isdigit((unsigned char) g[0]) && !*end && errno == 0 && v <= INT32_MAX)
                        gid = (uint32_t) v;
                else if (!b->ctx->group)
                        return FAIL(-EOPNOTSUPP, "HostConfig.GroupAdd[%zu]: group names cannot be resolved here", i);
                else {
                        r = b->ctx->group(b->ctx->userdata, b->ctx->root_fd, g, &gid, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "HostConfig.GroupAdd[%zu]", i);
                }
                bool have = false;
                for (size_t k = 0; k < rc->n_additional_gids; k++)
                        have = have || rc->additional_gids[k] == gid;
                if (have)
                        continue;
                uint32_t *n = reallocarray(rc->additional_gids, rc->n_additional_gids + 1, sizeof(uint32_t));
                if (!n)
                        return oom();
                rc->additional_gids = n;
                rc->additional_gids[rc->n_additional_gids++] = gid;
        }
        r = moat_image_runtime_config_to_spec(rc, b->spec, reterr);
        if (r < 0)
                return r;

        /* Init: docker-init (tini) as pid 1 */
        json_t *init = json_object_get(b->c->host_config, "Init");
        if (json_is_true(init)) {
                if (!b->ctx->init_path)
                        return FAIL(-EOPNOTSUPP, "HostConfig.Init: no init binary is available (install tini)");
                json_t *args = json_object_get(process, "args");
                if (json_array_insert_new(args, 0, json_string("--")) < 0 ||
                    json_array_insert_new(args, 0, json_string("/sbin/docker-init")) < 0)
                        return oom();
                if ((r = append(json_object_get(b->spec, "mounts"),
                                mount_json("/sbin/docker-init", "bind", b->ctx->init_path,
                                           json_pack("[s, s, s]", "bind", "ro", "rprivate")))) < 0)
                        return r;
        }

        /* inspect's Config: the body merged with the image (moby's merge) */
        json_t *out = json_deep_copy(cfg);
        if (!out)
                return oom();
        const struct oci_image_exec_config *img = b->ctx->image && b->ctx->image->has_config ? &b->ctx->image->config
                                                                                            : NULL;
        r = 0;
        /* A name found at start (the host's, another container's) is not
         * kept as the container's own: the next start finds it again. */
        const char *uts = sget(b->c->host_config, "UTSMode");
        if (r >= 0 && !streq(uts, "host") && !startswith(uts, "container:"))
                r = set(out, "Hostname", json_string(hostname ? hostname : ""));
        /* Env: moby's merge of the body's and the image's. HOSTNAME, HOME
         * and TERM are the process's (moby's CreateDaemonEnvironment), not
         * the Config's. */
        if (r >= 0 && img && img->env && img->env[0]) {
                json_t *merged = json_is_array(json_object_get(out, "Env")) ? json_deep_copy(json_object_get(out, "Env"))
                                                                         : json_array();
                for (size_t i = 0; merged && img->env[i]; i++) {
                        size_t klen = strcspn(img->env[i], "=");
                        bool set_by_body = false;
                        size_t k;
                        json_t *v;
                        json_array_foreach(merged, k, v) {
                                const char *kv = json_string_value(v);
                                set_by_body = set_by_body ||
                                              (kv && strncmp(kv, img->env[i], klen) == 0 &&
                                               (kv[klen] == '=' || kv[klen] == '\0'));
                        }
                        if (!set_by_body && json_array_append_new(merged, json_string(img->env[i])) < 0) {
                                json_decref(merged);
                                merged = NULL;
                        }
                }
                r = set(out, "Env", merged);
        }
        if (r >= 0 && img && !*sget(out, "User") && img->user)
                r = set(out, "User", json_string(img->user));
        if (r >= 0 && img && !*sget(out, "WorkingDir") && img->working_dir)
                r = set(out, "WorkingDir", json_string(img->working_dir));
        if (r >= 0 && img && json_array_size(json_object_get(out, "Entrypoint")) == 0) {
                if (json_array_size(json_object_get(out, "Cmd")) == 0)
                        r = set(out, "Cmd", img->cmd ? str_array(img->cmd) : json_null());
                if (r >= 0 && json_is_null(json_object_get(out, "Entrypoint")))
                        r = set(out, "Entrypoint", img->entrypoint ? str_array(img->entrypoint) : json_null());
        }
        if (r >= 0 && img && !json_object_get(out, "StopSignal") && img->stop_signal)
                r = set(out, "StopSignal", json_string(img->stop_signal));
        if (r >= 0 && img && !json_object_get(out, "Healthcheck") && img->healthcheck)
                r = set(out, "Healthcheck", json_deep_copy(img->healthcheck));
        if (r >= 0 && img && img->n_labels) {
                json_t *labels = json_object();
                for (size_t i = 0; labels && i < img->n_labels; i++)
                        if (set(labels, img->labels[i].key, json_string(img->labels[i].value ? img->labels[i].value : "")) <
                            0) {
                                json_decref(labels);
                                labels = NULL;
                        }
                if (labels && json_object_update(labels, json_object_get(out, "Labels")) < 0) {
                        json_decref(labels);
                        labels = NULL;
                }
                r = set(out, "Labels", labels);
        }
        for (int pass = 0; r >= 0 && img && pass < 2; pass++) {
                char *const *list = pass ? img->volumes : img->exposed_ports;
                const char *key = pass ? "Volumes" : "ExposedPorts";
                if (!list || !list[0])
                        continue;
                json_t *o = json_object_get(out, key);
                if (!json_is_object(o)) {
                        if ((r = set(out, key, json_object())) < 0)
                                break;
                        o = json_object_get(out, key);
                }
                for (size_t i = 0; list[i] && r >= 0; i++)
                        if (!json_object_get(o, list[i]))
                                r = set(o, list[i], json_object());
        }
        if (r < 0) {
                json_decref(out);
                return r;
        }
        *ret_config = out;
        return 0;
}

/* moat_spec_hardened() parsed, built on first use and never modified
 * after: every spec starts as a deep copy. Its linux.seccomp is a null
 * placeholder (security() sets or removes it, in the same place among
 * the keys), so the default profile is not copied only to be replaced. */
static struct {
        pthread_mutex_t lock;
        json_t *doc;
} hardened_base = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int hardened_spec(json_t **ret, struct moat_error **reterr)
{
        json_t *base;
        int r = 0;

        pthread_mutex_lock(&hardened_base.lock);
        if (!hardened_base.doc) {
                _cleanup_free_ char *text = NULL;
                _cleanup_(json_decrefp) json_t *doc = NULL;

                r = moat_spec_hardened(&text, reterr);
                if (r >= 0 && (!(doc = json_loads(text, 0, NULL)) ||
                               json_object_set_new(json_object_get(doc, "linux"), "seccomp", json_null()) < 0))
                        r = oom();
                if (r >= 0)
                        hardened_base.doc = TAKE_PTR(doc);
        }
        base = hardened_base.doc;
        pthread_mutex_unlock(&hardened_base.lock);
        if (r < 0)
                return r;
        *ret = json_deep_copy(base);
        return *ret ? 0 : oom();
}

int moat_docker_create_spec(const struct moat_docker_create *c, const struct moat_docker_spec_context *ctx,
                            struct moat_docker_spec **ret, struct moat_error **reterr)
{
        _cleanup_(moat_docker_spec_freep) struct moat_docker_spec *s = calloc(1, sizeof(*s));
        struct builder b = { .c = c, .ctx = ctx };
        const json_t *hc = c->host_config;
        int r;

        if (!s)
                return oom();
        if (!ctx || !ctx->id || strlen(ctx->id) < 12)
                return FAIL(-EINVAL, "container id: missing or shorter than 12 characters");
        r = hardened_spec(&s->spec, reterr);
        if (r < 0)
                return r;
        s->warnings = json_deep_copy(c->warnings);
        s->host_config = json_deep_copy(hc);
        s->mounts = json_array();
        b.user_mounts = json_array();
        if (!s->spec || !s->warnings || !s->host_config || !s->mounts || !b.user_mounts) {
                json_decref(b.user_mounts);
                return oom();
        }
        b.spec = s->spec;
        b.warnings = s->warnings;
        b.inspect_mounts = s->mounts;
        b.mounts = json_object_get(s->spec, "mounts");
        json_incref(b.mounts);
        b.privileged = bget(hc, "Privileged");
        b.readonly_rootfs = bget(hc, "ReadonlyRootfs");

        json_t *process = json_object_get(s->spec, "process"), *linux_ = json_object_get(s->spec, "linux");

        /* hostname */
        const char *net = c->network_mode;
        const char *hostname = sget(c->config, "Hostname");
        char buf[HOST_NAME_MAX + 1] = "";
        if (!*hostname) {
                const char *uts = sget(hc, "UTSMode");
                if (startswith(uts, "container:") && ctx->container_hostname && !ctx->volumes_only) {
                        r = ctx->container_hostname(ctx->userdata, uts + 10, buf, sizeof(buf), reterr);
                        if (r < 0) {
                                moat_error_wrap(reterr, r, "HostConfig.UTSMode");
                                goto fail;
                        }
                } else if (streq(net, "host") || streq(uts, "host")) {
                        if (ctx->host_hostname)
                                snprintf(buf, sizeof(buf), "%s", ctx->host_hostname);
                        else if (gethostname(buf, sizeof(buf) - 1) < 0)
                                buf[0] = '\0';
                } else
                        snprintf(buf, sizeof(buf), "%.12s", ctx->id);
                hostname = buf;
        }
        s->hostname = strdup(hostname);
        if (!s->hostname)
                goto nomem;

        /* mounts (the process step may add the init's) */
        r = collect_user_mounts(&b, ctx->image && ctx->image->has_config ? ctx->image->config.volumes : NULL, reterr);
        if (r < 0)
                goto fail;
        r = default_mounts(&b, reterr);
        if (r < 0)
                goto fail;

        r = process_from_image(&b, hostname, process, &s->config, reterr);
        if (r < 0)
                goto fail;

        if ((r = set(json_object_get(s->spec, "root"), "path",
                     json_string(ctx->root_path ? ctx->root_path : "rootfs"))) < 0 ||
            (r = set(json_object_get(s->spec, "root"), "readonly", json_boolean(b.readonly_rootfs))) < 0)
                goto fail;
        if ((r = set(process, "terminal", json_boolean(c->tty))) < 0)
                goto fail;
        json_t *cs = json_object_get(hc, "ConsoleSize");
        if (c->tty && (json_integer_value(json_array_get(cs, 0)) || json_integer_value(json_array_get(cs, 1))) &&
            (r = set(process, "consoleSize",
                     json_pack("{s:I, s:I}", "height", json_integer_value(json_array_get(cs, 0)), "width",
                               json_integer_value(json_array_get(cs, 1))))) < 0)
                goto fail;

        bool own_uts = !streq(sget(hc, "UTSMode"), "host") && !startswith(sget(hc, "UTSMode"), "container:");
        if (own_uts) {
                if ((r = set(s->spec, "hostname", json_string(hostname))) < 0)
                        goto fail;
                const char *dom = sget(c->config, "Domainname");
                if (*dom && (r = set(s->spec, "domainname", json_string(dom))) < 0)
                        goto fail;
        } else
                json_object_del(s->spec, "hostname");

        /* capabilities */
        uint64_t all = ctx->all_capabilities ? ctx->all_capabilities : moat_docker_all_capabilities();
        uint64_t caps;
        r = moat_docker_capabilities(moat_default_capability_mask(), all, json_object_get(hc, "CapAdd"),
                                     json_object_get(hc, "CapDrop"), b.privileged, &caps, reterr);
        if (r < 0)
                goto fail;
        json_t *capj = json_pack("{s:o, s:o, s:o}", "bounding", moat_docker_capabilities_json(caps), "effective", moat_docker_capabilities_json(caps),
                                 "permitted", moat_docker_capabilities_json(caps));
        if ((r = set(process, "capabilities", capj)) < 0)
                goto fail;

        r = security(&b, caps, process, linux_, reterr);
        if (r < 0)
                goto fail;
        if (!json_object_get(s->host_config, "MaskedPaths") &&
            (r = set(s->host_config, "MaskedPaths", json_deep_copy(json_object_get(linux_, "maskedPaths")))) < 0)
                goto fail;
        if (!json_object_get(s->host_config, "ReadonlyPaths") &&
            (r = set(s->host_config, "ReadonlyPaths", json_deep_copy(json_object_get(linux_, "readonlyPaths")))) < 0)
                goto fail;

        /* rlimits: the hardened defaults, replaced per type by Ulimits */
        json_t *rl = json_object_get(process, "rlimits");
        json_t *ulimits = json_object_get(hc, "Ulimits");
        for (size_t i = 0; i < json_array_size(ulimits); i++) {
                json_t *u = json_array_get(ulimits, i);
                const char *type = ulimit_oci_name(sget(u, "Name"));
                for (size_t k = json_array_size(rl); k-- > 0;)
                        if (streq(sget(json_array_get(rl, k), "type"), type))
                                json_array_remove(rl, k);
                int64_t soft = iget(u, "Soft"), hard = iget(u, "Hard");
                json_t *e = json_pack("{s:s, s:o, s:o}", "type", type, "soft",
                                      soft < 0 ? json_real(18446744073709551615.0) : json_integer(soft), "hard",
                                      hard < 0 ? json_real(18446744073709551615.0) : json_integer(hard));
                if ((r = append(rl, e)) < 0)
                        goto fail;
        }

        if (iget(hc, "OomScoreAdj") != 0 &&
            (r = set(process, "oomScoreAdj", json_integer(iget(hc, "OomScoreAdj")))) < 0)
                goto fail;

        r = resources(&b, linux_, reterr);
        if (r < 0)
                goto fail;

        /* sysctls: the hardened ping range needs moat's own network namespace */
        json_t *sysctl = json_object_get(linux_, "sysctl");
        if (!streq(net, "none"))
                json_object_del(sysctl, "net.ipv4.ping_group_range");
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(hc, "Sysctls"), k, v)
                if ((r = set(sysctl, k, json_deep_copy(v))) < 0)
                        goto fail;
        if (json_object_size(sysctl) == 0)
                json_object_del(linux_, "sysctl");

        r = add_namespace_paths(&b, linux_, reterr);
        if (r < 0)
                goto fail;

        /* cgroupsPath */
        const char *parent = sget(hc, "CgroupParent");
        char *cg = NULL;
        if (*parent) {
                _cleanup_free_ char *clean = clean_path(parent);
                if (!clean || asprintf(&cg, "%s/moat-%s", clean, ctx->id) < 0)
                        goto nomem;
        } else if (asprintf(&cg, "/moat/%s", ctx->id) < 0)
                goto nomem;
        if ((r = set(linux_, "cgroupsPath", json_string(cg))) < 0) {
                free(cg);
                goto fail;
        }
        free(cg);

        /* annotations: the client's, and what moat-runtime and tools may want */
        json_t *ann = json_object();
        if ((r = set(s->spec, "annotations", ann)) < 0)
                goto fail;
        json_object_foreach(json_object_get(hc, "Annotations"), k, v)
                if ((r = set(ann, k, json_deep_copy(v))) < 0)
                        goto fail;
        if ((r = set(ann, "org.moat.engine.id", json_string(ctx->id))) < 0 ||
            (r = set(ann, "org.moat.engine.image", json_string(c->image))) < 0)
                goto fail;

        /* config.json as written. The runtime's parser checks it where it
         * is read (the monitor's create), with the field named; the unit
         * tests check every spec built here against it too. */
        if (!ctx->volumes_only) {
                s->text = json_dumps(s->spec, JSON_COMPACT);
                if (!s->text)
                        goto nomem;
        }

        json_decref(b.user_mounts);
        json_decref(b.mounts);
        *ret = TAKE_PTR(s);
        return 0;
nomem:
        r = oom();
fail:
        json_decref(b.user_mounts);
        json_decref(b.mounts);
        return r;
}
