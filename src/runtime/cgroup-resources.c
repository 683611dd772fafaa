/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * linux.resources (see cgroup-resources.h). Parsing checks every value
 * against what the kernel would accept, names the JSON path of a bad one
 * and reads the host only to check cpusets and huge page sizes, so create
 * refuses a bad configuration before anything exists.
 *
 * Applying finds, per controller, the hierarchy that holds it: a v1 mount
 * first, else the cgroup2 tree (enabling the controller down the tree when
 * it is offered there, which on a hybrid host is how hugetlb and friends
 * are reached). Each controller then gets the files of its version, with
 * runc's and crun's conversions for v2 and runc's write orders (memory and
 * memory+swap, CFS period and quota). A kernel refusal is reported with
 * the JSON path, the file and the value.
 */

#include <fcntl.h>
#include <math.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "runtime/bpf-devices.h"
#include "runtime/cgroup-resources.h"

#define LIST_MAX 1024             /* entries of any array or object */
#define UNIFIED_KEY_MAX 128
#define UNIFIED_VALUE_MAX 4096
#define CPUSET_STRING_MAX 4096
#define PATH_MSG_MAX 256
#define CG_READ_MAX (1u << 20)
#define SHARES_MIN 2
#define SHARES_MAX 262144
#define CFS_MIN_US 1000
#define CFS_PERIOD_MAX_US 1000000

struct opt_i64 {
        bool set;
        int64_t v;
};

struct opt_u64 {
        bool set;
        uint64_t v;
};

struct weight_device {
        int64_t major, minor;
        struct opt_u64 weight, leaf_weight;
};

struct throttle {
        int64_t major, minor;
        uint64_t rate;
};

enum { THR_READ_BPS, THR_WRITE_BPS, THR_READ_IOPS, THR_WRITE_IOPS, N_THR };

static const struct {
        const char *json, *v1, *v2;
} throttle_names[N_THR] = {
        { "throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps" },
        { "throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps" },
        { "throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops" },
        { "throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops" },
};

struct hugepage {
        char *size;
        uint64_t limit;
};

struct if_prio {
        char *name;
        uint32_t prio;
};

struct rdma {
        char *device;
        struct opt_u64 handles, objects;
};

struct kv {
        char *key, *value;
};

struct moat_resources {
        char *prefix;
        void (*warn)(const char *msg);

        bool has_devices;
        struct moat_dev_rule *dev;
        size_t n_dev;

        struct {
                struct opt_i64 limit, reservation, swap;
                struct opt_u64 swappiness;
                bool has_disable_oom, disable_oom, check_before_update, kernel, kernel_tcp;
        } mem;

        struct {
                struct opt_u64 shares, period, burst, rt_period;
                struct opt_i64 quota, rt_runtime, idle;
                char *cpus, *mems;
        } cpu;

        struct opt_i64 pids;

        struct {
                struct opt_u64 weight, leaf_weight;
                struct weight_device *wd;
                size_t n_wd;
                struct throttle *thr[N_THR];
                size_t n_thr[N_THR];
        } blkio;

        struct hugepage *huge;
        size_t n_huge;

        struct opt_u64 classid;
        struct if_prio *prio;
        size_t n_prio;

        struct rdma *rdma;
        size_t n_rdma;

        struct kv *unified;
        size_t n_unified;
};

void moat_resources_free(struct moat_resources *r)
{
        if (!r)
                return;
        free(r->prefix);
        free(r->dev);
        free(r->cpu.cpus);
        free(r->cpu.mems);
        free(r->blkio.wd);
        for (int t = 0; t < N_THR; t++)
                free(r->blkio.thr[t]);
        for (size_t i = 0; i < r->n_huge; i++)
                free(r->huge[i].size);
        free(r->huge);
        for (size_t i = 0; i < r->n_prio; i++)
                free(r->prio[i].name);
        free(r->prio);
        for (size_t i = 0; i < r->n_rdma; i++)
                free(r->rdma[i].device);
        free(r->rdma);
        for (size_t i = 0; i < r->n_unified; i++) {
                free(r->unified[i].key);
                free(r->unified[i].value);
        }
        free(r->unified);
        free(r);
}

void moat_resources_set_warn(struct moat_resources *r, void (*warn)(const char *msg))
{
        if (r)
                r->warn = warn;
}

static void warnf(const struct moat_resources *r, const char *fmt, ...) MOAT_PRINTF(2, 3);
static void warnf(const struct moat_resources *r, const char *fmt, ...)
{
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (r->warn)
                r->warn(buf);
        else
                log_debug("%s", buf);
}

/* ---- conversions ----------------------------------------------------------- */

uint64_t moat_cpu_shares_to_weight(uint64_t shares)
{
        if (shares == 0)
                return 0;
        if (shares <= SHARES_MIN)
                return 1;
        if (shares >= SHARES_MAX)
                return 10000;
        double l = log2((double) shares);
        double exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
        double w = pow(10.0, exponent);
        /* Round up as crun does, forgiving the last bits of floating-point
         * error (shares 1024 is weight 100, not 101). */
        uint64_t iw = (uint64_t) w;
        if ((double) iw < w - 1e-6)
                iw++;
        return iw < 1 ? 1 : iw > 10000 ? 10000 : iw;
}

uint64_t moat_blkio_weight_to_io_weight(uint64_t weight)
{
        if (weight == 0)
                return 0;
        if (weight < 10)
                weight = 10;
        if (weight > 1000)
                weight = 1000;
        return 1 + (weight - 10) * 9999 / 990;
}

int moat_swap_to_v2(int64_t swap, int64_t limit, int64_t *ret, const char **ret_why)
{
        if (swap == 0 && limit == -1) {
                *ret = -1; /* unlimited memory: unlimited swap too, as with v1 */
                return 0;
        }
        if (swap == -1 || swap == 0) {
                *ret = swap;
                return 0;
        }
        if (limit <= 0) {
                *ret_why = "a memory+swap limit needs a memory limit (memory.limit)";
                return -EINVAL;
        }
        if (swap < limit) {
                *ret_why = "memory+swap must be at least memory.limit";
                return -EINVAL;
        }
        *ret = swap - limit;
        return 0;
}

int moat_cpuset_parse(const char *s, uint64_t *bits)
{
        memset(bits, 0, MOAT_CPUSET_WORDS * sizeof(uint64_t));
        if (strlen(s) > CPUSET_STRING_MAX)
                return -EINVAL;
        const char *p = s;
        while (*p && *p != '\n') {
                char *end;
                unsigned long a, b;

                if (*p < '0' || *p > '9')
                        return -EINVAL;
                errno = 0;
                a = strtoul(p, &end, 10);
                if (errno)
                        return -ERANGE;
                b = a;
                p = end;
                if (*p == '-') {
                        p++;
                        if (*p < '0' || *p > '9')
                                return -EINVAL;
                        errno = 0;
                        b = strtoul(p, &end, 10);
                        if (errno)
                                return -ERANGE;
                        p = end;
                        if (b < a)
                                return -EINVAL;
                }
                if (b >= MOAT_CPUSET_MAX)
                        return -ERANGE;
                for (unsigned long i = a; i <= b; i++)
                        bits[i / 64] |= 1ull << (i % 64);
                if (*p == ',') {
                        p++;
                        if (!*p || *p == '\n')
                                return -EINVAL;
                } else if (*p && *p != '\n')
                        return -EINVAL;
        }
        if (*p == '\n' && p[1])
                return -EINVAL;
        return 0;
}

int moat_parse_size(const char *s, int64_t *ret)
{
        uint64_t ip = 0, frac = 0, frac_div = 1, mult = 1;
        const char *p = s;

        if (streq(s, "-1")) {
                *ret = -1;
                return 0;
        }
        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (ip > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                ip = ip * 10 + (uint64_t) (*p - '0');
        }
        if (*p == '.') {
                p++;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                for (; *p >= '0' && *p <= '9'; p++)
                        if (frac_div < 1000000000ull) {
                                frac = frac * 10 + (uint64_t) (*p - '0');
                                frac_div *= 10;
                        }
        }
        if (*p == ' ')
                p++;
        switch (*p) {
        case 'k': case 'K': mult = 1ull << 10; p++; break;
        case 'm': case 'M': mult = 1ull << 20; p++; break;
        case 'g': case 'G': mult = 1ull << 30; p++; break;
        case 't': case 'T': mult = 1ull << 40; p++; break;
        case 'p': case 'P': mult = 1ull << 50; p++; break;
        default: break;
        }
        if (mult > 1 && (*p == 'i' || *p == 'I'))
                p++;
        if (*p == 'b' || *p == 'B')
                p++;
        if (*p)
                return -EINVAL;
        if (ip > (uint64_t) INT64_MAX / mult)
                return -ERANGE;
        uint64_t v = ip * mult + frac * mult / frac_div;
        if (v > (uint64_t) INT64_MAX)
                return -ERANGE;
        *ret = (int64_t) v;
        return 0;
}

/* ---- parsing --------------------------------------------------------------- */

struct pctx {
        const char *prefix;
        struct moat_error **reterr;
};

static bool absent(const json_t *v)
{
        return !v || json_is_null(v);
}

static int expect_object(const struct pctx *c, const json_t *v, const char *path)
{
        if (!json_is_object(v))
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s: must be an object", c->prefix, path);
        if (json_object_size(v) > LIST_MAX)
                return moat_error_setx(c->reterr, -E2BIG, "%s.%s: more than %d entries", c->prefix, path, LIST_MAX);
        return 0;
}

