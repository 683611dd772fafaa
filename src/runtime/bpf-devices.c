/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Device rules for both cgroup versions (see bpf-devices.h). The program
 * is assembled here from a handful of instructions with the raw bpf()
 * system call: it needs no helper, map or BTF, so libbpf (and its ELF and
 * BTF machinery) would add a dependency and start-up cost for nothing.
 *
 * Program shape, for a state with default D and exceptions E1..En:
 *
 *     r2 = ctx->access_type & 0xffff      device type (1 block, 2 char)
 *     r3 = ctx->access_type >> 16         requested access bits
 *     r4 = ctx->major; r5 = ctx->minor
 *     for each Ei: if it matches, return !D
 *     return D
 *
 * An allow exception (default deny) matches when it covers every
 * requested bit, a deny exception (default allow) when it covers any of
 * them: the two checks the v1 controller makes.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "runtime/bpf-devices.h"

#define MAX_EXCEPTIONS 4096
#define VERIFIER_LOG_SIZE (64u * 1024u)
#define MAX_ATTACHED 64

/*
 * Appended to every container's rules, as runc does with its
 * AllowedDevices: mknod of any node (opening one still needs a rule), the
 * nodes every container gets (null, zero, full, random, urandom, tty), the
 * pty pair (/dev/pts/N is 136:N and /dev/console is one of them; ptmx is
 * 5:2) and /dev/net/tun (10:200, which runc allows so that a container
 * given CAP_NET_ADMIN can make tun devices). /dev/console as 5:1 is not in
 * the list: a container's console is a pty.
 */
static const struct moat_dev_rule default_rules[] = {
        { true, 'c', MOAT_DEV_WILDCARD, MOAT_DEV_WILDCARD, MOAT_DEV_MKNOD },
        { true, 'b', MOAT_DEV_WILDCARD, MOAT_DEV_WILDCARD, MOAT_DEV_MKNOD },
        { true, 'c', 1, 3, MOAT_DEV_ALL },
        { true, 'c', 1, 5, MOAT_DEV_ALL },
        { true, 'c', 1, 7, MOAT_DEV_ALL },
        { true, 'c', 1, 8, MOAT_DEV_ALL },
        { true, 'c', 1, 9, MOAT_DEV_ALL },
        { true, 'c', 5, 0, MOAT_DEV_ALL },
        { true, 'c', 5, 2, MOAT_DEV_ALL },
        { true, 'c', 136, MOAT_DEV_WILDCARD, MOAT_DEV_ALL },
        { true, 'c', 10, 200, MOAT_DEV_ALL },
};

const struct moat_dev_rule *moat_dev_default_rules(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(default_rules);
        return default_rules;
}

/* A container's rules start from deny-all, as runc's do: a configuration
 * without rules gets exactly the default list. */
void moat_dev_state_init(struct moat_dev_state *s)
{
        *s = (struct moat_dev_state){ .default_allow = false };
}

void moat_dev_state_done(struct moat_dev_state *s)
{
        free(s->ex);
        s->ex = NULL;
        s->n_ex = 0;
}

static bool same_device(const struct moat_dev_rule *a, const struct moat_dev_rule *b)
{
        return a->type == b->type && a->major == b->major && a->minor == b->minor;
}

