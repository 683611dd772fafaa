/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `update [flags] <id>`: runc's flags, turned into one LinuxResources
 * object. -r/--resources FILE ("-" is stdin, what containerd sends) gives
 * the starting object; each flag then sets its own member, as with runc.
 */

#include <fcntl.h>
#include <getopt.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "runtime-cli/cli.h"
#include "runtime/cgroup-resources.h"

#define RESOURCES_MAX (1u << 20)

enum {
        OPT_MEMORY = 256,
        OPT_MEMORY_RESERVATION,
        OPT_MEMORY_SWAP,
        OPT_KERNEL_MEMORY,
        OPT_KERNEL_MEMORY_TCP,
        OPT_CPU_SHARES,
        OPT_CPU_QUOTA,
        OPT_CPU_PERIOD,
        OPT_CPU_BURST,
        OPT_CPU_RT_PERIOD,
        OPT_CPU_RT_RUNTIME,
        OPT_CPUSET_CPUS,
        OPT_CPUSET_MEMS,
        OPT_CPU_IDLE,
        OPT_PIDS_LIMIT,
        OPT_BLKIO_WEIGHT,
        OPT_L3_CACHE,
        OPT_MEM_BW,
};

enum kind { SIZE, U64, I64, STRING };

static const struct flag {
        int opt;
        const char *name;
        const char *section; /* NULL: not part of the object */
        const char *key;
        enum kind kind;
} flags[] = {
        { OPT_MEMORY, "memory", "memory", "limit", SIZE },
        { OPT_MEMORY_RESERVATION, "memory-reservation", "memory", "reservation", SIZE },
        { OPT_MEMORY_SWAP, "memory-swap", "memory", "swap", SIZE },
        { OPT_KERNEL_MEMORY, "kernel-memory", NULL, NULL, SIZE },
        { OPT_KERNEL_MEMORY_TCP, "kernel-memory-tcp", NULL, NULL, SIZE },
        { OPT_CPU_SHARES, "cpu-share", "cpu", "shares", U64 },
        { OPT_CPU_SHARES, "cpu-shares", "cpu", "shares", U64 },
        { OPT_CPU_QUOTA, "cpu-quota", "cpu", "quota", I64 },
        { OPT_CPU_PERIOD, "cpu-period", "cpu", "period", U64 },
        { OPT_CPU_BURST, "cpu-burst", "cpu", "burst", U64 },
        { OPT_CPU_RT_PERIOD, "cpu-rt-period", "cpu", "realtimePeriod", U64 },
        { OPT_CPU_RT_RUNTIME, "cpu-rt-runtime", "cpu", "realtimeRuntime", I64 },
        { OPT_CPUSET_CPUS, "cpuset-cpus", "cpu", "cpus", STRING },
        { OPT_CPUSET_MEMS, "cpuset-mems", "cpu", "mems", STRING },
        { OPT_CPU_IDLE, "cpu-idle", "cpu", "idle", I64 },
        { OPT_PIDS_LIMIT, "pids-limit", "pids", "limit", I64 },
        { OPT_BLKIO_WEIGHT, "blkio-weight", "blockIO", "weight", U64 },
        { OPT_L3_CACHE, "l3-cache-schema", NULL, NULL, STRING },
        { OPT_MEM_BW, "mem-bw-schema", NULL, NULL, STRING },
};

static int read_resources(const char *path, json_t **ret)
{
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        json_error_t jerr;
        int r;

        if (streq(path, "-"))
                r = read_full_fd(STDIN_FILENO, RESOURCES_MAX, &text, &size);
        else
                r = read_full_file_at(AT_FDCWD, path, RESOURCES_MAX, &text, &size);
        if (r == -EFBIG || r == -E2BIG) {
                log_error("update: --resources %s: larger than %u bytes", streq(path, "-") ? "(stdin)" : path,
                          RESOURCES_MAX);
                return r;
        }
        if (r < 0) {
                log_error("update: --resources %s: %s", streq(path, "-") ? "(stdin)" : path, strerror(-r));
                return r;
        }
        json_t *j = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!j) {
                log_error("update: --resources %s: invalid JSON at line %d: %s", streq(path, "-") ? "(stdin)" : path,
                          jerr.line, jerr.text);
                return -EINVAL;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                log_error("update: --resources %s: must be a JSON object (LinuxResources)",
                          streq(path, "-") ? "(stdin)" : path);
                return -EINVAL;
        }
        *ret = j;
        return 0;
}