static int expect_array(const struct pctx *c, const json_t *v, const char *path)
{
        if (!json_is_array(v))
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s: must be an array", c->prefix, path);
        if (json_array_size(v) > LIST_MAX)
                return moat_error_setx(c->reterr, -E2BIG, "%s.%s: more than %d entries", c->prefix, path, LIST_MAX);
        return 0;
}

/* An integer member; min is the smallest value allowed. */
static int get_i64(const struct pctx *c, const json_t *obj, const char *path, const char *key, int64_t min,
                   struct opt_i64 *ret)
{
        const json_t *v = json_object_get(obj, key);

        ret->set = false;
        if (absent(v))
                return 0;
        if (!json_is_integer(v))
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s.%s: must be an integer", c->prefix, path, key);
        int64_t x = (int64_t) json_integer_value(v);
        if (x < min) {
                if (min == -1)
                        return moat_error_setx(c->reterr, -EINVAL,
                                               "%s.%s.%s: %" PRIi64 " is invalid (use -1 for no limit)", c->prefix,
                                               path, key, x);
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s.%s: %" PRIi64 " is invalid (must be at least %" PRIi64 ")",
                                       c->prefix, path, key, x, min);
        }
        ret->set = true;
        ret->v = x;
        return 0;
}

static int get_u64(const struct pctx *c, const json_t *obj, const char *path, const char *key, uint64_t max,
                   struct opt_u64 *ret)
{
        struct opt_i64 t;
        int r = get_i64(c, obj, path, key, 0, &t);

        if (r < 0)
                return r;
        ret->set = t.set;
        ret->v = (uint64_t) t.v;
        if (t.set && ret->v > max)
                return moat_error_setx(c->reterr, -ERANGE, "%s.%s.%s: %" PRIu64 " is too large (at most %" PRIu64 ")",
                                       c->prefix, path, key, ret->v, max);
        return 0;
}

static int get_bool(const struct pctx *c, const json_t *obj, const char *path, const char *key, bool *ret_set,
                    bool *ret)
{
        const json_t *v = json_object_get(obj, key);

        *ret_set = false;
        if (absent(v))
                return 0;
        if (!json_is_boolean(v))
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s.%s: must be true or false", c->prefix, path, key);
        *ret_set = true;
        *ret = json_is_true(v);
        return 0;
}

static int get_string(const struct pctx *c, const json_t *obj, const char *path, const char *key, size_t max,
                      const char **ret)
{
        const json_t *v = json_object_get(obj, key);

        *ret = NULL;
        if (absent(v))
                return 0;
        if (!json_is_string(v))
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s.%s: must be a string", c->prefix, path, key);
        if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v))
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s.%s: too long or contains a NUL byte", c->prefix,
                                       path, key);
        *ret = json_string_value(v);
        return 0;
}

static int parse_devices(const struct pctx *c, const json_t *arr, struct moat_resources *r)
{
        int k;

        if ((k = expect_array(c, arr, "devices")) < 0)
                return k;
        r->has_devices = true;
        r->dev = calloc(json_array_size(arr) + 1, sizeof(*r->dev));
        if (!r->dev)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(arr); i++) {
                const json_t *d = json_array_get(arr, i);
                struct moat_dev_rule *rule = &r->dev[r->n_dev];
                char path[PATH_MSG_MAX];
                bool set = false, allow = false;
                const char *type = NULL, *access = NULL;
                struct opt_i64 major, minor;

                snprintf(path, sizeof(path), "devices[%zu]", i);
                if ((k = expect_object(c, d, path)) < 0)
                        return k;
                if ((k = get_bool(c, d, path, "allow", &set, &allow)) < 0)
                        return k;
                if (!set)
                        return moat_error_setx(c->reterr, -EINVAL, "%s.%s.allow: required", c->prefix, path);
                if ((k = get_string(c, d, path, "type", 8, &type)) < 0 ||
                    (k = get_string(c, d, path, "access", 8, &access)) < 0 ||
                    (k = get_i64(c, d, path, "major", -1, &major)) < 0 ||
                    (k = get_i64(c, d, path, "minor", -1, &minor)) < 0)
                        return k;
                if (strempty(type))
                        type = "a";
                if (!streq(type, "a") && !streq(type, "b") && !streq(type, "c"))
                        return moat_error_setx(c->reterr, -EINVAL, "%s.%s.type: \"%s\" is not one of \"a\", \"b\", \"c\"",
                                               c->prefix, path, type);
                if ((major.set && major.v > UINT32_MAX) || (minor.set && minor.v > UINT32_MAX))
                        return moat_error_setx(c->reterr, -ERANGE, "%s.%s: major/minor out of range", c->prefix, path);
                unsigned acc = 0;
                if (strempty(access))
                        acc = MOAT_DEV_ALL;
                for (const char *p = access ? access : ""; *p; p++) {
                        unsigned bit = *p == 'r' ? MOAT_DEV_READ : *p == 'w' ? MOAT_DEV_WRITE : *p == 'm' ? MOAT_DEV_MKNOD : 0;
                        if (!bit || (acc & bit))
                                return moat_error_setx(c->reterr, -EINVAL,
                                                       "%s.%s.access: \"%s\" is not a combination of \"r\", \"w\", \"m\"",
                                                       c->prefix, path, access);
                        acc |= bit;
                }
                *rule = (struct moat_dev_rule){
                        .allow = allow,
                        .type = type[0],
                        .major = major.set ? major.v : MOAT_DEV_WILDCARD,
                        .minor = minor.set ? minor.v : MOAT_DEV_WILDCARD,
                        .access = acc,
                };
                r->n_dev++;
        }
        return 0;
}

static int parse_memory(const struct pctx *c, const json_t *m, struct moat_resources *r)
{
        struct opt_i64 kernel;
        bool set = false, b = false;
        int k;

        if ((k = expect_object(c, m, "memory")) < 0)
                return k;
        if ((k = get_i64(c, m, "memory", "limit", -1, &r->mem.limit)) < 0 ||
            (k = get_i64(c, m, "memory", "reservation", -1, &r->mem.reservation)) < 0 ||
            (k = get_i64(c, m, "memory", "swap", -1, &r->mem.swap)) < 0)
                return k;
        /* 0 means "not set", as with runc. */
        r->mem.limit.set = r->mem.limit.set && r->mem.limit.v != 0;
        r->mem.reservation.set = r->mem.reservation.set && r->mem.reservation.v != 0;
        r->mem.swap.set = r->mem.swap.set && r->mem.swap.v != 0;
        if (r->mem.limit.set && r->mem.swap.set && r->mem.limit.v > 0 && r->mem.swap.v > 0 &&
            r->mem.swap.v < r->mem.limit.v)
                return moat_error_setx(c->reterr, -EINVAL,
                                       "%s.memory.swap: %" PRIi64 " is less than memory.limit %" PRIi64
                                       " (swap is the memory+swap limit)",
                                       c->prefix, r->mem.swap.v, r->mem.limit.v);
        if (r->mem.swap.set && r->mem.swap.v > 0 && r->mem.limit.set && r->mem.limit.v == -1)
                return moat_error_setx(c->reterr, -EINVAL,
                                       "%s.memory.swap: a memory+swap limit with an unlimited memory.limit", c->prefix);

        if ((k = get_i64(c, m, "memory", "swappiness", -1, &kernel)) < 0)
                return k;
        if (kernel.set && kernel.v != -1) {
                if (kernel.v > 100)
                        return moat_error_setx(c->reterr, -EINVAL,
                                               "%s.memory.swappiness: %" PRIi64 " is invalid (must be 0 to 100)",
                                               c->prefix, kernel.v);
                r->mem.swappiness = (struct opt_u64){ true, (uint64_t) kernel.v };
        }
        if ((k = get_bool(c, m, "memory", "disableOOMKiller", &r->mem.has_disable_oom, &r->mem.disable_oom)) < 0 ||
            (k = get_bool(c, m, "memory", "checkBeforeUpdate", &set, &b)) < 0)
                return k;
        r->mem.check_before_update = set && b;
        if ((k = get_bool(c, m, "memory", "useHierarchy", &set, &b)) < 0)
                return k;
        if ((k = get_i64(c, m, "memory", "kernel", INT64_MIN, &kernel)) < 0)
                return k;
        r->mem.kernel = kernel.set && kernel.v != 0;
        if ((k = get_i64(c, m, "memory", "kernelTCP", INT64_MIN, &kernel)) < 0)
                return k;
        r->mem.kernel_tcp = kernel.set && kernel.v != 0;
        return 0;
}

static int read_host_list(const char *path, const char *fallback, char **ret)
{
        _cleanup_free_ char *s = NULL;
        int r = read_full_file_at(AT_FDCWD, path, 64 * 1024, &s, NULL);

        if (r == -ENOENT && fallback)
                s = strdup(fallback);
        else if (r < 0)
                return r;
        if (!s)
                return -ENOMEM;
        s[strcspn(s, "\n")] = '\0';
        *ret = TAKE_PTR(s);
        return 0;
}

