/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * linux.seccomp, from JSON to an installed filter.
 *
 * The runtime (parent) validates the object, resolves syscall names and
 * compiles the rules with libseccomp, then exports the BPF program. The
 * program is cached under <state root>/.cache/seccomp/<sha256 of the
 * canonical JSON, the libseccomp version and the native arch>, so a second
 * start with the same profile skips libseccomp entirely. The init installs
 * the raw program with seccomp(2) itself (the same path for cached and
 * fresh programs), with the config's flags translated to the kernel's.
 *
 * Semantics shared with runc and crun: an unknown syscall name is skipped
 * (one warning lists them); a rule whose action is the default action is
 * dropped; when an args[] list names the same index twice, each condition
 * becomes a rule of its own (an OR, as Docker-era profiles expect); a stub
 * in front of the program answers ENOSYS for syscall numbers above the
 * highest one the profile names, so libc falls back from syscalls newer
 * than the profile instead of failing on EPERM.
 *
 * SCMP_ACT_NOTIFY: the parent connects to listenerPath (the init may no
 * longer see that path); the init loads the filter with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER and sends the listener fd (SCM_RIGHTS)
 * and the container process state on that connection, then shuts it down.
 *
 * The default profile is a table of rules, each with the capabilities that
 * open it (the OCI form cannot say "if capability"), rendered for the
 * capability set a container gets.
 */

#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <nettle/sha2.h>
#include "runtime/libseccomp.h"

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"

#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

#define SYSCALLS_MAX 4096u        /* entries of linux.seccomp.syscalls */
#define NAMES_MAX 4096u           /* names of one entry */
#define ARGS_MAX 6u               /* conditions of one entry */
#define UNKNOWN_LISTED 16u        /* names spelled out in the warning */
#define CACHE_ENTRIES_MAX 64u     /* files kept in the cache directory */
#define CACHE_MAGIC "moatbpf1"    /* 8 bytes */
#define CACHE_HEADER (8u + SHA256_DIGEST_SIZE)
#define STATE_MAX (1024u * 1024u) /* the state JSON handed to the agent */

/* Bumped whenever what is compiled from the same JSON changes. */
#define COMPILER_VERSION "moat-seccomp-3"

struct moat_seccomp {
        struct sock_filter *insns;
        size_t n_insns;
        unsigned long flags; /* SECCOMP_FILTER_FLAG_* */
        bool notify;
        bool from_cache;
        int listener_fd; /* connected to listenerPath (notify), else -EBADF */
        char *metadata;
        char cache_name[SHA256_DIGEST_SIZE * 2 + 1];
};

/* ---- names ------------------------------------------------------------ */

enum action_kind {
        ACT_KILL,
        ACT_KILL_PROCESS,
        ACT_KILL_THREAD,
        ACT_TRAP,
        ACT_ERRNO,
        ACT_TRACE,
        ACT_ALLOW,
        ACT_LOG,
        ACT_NOTIFY,
        ACT__MAX,
};

static const char *const action_names[ACT__MAX] = {
        [ACT_KILL] = "SCMP_ACT_KILL",   [ACT_KILL_PROCESS] = "SCMP_ACT_KILL_PROCESS",
        [ACT_KILL_THREAD] = "SCMP_ACT_KILL_THREAD", [ACT_TRAP] = "SCMP_ACT_TRAP",
        [ACT_ERRNO] = "SCMP_ACT_ERRNO", [ACT_TRACE] = "SCMP_ACT_TRACE",
        [ACT_ALLOW] = "SCMP_ACT_ALLOW", [ACT_LOG] = "SCMP_ACT_LOG",
        [ACT_NOTIFY] = "SCMP_ACT_NOTIFY",
};

static uint32_t action_value(enum action_kind k, uint32_t data)
{
        switch (k) {
        case ACT_KILL:
        case ACT_KILL_THREAD:
                return SCMP_ACT_KILL_THREAD;
        case ACT_KILL_PROCESS:
                return SCMP_ACT_KILL_PROCESS;
        case ACT_TRAP:
                return SCMP_ACT_TRAP;
        case ACT_ERRNO:
                return SCMP_ACT_ERRNO(data);
        case ACT_TRACE:
                return SCMP_ACT_TRACE(data);
        case ACT_ALLOW:
                return SCMP_ACT_ALLOW;
        case ACT_LOG:
                return SCMP_ACT_LOG;
        case ACT_NOTIFY:
        default:
                return SCMP_ACT_NOTIFY;
        }
}