int moat_dev_state_apply(struct moat_dev_state *s, const struct moat_dev_rule *rule)
{
        if (rule->type == 'a') {
                moat_dev_state_done(s);
                s->default_allow = rule->allow;
                return 0;
        }
        for (size_t i = 0; i < s->n_ex; i++) {
                if (!same_device(&s->ex[i], rule))
                        continue;
                if (rule->allow != s->default_allow)
                        s->ex[i].access |= rule->access;
                else {
                        s->ex[i].access &= ~rule->access;
                        if (s->ex[i].access == 0) {
                                memmove(&s->ex[i], &s->ex[i + 1], (s->n_ex - i - 1) * sizeof(*s->ex));
                                s->n_ex--;
                        }
                }
                return 0;
        }
        if (rule->allow == s->default_allow)
                return 0;
        if (s->n_ex >= MAX_EXCEPTIONS)
                return -E2BIG;
        struct moat_dev_rule *n = reallocarray(s->ex, s->n_ex + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        s->ex = n;
        s->ex[s->n_ex++] = *rule;
        return 0;
}

static bool rule_covers_device(const struct moat_dev_rule *r, char type, uint32_t major, uint32_t minor)
{
        return r->type == type && (r->major == MOAT_DEV_WILDCARD || r->major == major) &&
               (r->minor == MOAT_DEV_WILDCARD || r->minor == minor);
}

bool moat_dev_state_allows(const struct moat_dev_state *s, char type, uint32_t major, uint32_t minor,
                           unsigned access)
{
        for (size_t i = 0; i < s->n_ex; i++) {
                const struct moat_dev_rule *r = &s->ex[i];

                if (!rule_covers_device(r, type, major, minor))
                        continue;
                if (s->default_allow ? (access & r->access) != 0 : (access & ~r->access) == 0)
                        return !s->default_allow;
        }
        return s->default_allow;
}

void moat_dev_rule_format(const struct moat_dev_rule *rule, char *buf, size_t size)
{
        char maj[24] = "*", min[24] = "*", acc[4];
        size_t k = 0;

        if (rule->major != MOAT_DEV_WILDCARD)
                snprintf(maj, sizeof(maj), "%" PRIi64, rule->major);
        if (rule->minor != MOAT_DEV_WILDCARD)
                snprintf(min, sizeof(min), "%" PRIi64, rule->minor);
        if (rule->access & MOAT_DEV_READ)
                acc[k++] = 'r';
        if (rule->access & MOAT_DEV_WRITE)
                acc[k++] = 'w';
        if (rule->access & MOAT_DEV_MKNOD)
                acc[k++] = 'm';
        acc[k] = '\0';
        snprintf(buf, size, "%c %s:%s %s", rule->type, maj, min, acc);
}

/* ---- the program ----------------------------------------------------------- */

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
        return (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
}

#define LDX_W(dst, src, off) insn(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define ALU32_IMM(op, dst, imm) insn(BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src) insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV64_IMM(dst, imm) insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JMP32_IMM(op, dst, imm, off) insn(BPF_JMP32 | (op) | BPF_K, dst, 0, off, imm)
#define JMP32_REG(op, dst, src, off) insn(BPF_JMP32 | (op) | BPF_X, dst, src, off, 0)
#define EXIT() insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Longest rule block: type, 3 for access, major, minor, verdict, exit. */
#define RULE_MAX_INSNS 8
#define PROLOGUE_INSNS 6

int moat_bpf_devices_build(const struct moat_dev_state *s, struct bpf_insn **ret, size_t *ret_n)
{
        size_t cap = PROLOGUE_INSNS + s->n_ex * RULE_MAX_INSNS + 2, n = 0;
        _cleanup_free_ struct bpf_insn *p = calloc(cap, sizeof(*p));

        if (!p)
                return -ENOMEM;
        if (s->n_ex > MAX_EXCEPTIONS)
                return -E2BIG;

        p[n++] = LDX_W(BPF_REG_2, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
        p[n++] = ALU32_IMM(BPF_AND, BPF_REG_2, 0xffff);
        p[n++] = LDX_W(BPF_REG_3, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, access_type));
        p[n++] = ALU32_IMM(BPF_RSH, BPF_REG_3, 16);
        p[n++] = LDX_W(BPF_REG_4, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, major));
        p[n++] = LDX_W(BPF_REG_5, BPF_REG_1, offsetof(struct bpf_cgroup_dev_ctx, minor));

        for (size_t i = 0; i < s->n_ex; i++) {
                const struct moat_dev_rule *r = &s->ex[i];
                struct bpf_insn block[RULE_MAX_INSNS];
                size_t k = 0, jumps[RULE_MAX_INSNS], nj = 0;

                if (r->type != 'b' && r->type != 'c')
                        return -EINVAL;
                jumps[nj++] = k;
                block[k++] = JMP32_IMM(BPF_JNE, BPF_REG_2, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, 0);
                if (s->default_allow) {
                        /* deny exception: matches when any requested bit is covered */
                        block[k++] = MOV32_REG(BPF_REG_1, BPF_REG_3);
                        block[k++] = ALU32_IMM(BPF_AND, BPF_REG_1, (int32_t) r->access);
                        jumps[nj++] = k;
                        block[k++] = JMP32_IMM(BPF_JEQ, BPF_REG_1, 0, 0);
                } else if ((r->access & MOAT_DEV_ALL) != MOAT_DEV_ALL) {
                        /* allow exception: matches when every requested bit is covered */
                        block[k++] = MOV32_REG(BPF_REG_1, BPF_REG_3);
                        block[k++] = ALU32_IMM(BPF_AND, BPF_REG_1, (int32_t) r->access);
                        jumps[nj++] = k;
                        block[k++] = JMP32_REG(BPF_JNE, BPF_REG_1, BPF_REG_3, 0);
                }
                if (r->major != MOAT_DEV_WILDCARD) {
                        jumps[nj++] = k;
                        block[k++] = JMP32_IMM(BPF_JNE, BPF_REG_4, (int32_t) (uint32_t) r->major, 0);
                }
                if (r->minor != MOAT_DEV_WILDCARD) {
                        jumps[nj++] = k;
                        block[k++] = JMP32_IMM(BPF_JNE, BPF_REG_5, (int32_t) (uint32_t) r->minor, 0);
                }
                block[k++] = MOV64_IMM(BPF_REG_0, s->default_allow ? 0 : 1);
                block[k++] = EXIT();
                /* every failed check skips to the end of the block */
                for (size_t j = 0; j < nj; j++)
                        block[jumps[j]].off = (int16_t) (k - jumps[j] - 1);
                memcpy(p + n, block, k * sizeof(*block));
                n += k;
        }
        p[n++] = MOV64_IMM(BPF_REG_0, s->default_allow ? 1 : 0);
        p[n++] = EXIT();

        *ret = TAKE_PTR(p);
        *ret_n = n;
        return 0;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
        return (int) syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int moat_bpf_devices_load(const struct bpf_insn *insns, size_t n, int *ret_fd, struct moat_error **reterr)
{
        static const char license[] = "Apache-2.0";
        union bpf_attr attr;
        int fd;

        memset(&attr, 0, sizeof(attr));
        attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        attr.insns = (uint64_t) (uintptr_t) insns;
        attr.insn_cnt = (uint32_t) n;
        attr.license = (uint64_t) (uintptr_t) license;
        memcpy(attr.prog_name, MOAT_DEV_PROG_NAME, sizeof(MOAT_DEV_PROG_NAME));
        fd = sys_bpf(BPF_PROG_LOAD, &attr);
        if (fd >= 0) {
                *ret_fd = fd;
                return 0;
        }
        int err = errno;
        if (err != EINVAL && err != EACCES)
                return moat_error_set(reterr, err, "loading the device cgroup program (bpf BPF_PROG_LOAD)");

        /* Load again with the verifier's log, for the message. */
        _cleanup_free_ char *log = calloc(1, VERIFIER_LOG_SIZE);
        if (!log)
                return -ENOMEM;
        attr.log_level = 1;
        attr.log_size = VERIFIER_LOG_SIZE;
        attr.log_buf = (uint64_t) (uintptr_t) log;
        fd = sys_bpf(BPF_PROG_LOAD, &attr);
        if (fd >= 0) {
                *ret_fd = fd;
                return 0;
        }
        log[VERIFIER_LOG_SIZE - 1] = '\0';
        return moat_error_set(reterr, err, "the kernel refused the device cgroup program: %.2048s", log);
}

static int prog_id_and_name(int prog_fd, uint32_t *ret_id, char name[BPF_OBJ_NAME_LEN])
{
        struct bpf_prog_info info;
        union bpf_attr attr;

        memset(&info, 0, sizeof(info));
        memset(&attr, 0, sizeof(attr));
        attr.info.bpf_fd = (uint32_t) prog_fd;
        attr.info.info_len = sizeof(info);
        attr.info.info = (uint64_t) (uintptr_t) &info;
        if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) < 0)
                return negative_errno();
        *ret_id = info.id;
        memcpy(name, info.name, BPF_OBJ_NAME_LEN);
        name[BPF_OBJ_NAME_LEN - 1] = '\0';
        return 0;
}