static int check_cpuset(const struct pctx *c, const char *key, const char *value, const char *online_path,
                        const char *fallback, const char *what)
{
        _cleanup_free_ uint64_t *want = calloc(MOAT_CPUSET_WORDS, sizeof(uint64_t));
        _cleanup_free_ uint64_t *have = calloc(MOAT_CPUSET_WORDS, sizeof(uint64_t));
        _cleanup_free_ char *online = NULL;
        int r;

        if (!want || !have)
                return -ENOMEM;
        r = moat_cpuset_parse(value, want);
        if (r < 0)
                return moat_error_setx(c->reterr, -EINVAL,
                                       "%s.cpu.%s: \"%s\" is not a list of %s like \"0-3,6\"", c->prefix, key, value, what);
        r = read_host_list(online_path, fallback, &online);
        if (r < 0)
                return moat_error_set(c->reterr, r, "%s.cpu.%s: reading %s", c->prefix, key, online_path);
        if (moat_cpuset_parse(online, have) < 0)
                return moat_error_setx(c->reterr, -EINVAL, "%s: unexpected content \"%s\"", online_path, online);
        for (size_t i = 0; i < MOAT_CPUSET_WORDS; i++)
                if (want[i] & ~have[i])
                        return moat_error_setx(c->reterr, -EINVAL,
                                               "%s.cpu.%s: \"%s\" names %s that are not online on this host (online: %s)",
                                               c->prefix, key, value, what, online);
        return 0;
}

static int parse_cpu(const struct pctx *c, const json_t *o, struct moat_resources *r)
{
        const char *cpus = NULL, *mems = NULL;
        int k;

        if ((k = expect_object(c, o, "cpu")) < 0)
                return k;
        if ((k = get_u64(c, o, "cpu", "shares", SHARES_MAX, &r->cpu.shares)) < 0 ||
            (k = get_i64(c, o, "cpu", "quota", -1, &r->cpu.quota)) < 0 ||
            (k = get_u64(c, o, "cpu", "period", CFS_PERIOD_MAX_US, &r->cpu.period)) < 0 ||
            (k = get_u64(c, o, "cpu", "burst", INT64_MAX, &r->cpu.burst)) < 0 ||
            (k = get_i64(c, o, "cpu", "realtimeRuntime", -1, &r->cpu.rt_runtime)) < 0 ||
            (k = get_u64(c, o, "cpu", "realtimePeriod", INT64_MAX, &r->cpu.rt_period)) < 0 ||
            (k = get_i64(c, o, "cpu", "idle", 0, &r->cpu.idle)) < 0 ||
            (k = get_string(c, o, "cpu", "cpus", CPUSET_STRING_MAX, &cpus)) < 0 ||
            (k = get_string(c, o, "cpu", "mems", CPUSET_STRING_MAX, &mems)) < 0)
                return k;
        r->cpu.shares.set = r->cpu.shares.set && r->cpu.shares.v != 0;
        if (r->cpu.shares.set && r->cpu.shares.v < SHARES_MIN)
                return moat_error_setx(c->reterr, -EINVAL, "%s.cpu.shares: %" PRIu64 " is invalid (must be %d to %d)",
                                       c->prefix, r->cpu.shares.v, SHARES_MIN, SHARES_MAX);
        r->cpu.quota.set = r->cpu.quota.set && r->cpu.quota.v != 0;
        if (r->cpu.quota.set && r->cpu.quota.v > 0 && r->cpu.quota.v < CFS_MIN_US)
                return moat_error_setx(c->reterr, -EINVAL,
                                       "%s.cpu.quota: %" PRIi64 " is invalid (at least %d microseconds, or -1 for no limit)",
                                       c->prefix, r->cpu.quota.v, CFS_MIN_US);
        r->cpu.period.set = r->cpu.period.set && r->cpu.period.v != 0;
        if (r->cpu.period.set && r->cpu.period.v < CFS_MIN_US)
                return moat_error_setx(c->reterr, -EINVAL,
                                       "%s.cpu.period: %" PRIu64 " is invalid (must be %d to %d microseconds)", c->prefix,
                                       r->cpu.period.v, CFS_MIN_US, CFS_PERIOD_MAX_US);
        r->cpu.rt_runtime.set = r->cpu.rt_runtime.set && r->cpu.rt_runtime.v != 0;
        r->cpu.rt_period.set = r->cpu.rt_period.set && r->cpu.rt_period.v != 0;
        if (r->cpu.idle.set && r->cpu.idle.v > 1)
                return moat_error_setx(c->reterr, -EINVAL, "%s.cpu.idle: %" PRIi64 " is invalid (must be 0 or 1)",
                                       c->prefix, r->cpu.idle.v);
        if (!strempty(cpus)) {
                if ((k = check_cpuset(c, "cpus", cpus, "/sys/devices/system/cpu/online", NULL, "CPUs")) < 0)
                        return k;
                if (!(r->cpu.cpus = strdup(cpus)))
                        return -ENOMEM;
        }
        if (!strempty(mems)) {
                if ((k = check_cpuset(c, "mems", mems, "/sys/devices/system/node/online", "0", "memory nodes")) < 0)
                        return k;
                if (!(r->cpu.mems = strdup(mems)))
                        return -ENOMEM;
        }
        return 0;
}

static int parse_dev_numbers(const struct pctx *c, const json_t *o, const char *path, int64_t *major, int64_t *minor)
{
        struct opt_i64 a, b;
        int k;

        if ((k = get_i64(c, o, path, "major", 0, &a)) < 0 || (k = get_i64(c, o, path, "minor", 0, &b)) < 0)
                return k;
        if (!a.set || !b.set)
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s: major and minor are required", c->prefix, path);
        if (a.v > UINT32_MAX || b.v > UINT32_MAX)
                return moat_error_setx(c->reterr, -ERANGE, "%s.%s: major/minor out of range", c->prefix, path);
        *major = a.v;
        *minor = b.v;
        return 0;
}

static int check_blkio_weight(const struct pctx *c, const char *path, const char *key, struct opt_u64 *w)
{
        if (w->set && w->v == 0)
                w->set = false;
        if (w->set && (w->v < 10 || w->v > 1000))
                return moat_error_setx(c->reterr, -EINVAL, "%s.%s.%s: %" PRIu64 " is invalid (must be 10 to 1000)",
                                       c->prefix, path, key, w->v);
        return 0;
}

static int parse_blkio(const struct pctx *c, const json_t *o, struct moat_resources *r)
{
        char path[PATH_MSG_MAX];
        const json_t *arr;
        int k;

        if ((k = expect_object(c, o, "blockIO")) < 0)
                return k;
        if ((k = get_u64(c, o, "blockIO", "weight", UINT16_MAX, &r->blkio.weight)) < 0 ||
            (k = get_u64(c, o, "blockIO", "leafWeight", UINT16_MAX, &r->blkio.leaf_weight)) < 0 ||
            (k = check_blkio_weight(c, "blockIO", "weight", &r->blkio.weight)) < 0 ||
            (k = check_blkio_weight(c, "blockIO", "leafWeight", &r->blkio.leaf_weight)) < 0)
                return k;

        arr = json_object_get(o, "weightDevice");
        if (!absent(arr)) {
                if ((k = expect_array(c, arr, "blockIO.weightDevice")) < 0)
                        return k;
                r->blkio.wd = calloc(json_array_size(arr) + 1, sizeof(*r->blkio.wd));
                if (!r->blkio.wd)
                        return -ENOMEM;
                for (size_t i = 0; i < json_array_size(arr); i++) {
                        const json_t *e = json_array_get(arr, i);
                        struct weight_device *wd = &r->blkio.wd[i];

                        snprintf(path, sizeof(path), "blockIO.weightDevice[%zu]", i);
                        if ((k = expect_object(c, e, path)) < 0 ||
                            (k = parse_dev_numbers(c, e, path, &wd->major, &wd->minor)) < 0 ||
                            (k = get_u64(c, e, path, "weight", UINT16_MAX, &wd->weight)) < 0 ||
                            (k = get_u64(c, e, path, "leafWeight", UINT16_MAX, &wd->leaf_weight)) < 0 ||
                            (k = check_blkio_weight(c, path, "weight", &wd->weight)) < 0 ||
                            (k = check_blkio_weight(c, path, "leafWeight", &wd->leaf_weight)) < 0)
                                return k;
                        r->blkio.n_wd++;
                }
        }
        for (int t = 0; t < N_THR; t++) {
                arr = json_object_get(o, throttle_names[t].json);
                if (absent(arr))
                        continue;
                snprintf(path, sizeof(path), "blockIO.%s", throttle_names[t].json);
                if ((k = expect_array(c, arr, path)) < 0)
                        return k;
                r->blkio.thr[t] = calloc(json_array_size(arr) + 1, sizeof(struct throttle));
                if (!r->blkio.thr[t])
                        return -ENOMEM;
                for (size_t i = 0; i < json_array_size(arr); i++) {
                        const json_t *e = json_array_get(arr, i);
                        struct throttle *th = &r->blkio.thr[t][i];
                        struct opt_u64 rate;

                        snprintf(path, sizeof(path), "blockIO.%s[%zu]", throttle_names[t].json, i);
                        if ((k = expect_object(c, e, path)) < 0 ||
                            (k = parse_dev_numbers(c, e, path, &th->major, &th->minor)) < 0 ||
                            (k = get_u64(c, e, path, "rate", INT64_MAX, &rate)) < 0)
                                return k;
                        if (!rate.set)
                                return moat_error_setx(c->reterr, -EINVAL, "%s.%s.rate: required", c->prefix, path);
                        th->rate = rate.v;
                        r->blkio.n_thr[t]++;
                }
        }
        return 0;
}

