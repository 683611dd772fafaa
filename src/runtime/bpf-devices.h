/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Device access rules of a container's cgroup (linux.resources.devices).
 *
 * A rule list is first reduced the way the v1 devices controller reduces
 * the writes it receives (a default behaviour plus a list of exceptions),
 * so that v1 and v2 hosts give a container exactly the same devices. On v1
 * the reduced state is written to devices.deny/devices.allow; on v2 it is
 * compiled into a BPF_PROG_TYPE_CGROUP_DEVICE program, attached to the
 * cgroup directory with BPF_F_ALLOW_MULTI and replacing the program a
 * previous create or update attached.
 */

#include "base/compat.h"
#include "base/error.h"

#include <linux/bpf.h>

/* Access bits, the values of the kernel's BPF_DEVCG_ACC_*. */
#define MOAT_DEV_MKNOD 1u
#define MOAT_DEV_READ 2u
#define MOAT_DEV_WRITE 4u
#define MOAT_DEV_ALL 7u

#define MOAT_DEV_WILDCARD (-1)

/* The name the program is loaded under; update finds its predecessor by it. */
#define MOAT_DEV_PROG_NAME "moat_devices"

struct moat_dev_rule {
        bool allow;
        char type;      /* 'a' (every type), 'b' or 'c' */
        int64_t major;  /* MOAT_DEV_WILDCARD or 0..UINT32_MAX */
        int64_t minor;
        unsigned access; /* MOAT_DEV_* bits, never 0 */
};

/* The reduced form: what the v1 controller holds after the writes. */
struct moat_dev_state {
        bool default_allow;
        struct moat_dev_rule *ex; /* exceptions: allow rules when !default_allow, deny rules otherwise */
        size_t n_ex;
};

/* Deny-all, no exceptions: where a container's rules start. */
void moat_dev_state_init(struct moat_dev_state *s);
void moat_dev_state_done(struct moat_dev_state *s);
/* Apply one rule as the v1 controller would: a rule of type 'a' resets
 * the default and drops the exceptions; a rule that differs from the
 * default adds (merges) an exception; one that agrees with the default
 * takes its access bits away from the exception of the same device. */
MOAT_NODISCARD int moat_dev_state_apply(struct moat_dev_state *s, const struct moat_dev_rule *rule);
/* Whether the state lets a process do access on the device, as the kernel
 * decides it (v1 semantics; also what the BPF program computes). */
bool moat_dev_state_allows(const struct moat_dev_state *s, char type, uint32_t major, uint32_t minor,
                           unsigned access);

/* "c 1:3 rwm", "b *:* m" (buf of at least 64 bytes). */
void moat_dev_rule_format(const struct moat_dev_rule *rule, char *buf, size_t size);

/* The default rules appended after the configuration's (see the list in
 * bpf-devices.c), as runc appends its AllowedDevices. */
const struct moat_dev_rule *moat_dev_default_rules(size_t *ret_n);

/* The program for a reduced state (newly allocated instruction array). */
MOAT_NODISCARD int moat_bpf_devices_build(const struct moat_dev_state *s, struct bpf_insn **ret, size_t *ret_n);

/* Load instructions as a cgroup device program (the verifier's log is in
 * the error when it refuses). */
MOAT_NODISCARD int moat_bpf_devices_load(const struct bpf_insn *insns, size_t n, int *ret_fd,
                                         struct moat_error **reterr);

/* Build, load and attach the program to a cgroup2 directory, then detach
 * the moat programs attached there before (never a window without one). */
MOAT_NODISCARD int moat_bpf_devices_install(int cgroup_fd, const struct moat_dev_state *s,
                                            struct moat_error **reterr);

/* Number of moat device programs attached to the cgroup2 directory. */
MOAT_NODISCARD int moat_bpf_devices_count(int cgroup_fd, size_t *ret, struct moat_error **reterr);