/* The moat programs attached to the cgroup: fds (to be closed by the
 * caller) and ids. */
static int query_moat_programs(int cgroup_fd, int *fds, uint32_t *ids, size_t *ret_n, struct moat_error **reterr)
{
        uint32_t all[MAX_ATTACHED];
        union bpf_attr attr;
        size_t n = 0;

        memset(&attr, 0, sizeof(attr));
        attr.query.target_fd = (uint32_t) cgroup_fd;
        attr.query.attach_type = BPF_CGROUP_DEVICE;
        attr.query.prog_ids = (uint64_t) (uintptr_t) all;
        attr.query.prog_cnt = MAX_ATTACHED;
        if (sys_bpf(BPF_PROG_QUERY, &attr) < 0)
                return moat_error_set(reterr, errno, "querying the cgroup's device programs (bpf BPF_PROG_QUERY)");

        for (uint32_t i = 0; i < attr.query.prog_cnt && i < MAX_ATTACHED; i++) {
                union bpf_attr a;
                char name[BPF_OBJ_NAME_LEN];
                uint32_t id;

                memset(&a, 0, sizeof(a));
                a.prog_id = all[i];
                _cleanup_close_ int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
                if (fd < 0) {
                        if (errno == ENOENT)
                                continue;
                        return moat_error_set(reterr, errno, "opening device program %u", all[i]);
                }
                int r = prog_id_and_name(fd, &id, name);
                if (r < 0)
                        return moat_error_set(reterr, r, "reading device program %u", all[i]);
                if (!streq(name, MOAT_DEV_PROG_NAME))
                        continue;
                fds[n] = TAKE_FD(fd);
                ids[n] = id;
                n++;
        }
        *ret_n = n;
        return 0;
}