/* "2MB" -> the kernel's directory /sys/kernel/mm/hugepages/hugepages-2048kB. */
static int check_hugepage_size(const char *size, uint64_t *ret_kb)
{
        char *end;
        uint64_t mult;

        if (!*size || *size < '0' || *size > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long n = strtoull(size, &end, 10);
        if (errno || n == 0 || n > (1ull << 32))
                return -EINVAL;
        if (streq(end, "KB"))
                mult = 1;
        else if (streq(end, "MB"))
                mult = 1024;
        else if (streq(end, "GB"))
                mult = 1024 * 1024;
        else
                return -EINVAL;
        *ret_kb = n * mult;
        return 0;
}

static int parse_hugepages(const struct pctx *c, const json_t *arr, struct moat_resources *r)
{
        int k;

        if ((k = expect_array(c, arr, "hugepageLimits")) < 0)
                return k;
        r->huge = calloc(json_array_size(arr) + 1, sizeof(*r->huge));
        if (!r->huge)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(arr); i++) {
                const json_t *e = json_array_get(arr, i);
                char path[PATH_MSG_MAX], dir[PATH_MSG_MAX];
                const char *size = NULL;
                struct opt_u64 limit;
                uint64_t kb;

                snprintf(path, sizeof(path), "hugepageLimits[%zu]", i);
                if ((k = expect_object(c, e, path)) < 0 || (k = get_string(c, e, path, "pageSize", 32, &size)) < 0 ||
                    (k = get_u64(c, e, path, "limit", INT64_MAX, &limit)) < 0)
                        return k;
                if (!size || !limit.set)
                        return moat_error_setx(c->reterr, -EINVAL, "%s.%s: pageSize and limit are required", c->prefix,
                                               path);
                if (check_hugepage_size(size, &kb) < 0)
                        return moat_error_setx(c->reterr, -EINVAL,
                                               "%s.%s.pageSize: \"%s\" is not a size like \"2MB\" or \"1GB\"", c->prefix,
                                               path, size);
                snprintf(dir, sizeof(dir), "/sys/kernel/mm/hugepages/hugepages-%" PRIu64 "kB", kb);
                if (access(dir, F_OK) < 0)
                        return moat_error_setx(c->reterr, -EINVAL,
                                               "%s.%s.pageSize: this host has no %s huge pages (no %s)", c->prefix, path,
                                               size, dir);
                if (!(r->huge[i].size = strdup(size)))
                        return -ENOMEM;
                r->huge[i].limit = limit.v;
                r->n_huge++;
        }
        return 0;
}

static bool plain_name(const char *s, size_t max)
{
        if (!*s || strlen(s) > max)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= ' ' || *s == 0x7f || *s == '/')
                        return false;
        return true;
}

static int parse_network(const struct pctx *c, const json_t *o, struct moat_resources *r)
{
        const json_t *arr;
        int k;

        if ((k = expect_object(c, o, "network")) < 0)
                return k;
        if ((k = get_u64(c, o, "network", "classID", UINT32_MAX, &r->classid)) < 0)
                return k;
        arr = json_object_get(o, "priorities");
        if (absent(arr))
                return 0;
        if ((k = expect_array(c, arr, "network.priorities")) < 0)
                return k;
        r->prio = calloc(json_array_size(arr) + 1, sizeof(*r->prio));
        if (!r->prio)
                return -ENOMEM;
        for (size_t i = 0; i < json_array_size(arr); i++) {
                const json_t *e = json_array_get(arr, i);
                char path[PATH_MSG_MAX];
                const char *name = NULL;
                struct opt_u64 prio;

                snprintf(path, sizeof(path), "network.priorities[%zu]", i);
                if ((k = expect_object(c, e, path)) < 0 || (k = get_string(c, e, path, "name", 64, &name)) < 0 ||
                    (k = get_u64(c, e, path, "priority", UINT32_MAX, &prio)) < 0)
                        return k;
                if (!name || !plain_name(name, 15))
                        return moat_error_setx(c->reterr, -EINVAL, "%s.%s.name: must be an interface name", c->prefix,
                                               path);
                if (!(r->prio[i].name = strdup(name)))
                        return -ENOMEM;
                r->prio[i].prio = prio.set ? (uint32_t) prio.v : 0;
                r->n_prio++;
        }
        return 0;
}

static int parse_rdma(const struct pctx *c, const json_t *o, struct moat_resources *r)
{
        const char *dev;
        const json_t *e;
        int k;

        if ((k = expect_object(c, o, "rdma")) < 0)
                return k;
        r->rdma = calloc(json_object_size(o) + 1, sizeof(*r->rdma));
        if (!r->rdma)
                return -ENOMEM;
        json_object_foreach((json_t *) o, dev, e) {
                char path[PATH_MSG_MAX];
                struct rdma *d = &r->rdma[r->n_rdma];

                if (!plain_name(dev, 64))
                        return moat_error_setx(c->reterr, -EINVAL, "%s.rdma: \"%.64s\" is not a device name", c->prefix,
                                               dev);
                snprintf(path, sizeof(path), "rdma.%s", dev);
                if ((k = expect_object(c, e, path)) < 0 ||
                    (k = get_u64(c, e, path, "hcaHandles", UINT32_MAX, &d->handles)) < 0 ||
                    (k = get_u64(c, e, path, "hcaObjects", UINT32_MAX, &d->objects)) < 0)
                        return k;
                if (!(d->device = strdup(dev)))
                        return -ENOMEM;
                r->n_rdma++;
        }
        return 0;
}

static bool unified_key_valid(const char *key)
{
        const char *dot = strchr(key, '.');

        if (!dot || dot == key || !dot[1] || strlen(key) > UNIFIED_KEY_MAX)
                return false;
        for (const char *p = key; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                      *p == '_' || *p == '-'))
                        return false;
        return true;
}

static int parse_unified(const struct pctx *c, const json_t *o, struct moat_resources *r)
{
        static const char *const refused[] = { "cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.subtree_control",
                                               "cgroup.type", "cgroup.freeze" };
        const char *key;
        const json_t *v;
        int k;

        if ((k = expect_object(c, o, "unified")) < 0)
                return k;
        r->unified = calloc(json_object_size(o) + 1, sizeof(*r->unified));
        if (!r->unified)
                return -ENOMEM;
        json_object_foreach((json_t *) o, key, v) {
                if (!unified_key_valid(key))
                        return moat_error_setx(c->reterr, -EINVAL,
                                               "%s.unified: \"%.128s\" is not a cgroup file name like \"memory.high\"",
                                               c->prefix, key);
                for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                        if (streq(key, refused[i]))
                                return moat_error_setx(c->reterr, -EPERM,
                                                       "%s.unified.%s: moves or controls processes, not a limit; refused",
                                                       c->prefix, key);
                if (!json_is_string(v) || json_string_length(v) > UNIFIED_VALUE_MAX ||
                    strlen(json_string_value(v)) != json_string_length(v))
                        return moat_error_setx(c->reterr, -EINVAL, "%s.unified.%s: must be a string of at most %d bytes",
                                               c->prefix, key, UNIFIED_VALUE_MAX);
                struct kv *e = &r->unified[r->n_unified];
                if (!(e->key = strdup(key)) || !(e->value = strdup(json_string_value(v))))
                        return -ENOMEM;
                r->n_unified++;
        }
        return 0;
}

int moat_resources_parse(const json_t *resources, const char *path_prefix, struct moat_resources **ret,
                         struct moat_error **reterr)
{
        _cleanup_resources_ struct moat_resources *r = NULL;
        const char *prefix = path_prefix ? path_prefix : "resources";
        const struct pctx c = { .prefix = prefix, .reterr = reterr };
        const json_t *v;
        int k;

        r = calloc(1, sizeof(*r));
        if (!r || !(r->prefix = strdup(prefix)))
                return -ENOMEM;
        if (absent(resources)) {
                *ret = TAKE_PTR(r);
                return 0;
        }
        if (!json_is_object(resources))
                return moat_error_setx(reterr, -EINVAL, "%s: must be an object", prefix);

        if (!absent(v = json_object_get(resources, "devices")) && (k = parse_devices(&c, v, r)) < 0)
                return k;
        if (!absent(v = json_object_get(resources, "memory")) && (k = parse_memory(&c, v, r)) < 0)
                return k;
        if (!absent(v = json_object_get(resources, "cpu")) && (k = parse_cpu(&c, v, r)) < 0)
                return k;
        if (!absent(v = json_object_get(resources, "pids"))) {
                if ((k = expect_object(&c, v, "pids")) < 0 ||
                    (k = get_i64(&c, v, "pids", "limit", INT64_MIN, &r->pids)) < 0)
                        return k;
        }
        if (!absent(v = json_object_get(resources, "blockIO")) && (k = parse_blkio(&c, v, r)) < 0)
                return k;
        if (!absent(v = json_object_get(resources, "hugepageLimits")) && (k = parse_hugepages(&c, v, r)) < 0)
                return k;
        if (!absent(v = json_object_get(resources, "network")) && (k = parse_network(&c, v, r)) < 0)
                return k;
        if (!absent(v = json_object_get(resources, "rdma")) && (k = parse_rdma(&c, v, r)) < 0)
                return k;
        if (!absent(v = json_object_get(resources, "unified")) && (k = parse_unified(&c, v, r)) < 0)
                return k;

        *ret = TAKE_PTR(r);
        return 0;
}

/* ---- applying -------------------------------------------------------------- */

struct actx {
        struct moat_cgroup *cg;
        const struct moat_resources *r;
        enum moat_resources_mode mode;
        struct moat_error **reterr;
        const char *p; /* JSON path prefix */
};