static const struct {
        const char *name;
        uint32_t token; /* 0: this libseccomp does not know the arch */
} arch_table[] = {
        { "SCMP_ARCH_X86", SCMP_ARCH_X86 },
        { "SCMP_ARCH_X86_64", SCMP_ARCH_X86_64 },
        { "SCMP_ARCH_X32", SCMP_ARCH_X32 },
        { "SCMP_ARCH_ARM", SCMP_ARCH_ARM },
        { "SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64 },
#ifdef SCMP_ARCH_LOONGARCH64
        { "SCMP_ARCH_LOONGARCH64", SCMP_ARCH_LOONGARCH64 },
#else
        { "SCMP_ARCH_LOONGARCH64", 0 },
#endif
#ifdef SCMP_ARCH_M68K
        { "SCMP_ARCH_M68K", SCMP_ARCH_M68K },
#else
        { "SCMP_ARCH_M68K", 0 },
#endif
        { "SCMP_ARCH_MIPS", SCMP_ARCH_MIPS },
        { "SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64 },
        { "SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32 },
        { "SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL },
        { "SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64 },
        { "SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32 },
        { "SCMP_ARCH_PPC", SCMP_ARCH_PPC },
        { "SCMP_ARCH_PPC64", SCMP_ARCH_PPC64 },
        { "SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE },
        { "SCMP_ARCH_S390", SCMP_ARCH_S390 },
        { "SCMP_ARCH_S390X", SCMP_ARCH_S390X },
#ifdef SCMP_ARCH_SH
        { "SCMP_ARCH_SH", SCMP_ARCH_SH },
        { "SCMP_ARCH_SHEB", SCMP_ARCH_SHEB },
#else
        { "SCMP_ARCH_SH", 0 },
        { "SCMP_ARCH_SHEB", 0 },
#endif
        { "SCMP_ARCH_PARISC", SCMP_ARCH_PARISC },
        { "SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64 },
        { "SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64 },
};

static const struct {
        const char *name;
        enum scmp_compare op;
} op_table[] = {
        { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
        { "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
        { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

static const struct {
        const char *name;
        unsigned long flag;
} flag_table[] = {
        { "SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC },
        { "SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG },
        { "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW },
        { "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV },
};

/* Whether the running kernel accepts a set of filter flags: with a NULL
 * program it fails on the copy (EFAULT) only once the flags passed. */
static bool kernel_accepts_flags(unsigned long flags)
{
        long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, NULL);
        return r < 0 && errno == EFAULT;
}

static unsigned long flag_probe(unsigned long flag)
{
        /* WAIT_KILLABLE_RECV is only valid next to NEW_LISTENER. */
        return flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ? flag | SECCOMP_FILTER_FLAG_NEW_LISTENER : flag;
}

/* ---- the walk over linux.seccomp -------------------------------------- */

struct walk {
        scmp_filter_ctx ctx; /* NULL: validate and resolve only */
        enum action_kind default_kind;
        uint32_t default_action;
        unsigned long flags;
        bool notify;
        int max_nr; /* highest native syscall number named; -1: none */
        json_t *unknown; /* names libseccomp does not know, once each */
        const char *listener_path;
        const char *metadata;
};

static int get_string(const json_t *o, const char *key, const char *path, bool required, const char **ret,
                      struct moat_error **reterr)
{
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v)) {
                *ret = NULL;
                return required ? moat_error_setx(reterr, -EINVAL, "%s.%s: required", path, key) : 0;
        }
        if (!json_is_string(v))
                return moat_error_setx(reterr, -EINVAL, "%s.%s: must be a string", path, key);
        *ret = json_string_value(v);
        return 0;
}

static int get_u32(const json_t *o, const char *key, const char *path, bool *present, uint32_t *ret,
                   struct moat_error **reterr)
{
        json_t *v = json_object_get(o, key);
        *present = v && !json_is_null(v);
        if (!*present)
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
                return moat_error_setx(reterr, -EINVAL, "%s.%s: must be an integer from 0 to 4294967295", path,
                                       key);
        *ret = (uint32_t) json_integer_value(v);
        return 0;
}

static int parse_action(const json_t *o, const char *action_key, const char *errno_key, const char *path,
                        enum action_kind *ret_kind, uint32_t *ret_action, struct moat_error **reterr)
{
        const char *name;
        int r = get_string(o, action_key, path, true, &name, reterr);
        if (r < 0)
                return r;
        enum action_kind k = ACT__MAX;
        for (int i = 0; i < ACT__MAX; i++)
                if (streq(name, action_names[i]))
                        k = (enum action_kind) i;
        if (k == ACT__MAX)
                return moat_error_setx(reterr, -EINVAL, "%s.%s: unknown action \"%s\"", path, action_key, name);

        bool has_errno;
        uint32_t e = EPERM;
        r = get_u32(o, errno_key, path, &has_errno, &e, reterr);
        if (r < 0)
                return r;
        if (has_errno && k != ACT_ERRNO && k != ACT_TRACE)
                return moat_error_setx(reterr, -EINVAL,
                                       "%s.%s: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno, not %s",
                                       path, errno_key, name);
        if (!has_errno)
                e = EPERM;
        if (k == ACT_ERRNO && e > 4095)
                return moat_error_setx(reterr, -EINVAL, "%s.%s: %u is not an errno (1-4095)", path, errno_key, e);
        if (k == ACT_TRACE && e > 0xffff)
                return moat_error_setx(reterr, -EINVAL, "%s.%s: %u does not fit the 16 bits of a trace message",
                                       path, errno_key, e);
        *ret_kind = k;
        *ret_action = action_value(k, e);
        return 0;
}

static int parse_arg(const json_t *a, const char *path, struct scmp_arg_cmp *ret, struct moat_error **reterr)
{
        if (!json_is_object(a))
                return moat_error_setx(reterr, -EINVAL, "%s: must be an object", path);
        bool present;
        uint32_t index = 0;
        int r = get_u32(a, "index", path, &present, &index, reterr);
        if (r < 0)
                return r;
        if (!present)
                return moat_error_setx(reterr, -EINVAL, "%s.index: required", path);
        if (index >= 6)
                return moat_error_setx(reterr, -EINVAL, "%s.index: %u is out of range (a syscall has arguments 0-5)",
                                       path, index);
        uint64_t value = 0, value_two = 0;
        json_t *v = json_object_get(a, "value");
        if (!v)
                return moat_error_setx(reterr, -EINVAL, "%s.value: required", path);
        if (oci_json_uint64(v, &value) < 0)
                return moat_error_setx(reterr, -EINVAL, "%s.value: must be an integer from 0 to 2^64-1", path);
        v = json_object_get(a, "valueTwo");
        if (v && !json_is_null(v) && oci_json_uint64(v, &value_two) < 0)
                return moat_error_setx(reterr, -EINVAL, "%s.valueTwo: must be an integer from 0 to 2^64-1", path);
        const char *op_name;
        r = get_string(a, "op", path, true, &op_name, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(op_table); i++)
                if (streq(op_name, op_table[i].name)) {
                        *ret = (struct scmp_arg_cmp){
                                .arg = index, .op = op_table[i].op, .datum_a = value, .datum_b = value_two
                        };
                        return 0;
                }
        return moat_error_setx(reterr, -EINVAL, "%s.op: unknown operator \"%s\"", path, op_name);
}

static void note_unknown(struct walk *w, const char *name)
{
        size_t i;
        json_t *v;
        json_array_foreach(w->unknown, i, v)
                if (streq(json_string_value(v), name))
                        return;
        json_array_append_new(w->unknown, json_string(name));
}

static int walk_rule(struct walk *w, const json_t *rule, size_t idx, struct moat_error **reterr)
{
        char path[64];
        snprintf(path, sizeof(path), "linux.seccomp.syscalls[%zu]", idx);
        if (!json_is_object(rule))
                return moat_error_setx(reterr, -EINVAL, "%s: must be an object", path);

        enum action_kind kind;
        uint32_t action;
        int r = parse_action(rule, "action", "errnoRet", path, &kind, &action, reterr);
        if (r < 0)
                return r;
        if (kind == ACT_NOTIFY)
                w->notify = true;

        json_t *args = json_object_get(rule, "args");
        struct scmp_arg_cmp cmps[ARGS_MAX];
        size_t n_cmps = 0;
        bool repeated = false;
        if (args && !json_is_null(args)) {
                if (!json_is_array(args))
                        return moat_error_setx(reterr, -EINVAL, "%s.args: must be an array", path);
                if (json_array_size(args) > ARGS_MAX)
                        return moat_error_setx(reterr, -E2BIG, "%s.args: more than %u conditions", path, ARGS_MAX);
                size_t j;
                json_t *a;
                json_array_foreach(args, j, a) {
                        char apath[96];
                        snprintf(apath, sizeof(apath), "%s.args[%zu]", path, j);
                        r = parse_arg(a, apath, &cmps[n_cmps], reterr);
                        if (r < 0)
                                return r;
                        for (size_t k = 0; k < n_cmps; k++)
                                if (cmps[k].arg == cmps[n_cmps].arg)
                                        repeated = true;
                        n_cmps++;
                }
        }

        json_t *names = json_object_get(rule, "names");
        if (!json_is_array(names) || json_array_size(names) == 0)
                return moat_error_setx(reterr, -EINVAL, "%s.names: must be a non-empty array of syscall names", path);
        if (json_array_size(names) > NAMES_MAX)
                return moat_error_setx(reterr, -E2BIG, "%s.names: more than %u names", path, NAMES_MAX);
        size_t j;
        json_t *n;
        json_array_foreach(names, j, n) {
                if (!json_is_string(n) || strempty(json_string_value(n)))
                        return moat_error_setx(reterr, -EINVAL, "%s.names[%zu]: must be a syscall name", path, j);
                const char *name = json_string_value(n);
                int nr = seccomp_syscall_resolve_name(name);
                if (nr == __NR_SCMP_ERROR) {
                        note_unknown(w, name);
                        continue;
                }
                if (nr > w->max_nr)
                        w->max_nr = nr;
                if (!w->ctx || action == w->default_action)
                        continue;
                if (repeated) {
                        for (size_t k = 0; k < n_cmps && r >= 0; k++)
                                r = seccomp_rule_add_array(w->ctx, action, nr, 1, &cmps[k]);
                } else
                        r = seccomp_rule_add_array(w->ctx, action, nr, (unsigned) n_cmps, n_cmps ? cmps : NULL);
                if (r < 0)
                        return moat_error_set(reterr, r, "%s: \"%s\": libseccomp refused the rule", path, name);
        }
        return 0;
}

static int walk_seccomp(struct walk *w, const json_t *sc, struct moat_error **reterr)
{
        const char *path = "linux.seccomp";
        int r;

        if (!json_is_object(sc))
                return moat_error_setx(reterr, -EINVAL, "%s: must be an object", path);
        r = parse_action(sc, "defaultAction", "defaultErrnoRet", path, &w->default_kind, &w->default_action, reterr);
        if (r < 0)
                return r;
        if (w->default_kind == ACT_NOTIFY)
                w->notify = true;

        if (w->ctx) {
                /* The filter starts with the native arch; the list adds the
                 * others (32-bit entry points the filter must also cover). */
                json_t *archs = json_object_get(sc, "architectures");
                size_t i;
                json_t *a;
                json_array_foreach(archs, i, a) {
                        for (size_t k = 0; k < ELEMENTSOF(arch_table); k++)
                                if (streq(json_string_value(a), arch_table[k].name)) {
                                        r = seccomp_arch_add(w->ctx, arch_table[k].token);
                                        if (r < 0 && r != -EEXIST)
                                                return moat_error_set(reterr, r, "%s.architectures[%zu]: \"%s\"",
                                                                      path, i, arch_table[k].name);
                                }
                }
        } else {
                json_t *archs = json_object_get(sc, "architectures");
                if (archs && !json_is_null(archs) && !json_is_array(archs))
                        return moat_error_setx(reterr, -EINVAL, "%s.architectures: must be an array", path);
                size_t i;
                json_t *a;
                json_array_foreach(archs, i, a) {
                        const char *name = json_string_value(a);
                        bool found = false;
                        for (size_t k = 0; name && k < ELEMENTSOF(arch_table); k++)
                                if (streq(name, arch_table[k].name)) {
                                        found = true;
                                        if (!arch_table[k].token)
                                                return moat_error_setx(
                                                        reterr, -EOPNOTSUPP,
                                                        "%s.architectures[%zu]: \"%s\" is not supported by "
                                                        "libseccomp %u.%u.%u",
                                                        path, i, name, SCMP_VER_MAJOR, SCMP_VER_MINOR,
                                                        SCMP_VER_MICRO);
                                }
                        if (!name)
                                return moat_error_setx(reterr, -EINVAL, "%s.architectures[%zu]: must be a string",
                                                       path, i);
                        if (!found)
                                return moat_error_setx(reterr, -EINVAL, "%s.architectures[%zu]: unknown architecture "
                                                                       "\"%s\"",
                                                       path, i, name);
                }

                json_t *flags = json_object_get(sc, "flags");
                if (flags && !json_is_null(flags) && !json_is_array(flags))
                        return moat_error_setx(reterr, -EINVAL, "%s.flags: must be an array", path);
                json_array_foreach(flags, i, a) {
                        const char *name = json_string_value(a);
                        size_t k = 0;
                        while (name && k < ELEMENTSOF(flag_table) && !streq(name, flag_table[k].name))
                                k++;
                        if (!name || k == ELEMENTSOF(flag_table))
                                return moat_error_setx(reterr, -EINVAL, "%s.flags[%zu]: unknown flag \"%s\"", path, i,
                                                       name ? name : "(not a string)");
                        if (!kernel_accepts_flags(flag_probe(flag_table[k].flag)))
                                return moat_error_setx(reterr, -EOPNOTSUPP,
                                                       "%s.flags[%zu]: \"%s\" is not supported by this kernel", path,
                                                       i, name);
                        w->flags |= flag_table[k].flag;
                }

                r = get_string(sc, "listenerPath", path, false, &w->listener_path, reterr);
                if (r >= 0)
                        r = get_string(sc, "listenerMetadata", path, false, &w->metadata, reterr);
                if (r < 0)
                        return r;
        }

        json_t *syscalls = json_object_get(sc, "syscalls");
        if (syscalls && !json_is_null(syscalls) && !json_is_array(syscalls))
                return moat_error_setx(reterr, -EINVAL, "%s.syscalls: must be an array", path);
        if (json_array_size(syscalls) > SYSCALLS_MAX)
                return moat_error_setx(reterr, -E2BIG, "%s.syscalls: more than %u entries", path, SYSCALLS_MAX);
        size_t i;
        json_t *rule;
        json_array_foreach(syscalls, i, rule) {
                r = walk_rule(w, rule, i, reterr);
                if (r < 0)
                        return r;
        }

        if (!w->ctx) {
                if (w->metadata && !w->listener_path)
                        return moat_error_setx(reterr, -EINVAL, "%s.listenerMetadata: set without listenerPath", path);
                if (w->notify && !w->listener_path)
                        return moat_error_setx(reterr, -EINVAL,
                                               "%s.listenerPath: required with SCMP_ACT_NOTIFY (the listener fd "
                                               "would have no receiver)",
                                               path);
                if (w->notify && w->listener_path && w->listener_path[0] != '/')
                        return moat_error_setx(reterr, -EINVAL, "%s.listenerPath: \"%s\" is not an absolute path",
                                               path, w->listener_path);
                if ((w->flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) && !w->notify)
                        return moat_error_setx(reterr, -EINVAL,
                                               "%s.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs an "
                                               "SCMP_ACT_NOTIFY rule",
                                               path);
        }
        return 0;
}

/* ---- compiling --------------------------------------------------------- */

/* ENOSYS for native syscall numbers above max_nr (x32's flagged numbers
 * excluded), ahead of libseccomp's program; relative jumps keep the
 * program valid behind it. */
static size_t stub_insns(uint32_t native_arch, int max_nr, struct sock_filter out[6])
{
        const struct sock_filter stub[6] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, native_arch, 0, 4),
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t) max_nr, 0, 2),
                BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        };
        memcpy(out, stub, sizeof(stub));
        return ELEMENTSOF(stub);
}

static int compile(const json_t *sc, struct walk *w, struct sock_filter **ret, size_t *ret_n,
                   struct moat_error **reterr)
{
        scmp_filter_ctx ctx = seccomp_init(w->default_action);
        if (!ctx)
                return moat_error_setx(reterr, -EINVAL, "linux.seccomp.defaultAction: libseccomp refused \"%s\"",
                                       action_names[w->default_kind]);
        /* A binary tree of syscall numbers instead of a list: each syscall
         * runs a few comparisons, not hundreds, and the kernel's action
         * cache, built at load time by running the filter for every
         * syscall number, is built that much faster (0.5 ms less per
         * container with the default profile here). */
        if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0) {
                /* an older libseccomp: the list */
        }
        struct walk w2 = *w;
        w2.ctx = ctx;
        w2.unknown = json_array();
        w2.max_nr = -1;
        int r = walk_seccomp(&w2, sc, reterr);
        json_decref(w2.unknown);
        if (r < 0) {
                seccomp_release(ctx);
                return r;
        }

        _cleanup_close_ int fd = memfd_create("moat-seccomp", MFD_CLOEXEC);
        if (fd < 0) {
                seccomp_release(ctx);
                return moat_error_set(reterr, errno, "linux.seccomp: memfd_create");
        }
        r = seccomp_export_bpf(ctx, fd);
        seccomp_release(ctx);
        if (r < 0)
                return moat_error_set(reterr, r, "linux.seccomp: exporting the filter");
        if (lseek(fd, 0, SEEK_SET) < 0)
                return moat_error_set(reterr, errno, "linux.seccomp: reading the filter");
        _cleanup_free_ char *bpf = NULL;
        size_t size;
        r = read_full_fd(fd, (size_t) BPF_MAXINSNS * sizeof(struct sock_filter), &bpf, &size);
        if (r == -EFBIG)
                return moat_error_setx(reterr, -E2BIG, "linux.seccomp: the filter exceeds %u BPF instructions",
                                       BPF_MAXINSNS);
        if (r < 0)
                return moat_error_set(reterr, r, "linux.seccomp: reading the filter");
        if (size == 0 || size % sizeof(struct sock_filter))
                return moat_error_setx(reterr, -EBADMSG, "linux.seccomp: libseccomp exported a malformed program");

        struct sock_filter stub[6];
        size_t n_stub = 0;
        bool stub_wanted = w->max_nr >= 0 && w->default_kind != ACT_ALLOW && w->default_kind != ACT_LOG &&
                           w->default_kind != ACT_NOTIFY;
        if (stub_wanted)
                n_stub = stub_insns(seccomp_arch_native(), w->max_nr, stub);
        size_t n = n_stub + size / sizeof(struct sock_filter);
        if (n > BPF_MAXINSNS)
                return moat_error_setx(reterr, -E2BIG, "linux.seccomp: the filter exceeds %u BPF instructions",
                                       BPF_MAXINSNS);
        struct sock_filter *insns = calloc(n, sizeof(*insns));
        if (!insns)
                return -ENOMEM;
        memcpy(insns, stub, n_stub * sizeof(*insns));
        memcpy(insns + n_stub, bpf, size);
        *ret = insns;
        *ret_n = n;
        return 0;
}

/* ---- the cache --------------------------------------------------------- */

static void sha256_hex(const void *buf, size_t len, uint8_t digest[SHA256_DIGEST_SIZE])
{
        struct sha256_ctx h;
        sha256_init(&h);
        sha256_update(&h, len, buf);
        sha256_digest(&h, SHA256_DIGEST_SIZE, digest);
}

static int cache_key(const json_t *sc, char out[SHA256_DIGEST_SIZE * 2 + 1])
{
        _cleanup_free_ char *canon = json_dumps(sc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        if (!canon)
                return -ENOMEM;
        const struct scmp_version *v = seccomp_version();
        struct sha256_ctx h;
        char extra[128];
        int len = snprintf(extra, sizeof(extra), "%s\n%u.%u.%u\n%u\n", COMPILER_VERSION, v ? v->major : 0,
                           v ? v->minor : 0, v ? v->micro : 0, seccomp_arch_native());
        uint8_t digest[SHA256_DIGEST_SIZE];
        sha256_init(&h);
        sha256_update(&h, (size_t) len, (const uint8_t *) extra);
        sha256_update(&h, strlen(canon), (const uint8_t *) canon);
        sha256_digest(&h, SHA256_DIGEST_SIZE, digest);
        for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++)
                sprintf(out + 2 * i, "%02x", digest[i]);
        return 0;
}

int moat_seccomp_cache_check(const void *buf, size_t size)
{
        if (size > CACHE_HEADER + (size_t) BPF_MAXINSNS * sizeof(struct sock_filter))
                return -EFBIG;
        if (size < CACHE_HEADER + sizeof(struct sock_filter) || (size - CACHE_HEADER) % sizeof(struct sock_filter))
                return -EBADMSG;
        const uint8_t *p = buf;
        if (memcmp(p, CACHE_MAGIC, 8) != 0)
                return -EBADMSG;
        uint8_t digest[SHA256_DIGEST_SIZE];
        sha256_hex(p + CACHE_HEADER, size - CACHE_HEADER, digest);
        if (memcmp(digest, p + 8, SHA256_DIGEST_SIZE) != 0)
                return -EBADMSG;
        struct sock_filter last;
        memcpy(&last, p + size - sizeof(last), sizeof(last));
        if (BPF_CLASS(last.code) != BPF_RET)
                return -EBADMSG;
        return 0;
}

/* The cache directory (made on first use); -ENOENT when the state root
 * does not exist yet (create makes it later; this start goes uncached). */
static int cache_dir_open(const char *state_root)
{
        _cleanup_close_ int root_fd = open(state_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return -errno;
        if (mkdirat(root_fd, ".cache", 0700) < 0 && errno != EEXIST)
                return -errno;
        _cleanup_close_ int c = openat(root_fd, ".cache", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (c < 0)
                return -errno;
        if (mkdirat(c, "seccomp", 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(c, "seccomp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? -errno : fd;
}

static int cache_load(int dir_fd, const char *name, struct sock_filter **ret, size_t *ret_n)
{
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r = read_full_file_at(dir_fd, name, CACHE_HEADER + (size_t) BPF_MAXINSNS * sizeof(struct sock_filter),
                                  &buf, &size);
        if (r < 0)
                return r;
        r = moat_seccomp_cache_check(buf, size);
        if (r < 0)
                return r;
        size_t n = (size - CACHE_HEADER) / sizeof(struct sock_filter);
        struct sock_filter *insns = calloc(n, sizeof(*insns));
        if (!insns)
                return -ENOMEM;
        memcpy(insns, buf + CACHE_HEADER, n * sizeof(*insns));
        *ret = insns;
        *ret_n = n;
        return 0;
}

/* Keep the directory bounded: past the limit, the oldest files go. */
static void cache_trim(int dir_fd)
{
        for (int round = 0; round < 8; round++) {
                int dfd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        return;
                _cleanup_closedir_ DIR *d = fdopendir(dfd);
                if (!d) {
                        close(dfd);
                        return;
                }
                size_t count = 0;
                char oldest[NAME_MAX + 1] = "";
                struct timespec oldest_t = { 0, 0 };
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        struct stat st;
                        if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                continue;
                        count++;
                        if (!oldest[0] || st.st_mtim.tv_sec < oldest_t.tv_sec ||
                            (st.st_mtim.tv_sec == oldest_t.tv_sec && st.st_mtim.tv_nsec < oldest_t.tv_nsec)) {
                                snprintf(oldest, sizeof(oldest), "%s", de->d_name);
                                oldest_t = st.st_mtim;
                        }
                }
                if (count <= CACHE_ENTRIES_MAX || !oldest[0])
                        return;
                if (unlinkat(dir_fd, oldest, 0) < 0)
                        return;
        }
}

static void cache_store(int dir_fd, const char *name, const struct sock_filter *insns, size_t n)
{
        size_t size = CACHE_HEADER + n * sizeof(*insns);
        _cleanup_free_ uint8_t *buf = malloc(size);
        if (!buf)
                return;
        memcpy(buf, CACHE_MAGIC, 8);
        memcpy(buf + CACHE_HEADER, insns, n * sizeof(*insns));
        sha256_hex(buf + CACHE_HEADER, n * sizeof(*insns), buf + 8);
        /* A failed write only costs the next start a compile. */
        if (write_file_replace_at(dir_fd, name, buf, size, 0600) >= 0)
                cache_trim(dir_fd);
}

/* ---- the agent --------------------------------------------------------- */

/* Connect to an AF_UNIX stream socket; paths longer than sun_path go
 * through the parent directory's fd. */
static int connect_listener(const char *path, struct moat_error **reterr)
{
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return moat_error_set(reterr, errno, "linux.seccomp.listenerPath: socket");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int dir_fd = -EBADF;
        if (strlen(path) < sizeof(sa.sun_path))
                memcpy(sa.sun_path, path, strlen(path) + 1);
        else {
                _cleanup_free_ char *dir = strdup(path);
                if (!dir)
                        return -ENOMEM;
                char *slash = strrchr(dir, '/');
                *slash = '\0';
                const char *base = path + (slash - dir) + 1;
                dir_fd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (dir_fd < 0)
                        return moat_error_set(reterr, errno, "linux.seccomp.listenerPath: \"%s\"", path);
                int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dir_fd, base);
                if (n < 0 || (size_t) n >= sizeof(sa.sun_path))
                        return moat_error_setx(reterr, -ENAMETOOLONG,
                                               "linux.seccomp.listenerPath: \"%s\": the socket name is too long",
                                               path);
        }
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return moat_error_set(reterr, errno, "linux.seccomp.listenerPath: connecting to \"%s\"", path);
        return TAKE_FD(fd);
}

static int send_to_agent(const struct moat_seccomp *s, int notify_fd, const char *state_json,
                         struct moat_error **reterr)
{
        if (!state_json)
                return moat_error_setx(reterr, -EINVAL, "seccomp agent: no container state to send");
        json_error_t jerr;
        json_t *state = json_loadb(state_json, strnlen(state_json, STATE_MAX), 0, &jerr);
        if (!state || !json_is_object(state)) {
                json_decref(state);
                return moat_error_setx(reterr, -EINVAL, "seccomp agent: the container state is not a JSON object");
        }
        json_t *pid = json_object_get(state, "pid");
        json_t *msg = json_pack("{s:s, s:[s], s:I, s:o}", "ociVersion", MOAT_OCI_VERSION, "fds", "seccompFd", "pid",
                                (json_int_t) (json_is_integer(pid) ? json_integer_value(pid) : getpid()), "state",
                                state);
        if (!msg)
                return -ENOMEM;
        if (s->metadata)
                json_object_set_new(msg, "metadata", json_string(s->metadata));
        _cleanup_free_ char *text = json_dumps(msg, JSON_COMPACT);
        json_decref(msg);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);

        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = { 0 };
        struct iovec iov = { .iov_base = text, .iov_len = len };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &notify_fd, sizeof(int));
        ssize_t n;
        do
                n = sendmsg(s->listener_fd, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return moat_error_set(reterr, errno, "seccomp agent: sending the listener fd");
        /* The fd went with the first bytes; the rest of the JSON follows. */
        if ((size_t) n < len) {
                int r = write_all(s->listener_fd, text + n, len - (size_t) n);
                if (r < 0)
                        return moat_error_set(reterr, r, "seccomp agent: sending the container state");
        }
        /* One state per connection, then closed: shutdown reaches the
         * agent even while the runtime still holds its copy of the fd. */
        (void) shutdown(s->listener_fd, SHUT_RDWR);
        return 0;
}

/* ---- the API ----------------------------------------------------------- */

void moat_seccomp_free(struct moat_seccomp *s)
{
        if (!s)
                return;
        free(s->insns);
        free(s->metadata);
        safe_close(s->listener_fd);
        free(s);
}

static void warn_unknown(const json_t *unknown, void (*warn)(const char *msg))
{
        size_t n = json_array_size(unknown);
        if (n == 0 || !warn)
                return;
        _cleanup_free_ char *msg = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&msg, &size);
        if (!f)
                return;
        fprintf(f, "linux.seccomp: %zu syscall name%s unknown to libseccomp %u.%u.%u, skipped:", n, n == 1 ? "" : "s",
                SCMP_VER_MAJOR, SCMP_VER_MINOR, SCMP_VER_MICRO);
        for (size_t i = 0; i < n && i < UNKNOWN_LISTED; i++)
                fprintf(f, "%s \"%s\"", i ? "," : "", json_string_value(json_array_get(unknown, i)));
        if (n > UNKNOWN_LISTED)
                fprintf(f, " and %zu more", n - UNKNOWN_LISTED);
        if (fclose(f) == 0)
                warn(msg);
}

int moat_seccomp_prepare_json(const json_t *sc, const char *state_root, void (*warn)(const char *msg),
                              struct moat_seccomp **ret, struct moat_error **reterr)
{
        *ret = NULL;
        _cleanup_(json_decrefp) json_t *unknown = json_array();
        struct walk w = { .max_nr = -1, .unknown = unknown };
        if (!unknown)
                return -ENOMEM;
        int r = walk_seccomp(&w, sc, reterr);
        if (r < 0)
                return r;

        _cleanup_seccomp_ struct moat_seccomp *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->listener_fd = -EBADF;
        s->notify = w.notify;
        s->flags = w.flags;
        if (w.notify) {
                s->flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
                if (s->flags & SECCOMP_FILTER_FLAG_TSYNC)
                        s->flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }

        /* The agent first: an unreachable one fails the create before the
         * cache is written. */
        if (w.notify) {
                if (w.metadata && !(s->metadata = strdup(w.metadata)))
                        return -ENOMEM;
                r = connect_listener(w.listener_path, reterr);
                if (r < 0)
                        return r;
                s->listener_fd = r;
        }

        _cleanup_close_ int dir_fd = -EBADF;
        if (state_root) {
                r = cache_key(sc, s->cache_name);
                if (r < 0)
                        return r;
                dir_fd = cache_dir_open(state_root);
                if (dir_fd >= 0 && cache_load(dir_fd, s->cache_name, &s->insns, &s->n_insns) >= 0)
                        s->from_cache = true;
        }
        if (!s->from_cache) {
                r = compile(sc, &w, &s->insns, &s->n_insns, reterr);
                if (r < 0)
                        return r;
                if (dir_fd >= 0)
                        cache_store(dir_fd, s->cache_name, s->insns, s->n_insns);
        }
        warn_unknown(unknown, warn);
        *ret = TAKE_PTR(s);
        return 0;
}

int moat_seccomp_prepare(const struct oci_config *config, const char *state_root, void (*warn)(const char *msg),
                         struct moat_seccomp **ret, struct moat_error **reterr)
{
        *ret = NULL;
        if (!config->linux_.seccomp)
                return 0;
        return moat_seccomp_prepare_json(config->linux_.seccomp, state_root, warn, ret, reterr);
}

int moat_seccomp_install(const struct moat_seccomp *s, const char *state_json, struct moat_error **reterr)
{
        if (!s)
                return 0;
        struct sock_fprog prog = { .len = (unsigned short) s->n_insns, .filter = s->insns };
        long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, s->flags, &prog);
        if (r < 0)
                return moat_error_set(reterr, errno, "loading the seccomp filter%s",
                                      errno == EACCES ? " (it needs noNewPrivileges or CAP_SYS_ADMIN)" : "");
        if (!s->notify)
                return 0;
        _cleanup_close_ int notify_fd = (int) r;
        return send_to_agent(s, notify_fd, state_json, reterr);
}

size_t moat_seccomp_instructions(const struct moat_seccomp *s)
{
        return s ? s->n_insns : 0;
}

bool moat_seccomp_from_cache(const struct moat_seccomp *s)
{
        return s && s->from_cache;
}

const char *moat_seccomp_cache_name(const struct moat_seccomp *s)
{
        return s && s->cache_name[0] ? s->cache_name : NULL;
}

int moat_seccomp_features(json_t **ret)
{
        json_t *actions = json_array(), *ops = json_array(), *archs = json_array(), *known = json_array(),
               *supported = json_array();
        for (int i = 0; i < ACT__MAX; i++)
                json_array_append_new(actions, json_string(action_names[i]));
        for (size_t i = 0; i < ELEMENTSOF(op_table); i++)
                json_array_append_new(ops, json_string(op_table[i].name));
        for (size_t i = 0; i < ELEMENTSOF(arch_table); i++)
                if (arch_table[i].token)
                        json_array_append_new(archs, json_string(arch_table[i].name));
        for (size_t i = 0; i < ELEMENTSOF(flag_table); i++) {
                json_array_append_new(known, json_string(flag_table[i].name));
                if (kernel_accepts_flags(flag_probe(flag_table[i].flag)))
                        json_array_append_new(supported, json_string(flag_table[i].name));
        }
        *ret = json_pack("{s:b, s:o, s:o, s:o, s:o, s:o}", "enabled", 1, "actions", actions, "operators", ops,
                         "archs", archs, "knownFlags", known, "supportedFlags", supported);
        return *ret ? 0 : -ENOMEM;
}

/* ---- moat's default profile -------------------------------------------- */

const char *const moat_default_capabilities[] = {
        "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",       "CAP_NET_BIND_SERVICE",
        "CAP_SETFCAP", "CAP_SETGID",       "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT", NULL,
};

#define CAP(c) (UINT64_C(1) << (c))

uint64_t moat_default_capability_mask(void)
{
        return CAP(CAP_CHOWN) | CAP(CAP_DAC_OVERRIDE) | CAP(CAP_FOWNER) | CAP(CAP_FSETID) | CAP(CAP_KILL) |
               CAP(CAP_NET_BIND_SERVICE) | CAP(CAP_SETFCAP) | CAP(CAP_SETGID) | CAP(CAP_SETPCAP) |
               CAP(CAP_SETUID) | CAP(CAP_SYS_CHROOT);
}

struct profile_arg {
        unsigned index;
        uint64_t value, value_two;
        const char *op;
};

struct profile_rule {
        const char *const *names;
        const char *action;
        unsigned errno_ret;        /* 0: the action's default */
        uint64_t needs;            /* every one of these capabilities */
        uint64_t unless;           /* left out when any of these is granted */
        struct profile_arg args[1]; /* index 6: no condition */
};

#define NO_ARG { { 6, 0, 0, NULL } }
#define ARG(i, op, v, v2) { { i, v, v2, "SCMP_CMP_" #op } }
#define NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Namespace-creating clone/unshare flags: NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
 * NEWUSER, NEWPID, NEWNET; unshare also takes NEWTIME (0x80, which is part
 * of the exit signal for clone). */
#define CLONE_NS_FLAGS UINT64_C(0x7E020000)
#define UNSHARE_NS_FLAGS (CLONE_NS_FLAGS | UINT64_C(0x80))

#if defined(__s390x__) || defined(__s390__)
#define CLONE_FLAGS_ARG 1 /* s390 swaps the first two clone arguments */
#else
#define CLONE_FLAGS_ARG 0
#endif

static const struct profile_rule default_rules[] = {
        /* What ordinary programs use: files, memory, signals, time (read),
         * processes and threads, IPC, sockets other than socket() itself,
         * and the 32-bit and time64 spellings of the same. */
        { NAMES("_llseek", "_newselect", "accept", "accept4", "access", "alarm", "bind", "brk", "cachestat", "capget",
                "capset", "chdir", "chmod", "chown", "chown32", "clock_getres", "clock_getres_time64",
                "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close",
                "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
                "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2",
                "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
                "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
                "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork",
                "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
                "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
                "futex_wake", "futimesat", "get_mempolicy", "get_robust_list", "get_thread_area", "getcpu", "getcwd",
                "getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
                "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
                "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
                "getrusage", "getsid", "getsockname", "getsockopt", "gettid", "gettimeofday", "getuid", "getuid32",
                "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
                "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit",
                "ioctl", "ioprio_get", "ioprio_set", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
                "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr",
                "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
                "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat",
                "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
                "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
                "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync",
                "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "open", "openat",
                "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
                "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
                "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2",
                "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
                "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
                "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
                "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
                "rt_tgsigqueueinfo", "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
                "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
                "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
                "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
                "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
                "set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsgid32", "setfsuid",
                "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
                "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
                "setreuid", "setreuid32", "setrlimit", "setsid", "setsockopt", "setuid", "setuid32", "setxattr",
                "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaction", "sigaltstack", "signal", "signalfd",
                "signalfd4", "sigpending", "sigprocmask", "sigreturn", "sigsuspend", "socketcall", "socketpair",
                "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
                "sync_file_range", "sync_file_range2", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
                "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
                "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
                "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
                "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
                "wait4", "waitid", "waitpid", "write", "writev"),
          "SCMP_ACT_ALLOW", 0, 0, 0, NO_ARG },
#if defined(__x86_64__)
        { NAMES("arch_prctl"), "SCMP_ACT_ALLOW", 0, 0, 0, NO_ARG },
#endif

        /* socket(): every family but AF_ALG (38, the kernel crypto API) and
         * AF_VSOCK (40). Exact matches, not "> 40": the family is an int,
         * and a 64-bit comparison would let high bits through. */
        { NAMES("socket"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, LT, 38, 0) },
        { NAMES("socket"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 39, 0) },
        { NAMES("socket"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 41, 0) },
        { NAMES("socket"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 42, 0) },
        { NAMES("socket"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 43, 0) },
        { NAMES("socket"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 44, 0) },
        { NAMES("socket"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 45, 0) },

        /* personality(): Linux, Linux32, UNAME26 and the query, nothing
         * that changes address-space layout or security behaviour. */
        { NAMES("personality"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 0x0, 0) },
        { NAMES("personality"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 0x0008, 0) },
        { NAMES("personality"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 0x20000, 0) },
        { NAMES("personality"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 0x20008, 0) },
        { NAMES("personality"), "SCMP_ACT_ALLOW", 0, 0, 0, ARG(0, EQ, 0xffffffff, 0) },

        /* Threads and processes, but no new namespaces. clone3 hides its
         * flags behind a pointer BPF cannot read: ENOSYS makes libc fall
         * back to clone. */
        { NAMES("clone"), "SCMP_ACT_ALLOW", 0, 0, CAP(CAP_SYS_ADMIN),
          ARG(CLONE_FLAGS_ARG, MASKED_EQ, CLONE_NS_FLAGS, 0) },
        { NAMES("unshare"), "SCMP_ACT_ALLOW", 0, 0, CAP(CAP_SYS_ADMIN), ARG(0, MASKED_EQ, UNSHARE_NS_FLAGS, 0) },
        { NAMES("clone3"), "SCMP_ACT_ERRNO", ENOSYS, 0, CAP(CAP_SYS_ADMIN), NO_ARG },

        /* What each capability is meant to unlock. */
        { NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "keyctl",
                "add_key", "request_key", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
                "pivot_root", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "swapoff", "swapon",
                "syslog", "umount", "umount2", "unshare"),
          "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_ADMIN), 0, NO_ARG },
        { NAMES("bpf"), "SCMP_ACT_ALLOW", 0, CAP(CAP_BPF), CAP(CAP_SYS_ADMIN), NO_ARG },
        { NAMES("perf_event_open"), "SCMP_ACT_ALLOW", 0, CAP(CAP_PERFMON), CAP(CAP_SYS_ADMIN), NO_ARG },
        { NAMES("syslog"), "SCMP_ACT_ALLOW", 0, CAP(CAP_SYSLOG), CAP(CAP_SYS_ADMIN), NO_ARG },
        { NAMES("reboot"), "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_BOOT), 0, NO_ARG },
        { NAMES("chroot"), "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_CHROOT), 0, NO_ARG },
        { NAMES("delete_module", "finit_module", "init_module"), "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_MODULE), 0,
          NO_ARG },
        { NAMES("acct"), "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_PACCT), 0, NO_ARG },
        { NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
                "userfaultfd"),
          "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_PTRACE), 0, NO_ARG },
        { NAMES("iopl", "ioperm"), "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_RAWIO), 0, NO_ARG },
        { NAMES("adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday",
                "stime"),
          "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_TIME), 0, NO_ARG },
        { NAMES("vhangup"), "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_TTY_CONFIG), 0, NO_ARG },
        { NAMES("mbind", "migrate_pages", "move_pages", "set_mempolicy", "set_mempolicy_home_node"),
          "SCMP_ACT_ALLOW", 0, CAP(CAP_SYS_NICE), 0, NO_ARG },
        { NAMES("open_by_handle_at"), "SCMP_ACT_ALLOW", 0, CAP(CAP_DAC_READ_SEARCH), 0, NO_ARG },

        /* Never, whatever the capabilities: kexec_load, kexec_file_load,
         * io_uring_*, lookup_dcookie, modify_ldt, uselib, ustat, sysfs,
         * _sysctl, nfsservctl and the long-dead module calls are simply not
         * named, so the default action answers them. */
};

static json_t *profile_architectures(void)
{
#if defined(__x86_64__)
        return json_pack("[s, s, s]", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32");
#elif defined(__aarch64__)
        return json_pack("[s, s]", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM");
#elif defined(__s390x__)
        return json_pack("[s, s]", "SCMP_ARCH_S390X", "SCMP_ARCH_S390");
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return json_pack("[s]", "SCMP_ARCH_PPC64LE");
#elif defined(__riscv) && __riscv_xlen == 64
        return json_pack("[s]", "SCMP_ARCH_RISCV64");
#else
        return json_array(); /* the native arch alone */
#endif
}

int moat_seccomp_default_profile(uint64_t caps, json_t **ret)
{
        json_t *syscalls = json_array();
        if (!syscalls)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(default_rules); i++) {
                const struct profile_rule *pr = &default_rules[i];
                if ((caps & pr->needs) != pr->needs || (caps & pr->unless))
                        continue;
                json_t *names = json_array();
                for (const char *const *n = pr->names; *n; n++)
                        json_array_append_new(names, json_string(*n));
                json_t *e = json_pack("{s:o, s:s}", "names", names, "action", pr->action);
                if (!e) {
                        json_decref(syscalls);
                        return -ENOMEM;
                }
                if (pr->errno_ret)
                        json_object_set_new(e, "errnoRet", json_integer(pr->errno_ret));
                if (pr->args[0].op)
                        json_object_set_new(e, "args",
                                            json_pack("[{s:i, s:I, s:I, s:s}]", "index", (int) pr->args[0].index,
                                                      "value", (json_int_t) pr->args[0].value, "valueTwo",
                                                      (json_int_t) pr->args[0].value_two, "op", pr->args[0].op));
                json_array_append_new(syscalls, e);
        }
        *ret = json_pack("{s:s, s:i, s:o, s:o}", "defaultAction", "SCMP_ACT_ERRNO", "defaultErrnoRet", EPERM,
                         "architectures", profile_architectures(), "syscalls", syscalls);
        return *ret ? 0 : -ENOMEM;
}