int moat_bpf_devices_count(int cgroup_fd, size_t *ret, struct moat_error **reterr)
{
        int fds[MAX_ATTACHED];
        uint32_t ids[MAX_ATTACHED];
        size_t n = 0;
        int r = query_moat_programs(cgroup_fd, fds, ids, &n, reterr);

        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

int moat_bpf_devices_install(int cgroup_fd, const struct moat_dev_state *s, struct moat_error **reterr)
{
        _cleanup_free_ struct bpf_insn *insns = NULL;
        _cleanup_close_ int prog_fd = -EBADF;
        int old_fds[MAX_ATTACHED];
        uint32_t old_ids[MAX_ATTACHED], new_id;
        char name[BPF_OBJ_NAME_LEN];
        size_t n_insns = 0, n_old = 0;
        union bpf_attr attr;
        int r;

        r = moat_bpf_devices_build(s, &insns, &n_insns);
        if (r < 0)
                return moat_error_set(reterr, r, "building the device cgroup program");
        r = moat_bpf_devices_load(insns, n_insns, &prog_fd, reterr);
        if (r < 0)
                return r;
        r = prog_id_and_name(prog_fd, &new_id, name);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the loaded device program");

        /* Attach first: with ALLOW_MULTI every attached program must allow,
         * so until the old one is gone the container only has less. */
        memset(&attr, 0, sizeof(attr));
        attr.target_fd = (uint32_t) cgroup_fd;
        attr.attach_bpf_fd = (uint32_t) prog_fd;
        attr.attach_type = BPF_CGROUP_DEVICE;
        attr.attach_flags = BPF_F_ALLOW_MULTI;
        if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
                return moat_error_set(reterr, errno, "attaching the device program to the cgroup (bpf BPF_PROG_ATTACH)");

        r = query_moat_programs(cgroup_fd, old_fds, old_ids, &n_old, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_old; i++) {
                if (r >= 0 && old_ids[i] != new_id) {
                        memset(&attr, 0, sizeof(attr));
                        attr.target_fd = (uint32_t) cgroup_fd;
                        attr.attach_bpf_fd = (uint32_t) old_fds[i];
                        attr.attach_type = BPF_CGROUP_DEVICE;
                        if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
                                r = moat_error_set(reterr, errno, "detaching the previous device program %u",
                                                   old_ids[i]);
                }
                safe_close(old_fds[i]);
        }
        return r < 0 ? r : 0;
}