/* Open the directory of a controller: a v1 mount, or the cgroup2 tree
 * after enabling it there. -ENOENT (no error set) when neither has it. */
static int open_ctrl(const struct actx *a, const char *ctrl, int *ret_fd, bool *ret_v2)
{
        _cleanup_error_ struct moat_error *e = NULL;
        int r = moat_cgroup_open_controller(a->cg, ctrl, ret_fd, ret_v2, &e);

        if (r == -ENOENT) {
                moat_error_free(e);
                e = NULL;
                r = moat_cgroup_v2_enable(a->cg, ctrl, &e);
                if (r == -ENOENT)
                        return -ENOENT;
                if (r >= 0) {
                        moat_error_free(e);
                        e = NULL;
                        r = moat_cgroup_open_controller(a->cg, ctrl, ret_fd, ret_v2, &e);
                }
        }
        if (r < 0)
                return moat_error_setx(a->reterr, r, "%s", e ? e->msg : "opening the container's cgroup");
        return 0;
}

static int no_ctrl(const struct actx *a, const char *field, const char *ctrl)
{
        return moat_error_setx(a->reterr, -EOPNOTSUPP,
                               "%s.%s: not supported on this host: no cgroup hierarchy has the %s controller", a->p,
                               field, ctrl);
}

static bool file_exists(int fd, const char *file)
{
        return faccessat(fd, file, F_OK, 0) == 0;
}

static int write_file(const struct actx *a, int fd, const char *field, const char *file, const char *value)
{
        int r = write_string_file_at(fd, file, value);

        if (r == -ENOENT)
                return moat_error_setx(a->reterr, -EOPNOTSUPP, "%s.%s: not supported by this kernel (no %s)", a->p,
                                       field, file);
        if (r < 0)
                return moat_error_set(a->reterr, r, "%s.%s: writing \"%s\" to %s", a->p, field, value, file);
        return 0;
}

static int write_i64(const struct actx *a, int fd, const char *field, const char *file, int64_t v)
{
        char buf[32];

        snprintf(buf, sizeof(buf), "%" PRIi64, v);
        return write_file(a, fd, field, file, buf);
}

/* A limit in v2 syntax: "max" for -1. */
static int write_max(const struct actx *a, int fd, const char *field, const char *file, int64_t v)
{
        if (v < 0)
                return write_file(a, fd, field, file, "max");
        return write_i64(a, fd, field, file, v);
}

static int read_first_word(int fd, const char *file, char *buf, size_t size)
{
        _cleanup_free_ char *s = NULL;
        int r = read_full_file_at(fd, file, CG_READ_MAX, &s, NULL);

        if (r < 0)
                return r;
        s[strcspn(s, " \n")] = '\0';
        snprintf(buf, size, "%s", s);
        return 0;
}

static int read_u64_file(int fd, const char *file, uint64_t *ret)
{
        char buf[64];
        int r = read_first_word(fd, file, buf, sizeof(buf));

        if (r < 0)
                return r;
        if (streq(buf, "max")) {
                *ret = UINT64_MAX;
                return 0;
        }
        return safe_atou64(buf, ret);
}

/* ---- memory ---- */

static int check_usage(const struct actx *a, int fd, const char *field, const char *usage_file, int64_t limit)
{
        uint64_t usage;
        int r;

        if (limit <= 0)
                return 0;
        r = read_u64_file(fd, usage_file, &usage);
        if (r < 0)
                return moat_error_set(a->reterr, r, "%s.memory.checkBeforeUpdate: reading %s", a->p, usage_file);
        if ((uint64_t) limit <= usage)
                return moat_error_setx(a->reterr, -EBUSY,
                                       "%s.%s: refusing %" PRIi64 ": the container already uses %" PRIu64
                                       " bytes (%s, checkBeforeUpdate)",
                                       a->p, field, limit, usage, usage_file);
        return 0;
}

static int v1_set_limit(const struct actx *a, int fd, int64_t limit)
{
        char buf[32];
        int r;

        if (limit == 0)
                return 0;
        snprintf(buf, sizeof(buf), "%" PRIi64, limit);
        r = write_string_file_at(fd, "memory.limit_in_bytes", buf);
        if (r == -EBUSY) {
                uint64_t usage = 0;
                if (read_u64_file(fd, "memory.usage_in_bytes", &usage) < 0)
                        usage = 0;
                return moat_error_set(a->reterr, r,
                                      "%s.memory.limit: writing \"%s\" to memory.limit_in_bytes: the container "
                                      "uses %" PRIu64 " bytes, more than the new limit",
                                      a->p, buf, usage);
        }
        if (r < 0)
                return moat_error_set(a->reterr, r, "%s.memory.limit: writing \"%s\" to memory.limit_in_bytes", a->p,
                                      buf);
        return 0;
}

static int v1_set_swap(const struct actx *a, int fd, int64_t swap)
{
        if (swap == 0)
                return 0;
        if (!file_exists(fd, "memory.memsw.limit_in_bytes")) {
                if (swap == -1)
                        return 0;
                return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                       "%s.memory.swap: swap accounting is not enabled on this host "
                                       "(no memory.memsw.limit_in_bytes)",
                                       a->p);
        }
        return write_i64(a, fd, "memory.swap", "memory.memsw.limit_in_bytes", swap);
}

static int memory_v1(const struct actx *a, int fd)
{
        const struct moat_resources *r = a->r;
        int64_t limit = r->mem.limit.set ? r->mem.limit.v : 0;
        int64_t swap = r->mem.swap.set ? r->mem.swap.v : 0;
        int k;

        if (r->mem.check_before_update) {
                if ((k = check_usage(a, fd, "memory.limit", "memory.usage_in_bytes", limit)) < 0)
                        return k;
                if (file_exists(fd, "memory.memsw.usage_in_bytes") &&
                    (k = check_usage(a, fd, "memory.swap", "memory.memsw.usage_in_bytes", swap)) < 0)
                        return k;
        }

        /* runc's order: memory+swap can never be below memory, so when
         * raising (or unlimiting) write memsw first, else the limit first. */
        if (limit == -1 && swap == 0 && file_exists(fd, "memory.memsw.limit_in_bytes"))
                swap = -1;
        bool swap_first = false;
        if (limit != 0 && swap != 0) {
                uint64_t cur;
                k = read_u64_file(fd, "memory.limit_in_bytes", &cur);
                if (k < 0)
                        return moat_error_set(a->reterr, k, "%s.memory: reading memory.limit_in_bytes", a->p);
                swap_first = swap == -1 || cur < (uint64_t) swap;
        }
        if (swap_first) {
                if ((k = v1_set_swap(a, fd, swap)) < 0 || (k = v1_set_limit(a, fd, limit)) < 0)
                        return k;
        } else if ((k = v1_set_limit(a, fd, limit)) < 0 || (k = v1_set_swap(a, fd, swap)) < 0)
                return k;

        if (r->mem.reservation.set &&
            (k = write_i64(a, fd, "memory.reservation", "memory.soft_limit_in_bytes", r->mem.reservation.v)) < 0)
                return k;
        if (r->mem.swappiness.set &&
            (k = write_i64(a, fd, "memory.swappiness", "memory.swappiness", (int64_t) r->mem.swappiness.v)) < 0)
                return k;
        if (r->mem.has_disable_oom &&
            (k = write_file(a, fd, "memory.disableOOMKiller", "memory.oom_control", r->mem.disable_oom ? "1" : "0")) < 0)
                return k;
        return 0;
}

static int memory_v2(const struct actx *a, int fd)
{
        const struct moat_resources *r = a->r;
        int64_t limit = r->mem.limit.set ? r->mem.limit.v : 0;
        int64_t swap = r->mem.swap.set ? r->mem.swap.v : 0;
        int k;

        if (r->mem.check_before_update && (k = check_usage(a, fd, "memory.limit", "memory.current", limit)) < 0)
                return k;

        if (swap != 0 || limit == -1) {
                int64_t base = limit, v2swap;
                const char *why = NULL;

                /* An update of the swap alone keeps the current limit. */
                if (base == 0 && swap > 0) {
                        uint64_t cur;
                        k = read_u64_file(fd, "memory.max", &cur);
                        if (k < 0)
                                return moat_error_set(a->reterr, k, "%s.memory.swap: reading memory.max", a->p);
                        base = cur == UINT64_MAX ? -1 : (int64_t) cur;
                }
                if (moat_swap_to_v2(swap, base, &v2swap, &why) < 0)
                        return moat_error_setx(a->reterr, -EINVAL, "%s.memory.swap: %" PRIi64 ": %s", a->p, swap, why);
                if (r->mem.check_before_update && v2swap > 0 && limit > 0) {
                        uint64_t cur = 0, sw = 0;
                        if (read_u64_file(fd, "memory.current", &cur) >= 0 &&
                            read_u64_file(fd, "memory.swap.current", &sw) >= 0 && (uint64_t) swap <= cur + sw)
                                return moat_error_setx(a->reterr, -EBUSY,
                                                       "%s.memory.swap: refusing %" PRIi64 ": the container already "
                                                       "uses %" PRIu64 " bytes of memory and swap (checkBeforeUpdate)",
                                                       a->p, swap, cur + sw);
                }
                if (!file_exists(fd, "memory.swap.max")) {
                        if (v2swap > 0)
                                return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                                       "%s.memory.swap: swap accounting is not enabled on this host "
                                                       "(no memory.swap.max)",
                                                       a->p);
                } else if ((k = write_max(a, fd, "memory.swap", "memory.swap.max", v2swap)) < 0)
                        return k;
        }
        if (limit != 0 && (k = write_max(a, fd, "memory.limit", "memory.max", limit)) < 0)
                return k;
        if (r->mem.reservation.set &&
            (k = write_max(a, fd, "memory.reservation", "memory.low", r->mem.reservation.v)) < 0)
                return k;
        if (r->mem.swappiness.set)
                warnf(r, "%s.memory.swappiness: cgroup v2 has no per-cgroup swappiness; ignored", a->p);
        if (r->mem.has_disable_oom && r->mem.disable_oom)
                warnf(r, "%s.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer; ignored", a->p);
        /* One OOM kill takes the whole container, not a random process of it. */
        if (a->mode == MOAT_RESOURCES_CREATE && file_exists(fd, "memory.oom.group") &&
            (k = write_file(a, fd, "memory", "memory.oom.group", "1")) < 0)
                return k;
        return 0;
}