static int set_member(json_t *res, const struct flag *f, const char *value)
{
        json_t *v = NULL;

        switch (f->kind) {
        case SIZE: {
                int64_t n;
                if (moat_parse_size(value, &n) < 0) {
                        log_error("update: invalid value for --%s: \"%s\" (a size like 536870912, 512m or 1g, or -1)",
                                  f->name, value);
                        return -EINVAL;
                }
                v = json_integer(n);
                break;
        }
        case U64: {
                uint64_t n;
                if (safe_atou64(value, &n) < 0 || n > INT64_MAX) {
                        log_error("update: invalid value for --%s: \"%s\" (a non-negative integer)", f->name, value);
                        return -EINVAL;
                }
                v = json_integer((json_int_t) n);
                break;
        }
        case I64: {
                int64_t n;
                if (safe_atoi64(value, &n) < 0) {
                        log_error("update: invalid value for --%s: \"%s\" (an integer)", f->name, value);
                        return -EINVAL;
                }
                v = json_integer(n);
                break;
        }
        case STRING:
                v = json_string(value);
                break;
        }
        if (!v)
                return -ENOMEM;

        json_t *section = json_object_get(res, f->section);
        if (!json_is_object(section)) {
                section = json_object();
                if (!section || json_object_set_new(res, f->section, section) < 0) {
                        json_decref(v);
                        return -ENOMEM;
                }
        }
        return json_object_set_new(section, f->key, v) < 0 ? -ENOMEM : 0;
}

int cmd_update(struct cli_context *ctx, int argc, char **argv)
{
        struct option options[ELEMENTSOF(flags) + 2];
        const char *values[ELEMENTSOF(flags)] = {};
        _cleanup_error_ struct moat_error *err = NULL;
        const char *resources_path = NULL;
        json_t *res = NULL;
        size_t n = 0;
        int c, r;

        options[n++] = (struct option){ "resources", required_argument, NULL, 'r' };
        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                options[n++] = (struct option){ flags[i].name, required_argument, NULL, flags[i].opt };
        options[n] = (struct option){};

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "r:", options, NULL)) != -1) {
                if (c == 'r') {
                        resources_path = optarg;
                        continue;
                }
                size_t i;
                for (i = 0; i < ELEMENTSOF(flags) && flags[i].opt != c; i++)
                        ;
                if (i == ELEMENTSOF(flags)) {
                        log_error("update: unknown option or missing value: '%s'", argv[optind - 1]);
                        return 1;
                }
                values[i] = optarg;
        }
        if (!cli_check_args("update", argc - optind, 1, "a container id"))
                return 1;
        const char *id = argv[optind];

        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                if (!values[i])
                        continue;
                if (flags[i].opt == OPT_L3_CACHE || flags[i].opt == OPT_MEM_BW) {
                        log_error("update: --%s: intelRdt (resctrl) is not supported by this version of moat-runtime",
                                  flags[i].name);
                        return 1;
                }
        }

        if (resources_path) {
                r = read_resources(resources_path, &res);
                if (r < 0)
                        return 1;
        } else if (!(res = json_object()))
                return cli_fail(-ENOMEM, NULL);

        for (size_t i = 0; i < ELEMENTSOF(flags); i++) {
                if (!values[i])
                        continue;
                if (!flags[i].section) {
                        int64_t ignored;
                        if (moat_parse_size(values[i], &ignored) < 0) {
                                log_error("update: invalid value for --%s: \"%s\"", flags[i].name, values[i]);
                                json_decref(res);
                                return 1;
                        }
                        log_warning("update: --%s: kernel memory settings are ignored (not supported by current "
                                    "kernels)",
                                    flags[i].name);
                        continue;
                }
                r = set_member(res, &flags[i], values[i]);
                if (r < 0) {
                        json_decref(res);
                        return r == -ENOMEM ? cli_fail(r, NULL) : 1;
                }
        }

        r = moat_container_update(&ctx->rt, id, res, &err);
        json_decref(res);
        if (r < 0)
                return cli_fail(r, err);
        return 0;
}