static bool memory_wanted(const struct moat_resources *r)
{
        return r->mem.limit.set || r->mem.swap.set || r->mem.reservation.set || r->mem.swappiness.set ||
               r->mem.has_disable_oom;
}

static int apply_memory(const struct actx *a)
{
        const struct moat_resources *r = a->r;
        _cleanup_close_ int fd = -EBADF;
        bool v2 = false;
        int k;

        if (r->mem.kernel)
                warnf(r, "%s.memory.kernel: kernel memory limits are not supported by current kernels; ignored", a->p);
        if (r->mem.kernel_tcp)
                warnf(r, "%s.memory.kernelTCP: kernel TCP memory limits are deprecated; ignored", a->p);

        bool wanted = memory_wanted(r);
        if (!wanted) {
                /* Only the default memory.oom.group=1 of a create: best
                 * effort, never a reason to switch a controller on in a
                 * parent (which may hold processes) or to fail. */
                _cleanup_error_ struct moat_error *e = NULL;
                if (a->mode != MOAT_RESOURCES_CREATE ||
                    moat_cgroup_open_controller(a->cg, "memory", &fd, &v2, &e) < 0 || !v2)
                        return 0;
                if (file_exists(fd, "memory.oom.group") && write_string_file_at(fd, "memory.oom.group", "1") < 0)
                        log_debug("memory.oom.group could not be set: %m");
                return 0;
        }
        k = open_ctrl(a, "memory", &fd, &v2);
        if (k == -ENOENT)
                return wanted ? no_ctrl(a, "memory", "memory") : 0;
        if (k < 0)
                return k;
        if (v2)
                return memory_v2(a, fd);
        return wanted ? memory_v1(a, fd) : 0;
}

/* ---- cpu ---- */

static int cpu_v1(const struct actx *a, int fd)
{
        const struct moat_resources *r = a->r;
        int k;

        if (r->cpu.shares.set) {
                uint64_t got;
                if ((k = write_i64(a, fd, "cpu.shares", "cpu.shares", (int64_t) r->cpu.shares.v)) < 0)
                        return k;
                if (read_u64_file(fd, "cpu.shares", &got) >= 0 && got != r->cpu.shares.v)
                        return moat_error_setx(a->reterr, -ERANGE,
                                               "%s.cpu.shares: the kernel set %" PRIu64 " instead of %" PRIu64, a->p,
                                               got, r->cpu.shares.v);
        }

        /* A shorter period can be refused until the quota fits it: retry
         * it after the quota, as runc does. Likewise a burst above the old
         * quota. */
        bool period_again = false, burst_again = false;
        if (r->cpu.period.set) {
                char buf[32];
                snprintf(buf, sizeof(buf), "%" PRIu64, r->cpu.period.v);
                k = write_string_file_at(fd, "cpu.cfs_period_us", buf);
                if (k == -EINVAL && r->cpu.quota.set)
                        period_again = true;
                else if (k < 0)
                        return moat_error_set(a->reterr, k, "%s.cpu.period: writing \"%s\" to cpu.cfs_period_us", a->p,
                                              buf);
        }
        if (r->cpu.burst.set) {
                char buf[32];
                snprintf(buf, sizeof(buf), "%" PRIu64, r->cpu.burst.v);
                k = write_string_file_at(fd, "cpu.cfs_burst_us", buf);
                if (k == -EINVAL && r->cpu.quota.set)
                        burst_again = true;
                else if (k < 0)
                        return write_file(a, fd, "cpu.burst", "cpu.cfs_burst_us", buf);
        }
        if (r->cpu.quota.set && (k = write_i64(a, fd, "cpu.quota", "cpu.cfs_quota_us", r->cpu.quota.v)) < 0)
                return k;
        if (period_again &&
            (k = write_i64(a, fd, "cpu.period", "cpu.cfs_period_us", (int64_t) r->cpu.period.v)) < 0)
                return k;
        if (burst_again && (k = write_i64(a, fd, "cpu.burst", "cpu.cfs_burst_us", (int64_t) r->cpu.burst.v)) < 0)
                return k;

        /* The runtime may not exceed the period: shrink in the order that
         * keeps that true. */
        if (r->cpu.rt_period.set && r->cpu.rt_runtime.set) {
                uint64_t cur_period = 0;
                if (read_u64_file(fd, "cpu.rt_period_us", &cur_period) >= 0 && r->cpu.rt_runtime.v >= 0 &&
                    (uint64_t) r->cpu.rt_runtime.v > cur_period) {
                        if ((k = write_i64(a, fd, "cpu.realtimePeriod", "cpu.rt_period_us", (int64_t) r->cpu.rt_period.v)) < 0 ||
                            (k = write_i64(a, fd, "cpu.realtimeRuntime", "cpu.rt_runtime_us", r->cpu.rt_runtime.v)) < 0)
                                return k;
                } else if ((k = write_i64(a, fd, "cpu.realtimeRuntime", "cpu.rt_runtime_us", r->cpu.rt_runtime.v)) < 0 ||
                           (k = write_i64(a, fd, "cpu.realtimePeriod", "cpu.rt_period_us", (int64_t) r->cpu.rt_period.v)) < 0)
                        return k;
        } else if (r->cpu.rt_period.set) {
                if ((k = write_i64(a, fd, "cpu.realtimePeriod", "cpu.rt_period_us", (int64_t) r->cpu.rt_period.v)) < 0)
                        return k;
        } else if (r->cpu.rt_runtime.set) {
                if ((k = write_i64(a, fd, "cpu.realtimeRuntime", "cpu.rt_runtime_us", r->cpu.rt_runtime.v)) < 0)
                        return k;
        }
        if (r->cpu.idle.set && (k = write_i64(a, fd, "cpu.idle", "cpu.idle", r->cpu.idle.v)) < 0)
                return k;
        return 0;
}

static int cpu_v2(const struct actx *a, int fd)
{
        const struct moat_resources *r = a->r;
        int k;

        if (r->cpu.rt_runtime.set || r->cpu.rt_period.set)
                return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                       "%s.cpu.%s: realtime scheduling limits are not supported on cgroup v2", a->p,
                                       r->cpu.rt_runtime.set ? "realtimeRuntime" : "realtimePeriod");
        if (r->cpu.shares.set &&
            (k = write_i64(a, fd, "cpu.shares", "cpu.weight", (int64_t) moat_cpu_shares_to_weight(r->cpu.shares.v))) < 0)
                return k;
        if (r->cpu.quota.set || r->cpu.period.set) {
                char quota[32] = "max", cur[64] = "", buf[80];
                if (r->cpu.quota.set) {
                        if (r->cpu.quota.v > 0)
                                snprintf(quota, sizeof(quota), "%" PRIi64, r->cpu.quota.v);
                } else if (read_first_word(fd, "cpu.max", cur, sizeof(cur)) >= 0 && *cur)
                        snprintf(quota, sizeof(quota), "%s", cur); /* a new period keeps the quota */
                if (r->cpu.period.set)
                        snprintf(buf, sizeof(buf), "%s %" PRIu64, quota, r->cpu.period.v);
                else
                        snprintf(buf, sizeof(buf), "%s", quota);
                if ((k = write_file(a, fd, r->cpu.quota.set ? "cpu.quota" : "cpu.period", "cpu.max", buf)) < 0)
                        return k;
        }
        if (r->cpu.burst.set && (k = write_i64(a, fd, "cpu.burst", "cpu.max.burst", (int64_t) r->cpu.burst.v)) < 0)
                return k;
        if (r->cpu.idle.set && (k = write_i64(a, fd, "cpu.idle", "cpu.idle", r->cpu.idle.v)) < 0)
                return k;
        return 0;
}

static int apply_cpu(const struct actx *a)
{
        const struct moat_resources *r = a->r;
        int k;

        if (r->cpu.shares.set || r->cpu.quota.set || r->cpu.period.set || r->cpu.burst.set || r->cpu.rt_period.set ||
            r->cpu.rt_runtime.set || r->cpu.idle.set) {
                _cleanup_close_ int fd = -EBADF;
                bool v2 = false;
                k = open_ctrl(a, "cpu", &fd, &v2);
                if (k == -ENOENT)
                        return no_ctrl(a, "cpu", "cpu");
                if (k < 0)
                        return k;
                if ((k = v2 ? cpu_v2(a, fd) : cpu_v1(a, fd)) < 0)
                        return k;
        }
        if (r->cpu.cpus || r->cpu.mems) {
                _cleanup_close_ int fd = -EBADF;
                bool v2 = false;
                k = open_ctrl(a, "cpuset", &fd, &v2);
                if (k == -ENOENT)
                        return no_ctrl(a, r->cpu.cpus ? "cpu.cpus" : "cpu.mems", "cpuset");
                if (k < 0)
                        return k;
                if (r->cpu.cpus && (k = write_file(a, fd, "cpu.cpus", "cpuset.cpus", r->cpu.cpus)) < 0)
                        return k;
                if (r->cpu.mems && (k = write_file(a, fd, "cpu.mems", "cpuset.mems", r->cpu.mems)) < 0)
                        return k;
        }
        return 0;
}

/* ---- pids ---- */

static int apply_pids(const struct actx *a)
{
        _cleanup_close_ int fd = -EBADF;
        bool v2 = false;
        int k;

        if (!a->r->pids.set)
                return 0;
        k = open_ctrl(a, "pids", &fd, &v2);
        if (k == -ENOENT)
                return no_ctrl(a, "pids.limit", "pids");
        if (k < 0)
                return k;
        /* 0 and -1 (any value below 1) mean no limit, as with runc. */
        return write_max(a, fd, "pids.limit", "pids.max", a->r->pids.v > 0 ? a->r->pids.v : -1);
}

/* ---- blockIO ---- */

static int blkio_v1(const struct actx *a, int fd)
{
        const struct moat_resources *r = a->r;
        const char *weight_file = file_exists(fd, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
        const char *wd_file = file_exists(fd, "blkio.weight_device") ? "blkio.weight_device" : "blkio.bfq.weight_device";
        char buf[96];
        int k;

        if ((r->blkio.weight.set || r->blkio.n_wd > 0) && !file_exists(fd, weight_file))
                return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                       "%s.blockIO.weight: not supported on this host: the blkio controller has no "
                                       "blkio.weight or blkio.bfq.weight (no weight-based I/O scheduler)",
                                       a->p);
        if (r->blkio.weight.set && (k = write_i64(a, fd, "blockIO.weight", weight_file, (int64_t) r->blkio.weight.v)) < 0)
                return k;
        if (r->blkio.leaf_weight.set &&
            (k = write_i64(a, fd, "blockIO.leafWeight", "blkio.leaf_weight", (int64_t) r->blkio.leaf_weight.v)) < 0)
                return k;
        for (size_t i = 0; i < r->blkio.n_wd; i++) {
                const struct weight_device *wd = &r->blkio.wd[i];
                char field[64];
                snprintf(field, sizeof(field), "blockIO.weightDevice[%zu]", i);
                if (wd->weight.set) {
                        snprintf(buf, sizeof(buf), "%" PRIi64 ":%" PRIi64 " %" PRIu64, wd->major, wd->minor,
                                 wd->weight.v);
                        if ((k = write_file(a, fd, field, wd_file, buf)) < 0)
                                return k;
                }
                if (wd->leaf_weight.set) {
                        snprintf(buf, sizeof(buf), "%" PRIi64 ":%" PRIi64 " %" PRIu64, wd->major, wd->minor,
                                 wd->leaf_weight.v);
                        if ((k = write_file(a, fd, field, "blkio.leaf_weight_device", buf)) < 0)
                                return k;
                }
        }
        for (int t = 0; t < N_THR; t++)
                for (size_t i = 0; i < r->blkio.n_thr[t]; i++) {
                        const struct throttle *th = &r->blkio.thr[t][i];
                        char field[64];
                        snprintf(field, sizeof(field), "blockIO.%s[%zu]", throttle_names[t].json, i);
                        snprintf(buf, sizeof(buf), "%" PRIi64 ":%" PRIi64 " %" PRIu64, th->major, th->minor, th->rate);
                        if ((k = write_file(a, fd, field, throttle_names[t].v1, buf)) < 0)
                                return k;
                }
        return 0;
}

static int blkio_v2(const struct actx *a, int fd)
{
        const struct moat_resources *r = a->r;
        bool bfq = file_exists(fd, "io.bfq.weight");
        char buf[128];
        int k;

        if (r->blkio.leaf_weight.set)
                warnf(r, "%s.blockIO.leafWeight: cgroup v2 has no leaf weight; ignored", a->p);
        if (r->blkio.weight.set) {
                if (!bfq && !file_exists(fd, "io.weight"))
                        return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                               "%s.blockIO.weight: not supported on this host: neither io.bfq.weight "
                                               "nor io.weight exists (no weight-based I/O scheduler)",
                                               a->p);
                uint64_t w = bfq ? r->blkio.weight.v : moat_blkio_weight_to_io_weight(r->blkio.weight.v);
                if ((k = write_i64(a, fd, "blockIO.weight", bfq ? "io.bfq.weight" : "io.weight", (int64_t) w)) < 0)
                        return k;
        }
        for (size_t i = 0; i < r->blkio.n_wd; i++) {
                const struct weight_device *wd = &r->blkio.wd[i];
                char field[64];
                snprintf(field, sizeof(field), "blockIO.weightDevice[%zu]", i);
                if (wd->leaf_weight.set)
                        warnf(r, "%s.%s.leafWeight: cgroup v2 has no leaf weight; ignored", a->p, field);
                if (!wd->weight.set)
                        continue;
                uint64_t w = bfq ? wd->weight.v : moat_blkio_weight_to_io_weight(wd->weight.v);
                snprintf(buf, sizeof(buf), "%" PRIi64 ":%" PRIi64 " %" PRIu64, wd->major, wd->minor, w);
                if ((k = write_file(a, fd, field, bfq ? "io.bfq.weight" : "io.weight", buf)) < 0)
                        return k;
        }
        for (int t = 0; t < N_THR; t++)
                for (size_t i = 0; i < r->blkio.n_thr[t]; i++) {
                        const struct throttle *th = &r->blkio.thr[t][i];
                        char field[64];
                        snprintf(field, sizeof(field), "blockIO.%s[%zu]", throttle_names[t].json, i);
                        /* rate 0 removes the limit, as writing 0 does on v1 */
                        if (th->rate == 0)
                                snprintf(buf, sizeof(buf), "%" PRIi64 ":%" PRIi64 " %s=max", th->major, th->minor,
                                         throttle_names[t].v2);
                        else
                                snprintf(buf, sizeof(buf), "%" PRIi64 ":%" PRIi64 " %s=%" PRIu64, th->major, th->minor,
                                         throttle_names[t].v2, th->rate);
                        if ((k = write_file(a, fd, field, "io.max", buf)) < 0)
                                return k;
                }
        return 0;
}

static int apply_blkio(const struct actx *a)
{
        const struct moat_resources *r = a->r;
        _cleanup_close_ int fd = -EBADF;
        bool v2 = false, any = r->blkio.weight.set || r->blkio.leaf_weight.set || r->blkio.n_wd > 0;
        int k;

        for (int t = 0; t < N_THR; t++)
                any = any || r->blkio.n_thr[t] > 0;
        if (!any)
                return 0;
        k = open_ctrl(a, "blkio", &fd, &v2);
        if (k == -ENOENT)
                k = open_ctrl(a, "io", &fd, &v2);
        if (k == -ENOENT)
                return no_ctrl(a, "blockIO", "blkio (v1) or io (v2)");
        if (k < 0)
                return k;
        return v2 ? blkio_v2(a, fd) : blkio_v1(a, fd);
}

/* ---- hugetlb, network, rdma ---- */

static int apply_hugetlb(const struct actx *a)
{
        const struct moat_resources *r = a->r;
        _cleanup_close_ int fd = -EBADF;
        bool v2 = false;
        int k;

        if (r->n_huge == 0)
                return 0;
        k = open_ctrl(a, "hugetlb", &fd, &v2);
        if (k == -ENOENT)
                return no_ctrl(a, "hugepageLimits", "hugetlb");
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_huge; i++) {
                char file[96], field[64];
                snprintf(field, sizeof(field), "hugepageLimits[%zu]", i);
                snprintf(file, sizeof(file), v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", r->huge[i].size);
                if ((k = write_i64(a, fd, field, file, (int64_t) r->huge[i].limit)) < 0)
                        return k;
                /* Reservations count too where the kernel tracks them. */
                snprintf(file, sizeof(file), v2 ? "hugetlb.%s.rsvd.max" : "hugetlb.%s.rsvd.limit_in_bytes",
                         r->huge[i].size);
                if (file_exists(fd, file) && (k = write_i64(a, fd, field, file, (int64_t) r->huge[i].limit)) < 0)
                        return k;
        }
        return 0;
}

static int apply_network(const struct actx *a)
{
        const struct moat_resources *r = a->r;
        int k;

        if (r->classid.set) {
                _cleanup_close_ int fd = -EBADF;
                bool v2 = false;
                k = open_ctrl(a, "net_cls", &fd, &v2);
                if (k == -ENOENT)
                        return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                               "%s.network.classID: not supported on this host: the net_cls "
                                               "controller (cgroup v1 only) is not mounted",
                                               a->p);
                if (k < 0)
                        return k;
                if ((k = write_i64(a, fd, "network.classID", "net_cls.classid", (int64_t) r->classid.v)) < 0)
                        return k;
        }
        if (r->n_prio > 0) {
                _cleanup_close_ int fd = -EBADF;
                bool v2 = false;
                k = open_ctrl(a, "net_prio", &fd, &v2);
                if (k == -ENOENT)
                        return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                               "%s.network.priorities: not supported on this host: the net_prio "
                                               "controller (cgroup v1 only) is not mounted",
                                               a->p);
                if (k < 0)
                        return k;
                for (size_t i = 0; i < r->n_prio; i++) {
                        char buf[64], field[64];
                        snprintf(field, sizeof(field), "network.priorities[%zu]", i);
                        snprintf(buf, sizeof(buf), "%s %" PRIu32, r->prio[i].name, r->prio[i].prio);
                        if ((k = write_file(a, fd, field, "net_prio.ifpriomap", buf)) < 0)
                                return k;
                }
        }
        return 0;
}

static int apply_rdma(const struct actx *a)
{
        const struct moat_resources *r = a->r;
        _cleanup_close_ int fd = -EBADF;
        bool v2 = false;
        int k;

        if (r->n_rdma == 0)
                return 0;
        k = open_ctrl(a, "rdma", &fd, &v2);
        if (k == -ENOENT)
                return no_ctrl(a, "rdma", "rdma");
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_rdma; i++) {
                const struct rdma *d = &r->rdma[i];
                char buf[160], h[32] = "max", o[32] = "max", field[96];
                if (d->handles.set)
                        snprintf(h, sizeof(h), "%" PRIu64, d->handles.v);
                if (d->objects.set)
                        snprintf(o, sizeof(o), "%" PRIu64, d->objects.v);
                snprintf(buf, sizeof(buf), "%s hca_handle=%s hca_object=%s", d->device, h, o);
                snprintf(field, sizeof(field), "rdma.%s", d->device);
                if ((k = write_file(a, fd, field, "rdma.max", buf)) < 0)
                        return k;
        }
        return 0;
}

/* ---- unified ---- */

static int apply_unified(const struct actx *a)
{
        const struct moat_resources *r = a->r;
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_close_ int fd = -EBADF;
        int k;

        if (r->n_unified == 0)
                return 0;
        k = moat_cgroup_open_v2(a->cg, &fd, &e);
        if (k == -ENOENT)
                return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                       "%s.unified: not supported on this host: cgroup v2 is not mounted (cgroup v1 only)",
                                       a->p);
        if (k < 0)
                return moat_error_setx(a->reterr, k, "%s.unified: %s", a->p, e ? e->msg : "opening the cgroup");

        for (size_t i = 0; i < r->n_unified; i++) {
                const struct kv *u = &r->unified[i];
                char ctrl[UNIFIED_KEY_MAX + 1];

                snprintf(ctrl, sizeof(ctrl), "%.*s", (int) strcspn(u->key, "."), u->key);
                if (!streq(ctrl, "cgroup")) {
                        _cleanup_error_ struct moat_error *e2 = NULL;
                        k = moat_cgroup_v2_enable(a->cg, ctrl, &e2);
                        if (k == -ENOENT)
                                return moat_error_setx(a->reterr, -EOPNOTSUPP,
                                                       "%s.unified.%s: the %s controller is not available in the "
                                                       "cgroup v2 hierarchy%s",
                                                       a->p, u->key, ctrl,
                                                       moat_cgroup_is_unified(a->cg) ? "" :
                                                       " (on this hybrid host it is bound to cgroup v1 or absent)");
                        if (k < 0)
                                return moat_error_setx(a->reterr, k, "%s.unified.%s: %s", a->p, u->key, e2->msg);
                }
                if (!file_exists(fd, u->key))
                        return moat_error_setx(a->reterr, -ENOENT, "%s.unified.%s: no such file in the cgroup v2 directory",
                                               a->p, u->key);
                /* Several lines (io.max for several devices) are several writes. */
                _cleanup_free_ char *copy = strdup(u->value);
                if (!copy)
                        return -ENOMEM;
                char field[UNIFIED_KEY_MAX + 16];
                snprintf(field, sizeof(field), "unified.%s", u->key);
                bool wrote = false;
                for (char *line = copy, *save = NULL; (line = strtok_r(line, "\n", &save)); line = NULL) {
                        if ((k = write_file(a, fd, field, u->key, line)) < 0)
                                return k;
                        wrote = true;
                }
                if (!wrote && (k = write_file(a, fd, field, u->key, "")) < 0)
                        return k;
        }
        return 0;
}

/* ---- devices ---- */

static int devices_target(const struct moat_resources *r, struct moat_dev_state *s)
{
        const struct moat_dev_rule *defaults;
        size_t n_defaults;
        int k;

        moat_dev_state_init(s);
        for (size_t i = 0; i < r->n_dev; i++)
                if ((k = moat_dev_state_apply(s, &r->dev[i])) < 0)
                        return k;
        defaults = moat_dev_default_rules(&n_defaults);
        for (size_t i = 0; i < n_defaults; i++)
                if ((k = moat_dev_state_apply(s, &defaults[i])) < 0)
                        return k;
        return 0;
}

/* Whether devices.list already shows the deny-by-default state s (then an
 * update writes nothing, and a running container never sees a moment of
 * deny-all). */
static bool v1_devices_match(int fd, const struct moat_dev_state *s)
{
        _cleanup_free_ char *list = NULL;
        size_t lines = 0;

        if (s->default_allow || read_full_file_at(fd, "devices.list", CG_READ_MAX, &list, NULL) < 0)
                return false;
        for (char *line = list, *save = NULL; (line = strtok_r(line, "\n", &save)); line = NULL) {
                bool found = false;
                lines++;
                for (size_t i = 0; i < s->n_ex && !found; i++) {
                        char buf[64];
                        moat_dev_rule_format(&s->ex[i], buf, sizeof(buf));
                        found = streq(buf, line);
                }
                if (!found)
                        return false;
        }
        return lines == s->n_ex;
}

static int devices_v1(const struct actx *a, int fd, const struct moat_dev_state *s)
{
        int k;

        if (a->mode == MOAT_RESOURCES_UPDATE && v1_devices_match(fd, s))
                return 0;
        if ((k = write_file(a, fd, "devices", s->default_allow ? "devices.allow" : "devices.deny", "a")) < 0)
                return k;
        for (size_t i = 0; i < s->n_ex; i++) {
                char buf[64];
                moat_dev_rule_format(&s->ex[i], buf, sizeof(buf));
                if ((k = write_file(a, fd, "devices", s->default_allow ? "devices.deny" : "devices.allow", buf)) < 0)
                        return k;
        }
        return 0;
}

static int apply_devices(const struct actx *a)
{
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct moat_dev_state s;
        bool v2 = false;
        int k;

        if (a->mode == MOAT_RESOURCES_UPDATE && !a->r->has_devices)
                return 0;
        k = devices_target(a->r, &s);
        if (k < 0) {
                moat_dev_state_done(&s);
                return moat_error_set(a->reterr, k, "%s.devices", a->p);
        }

        k = moat_cgroup_open_controller(a->cg, "devices", &fd, &v2, &e);
        if (k >= 0 && !v2)
                k = devices_v1(a, fd, &s);
        else if (k == -ENOENT) {
                moat_error_free(e);
                e = NULL;
                k = moat_cgroup_open_v2(a->cg, &fd, &e);
                if (k >= 0) {
                        k = moat_bpf_devices_install(fd, &s, a->reterr);
                        if (k < 0)
                                k = moat_error_wrap(a->reterr, k, "%s.devices", a->p);
                } else if (k == -ENOENT) {
                        k = a->r->has_devices ? no_ctrl(a, "devices", "devices") : 0;
                } else
                        k = moat_error_setx(a->reterr, k, "%s.devices: %s", a->p, e->msg);
        } else if (k < 0)
                k = moat_error_setx(a->reterr, k, "%s.devices: %s", a->p, e->msg);
        moat_dev_state_done(&s);
        return k;
}

/* On a pure v2 host the container's directory gets every controller its
 * parent offers, as runc and crun do, so that stats and later updates find
 * them; a controller that cannot be enabled is left for the limit that
 * needs it to report. */
static void enable_all_v2(struct moat_cgroup *cg)
{
        _cleanup_free_ char *list = NULL;

        if (read_full_file_at(AT_FDCWD, "/sys/fs/cgroup/cgroup.controllers", 64 * 1024, &list, NULL) < 0)
                return;
        for (char *tok = list, *save = NULL; (tok = strtok_r(tok, " \n", &save)); tok = NULL) {
                _cleanup_error_ struct moat_error *e = NULL;
                if (moat_cgroup_v2_enable(cg, tok, &e) < 0)
                        log_debug("cgroup: %s", e ? e->msg : tok);
        }
}

int moat_resources_apply(struct moat_cgroup *cg, const struct moat_resources *r, enum moat_resources_mode mode,
                         struct moat_error **reterr)
{
        static const struct moat_resources empty = { .prefix = (char *) "linux.resources" };
        int k;

        if (!r)
                r = &empty;
        const struct actx a = { .cg = cg, .r = r, .mode = mode, .reterr = reterr, .p = r->prefix };

        if (mode == MOAT_RESOURCES_CREATE && moat_cgroup_is_unified(cg))
                enable_all_v2(cg);
        if ((k = apply_devices(&a)) < 0 || (k = apply_cpu(&a)) < 0 || (k = apply_memory(&a)) < 0 ||
            (k = apply_pids(&a)) < 0 || (k = apply_blkio(&a)) < 0 || (k = apply_hugetlb(&a)) < 0 ||
            (k = apply_network(&a)) < 0 || (k = apply_rdma(&a)) < 0 || (k = apply_unified(&a)) < 0)
                return k;
        return 0;
}
