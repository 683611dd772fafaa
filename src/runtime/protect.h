/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Defences around the runtime process itself and the last steps before the
 * container's program runs: the runtime binary is never reachable for
 * writing through /proc/<pid>/exe (CVE-2019-5736), every procfs file the
 * runtime writes is reached through a procfs it verified itself
 * (CVE-2019-16884, CVE-2019-19921, CVE-2023-27561, CVE-2023-28642,
 * CVE-2025-52881), LSM labels are applied that way, and Landlock rules are
 * applied when the container asks for them.
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h"

/*
 * Make sure the running binary cannot be overwritten through
 * /proc/self/exe by a container process: re-exec from a read-only clone of
 * its mount (or, without the privilege for that, a sealed memfd copy) when
 * it is not already one. Called by moat-runtime before create, run and
 * exec; returns 0 in the re-executed process (or when nothing had to be
 * done), never returns on a successful re-exec.
 */
MOAT_NODISCARD int moat_protect_self_exe(int argc, char **argv, struct moat_error **reterr);

/* Whether fd (the running executable) can no longer be written by anyone:
 * a memfd sealed against writes, or a file on a read-only mount. */
bool moat_exe_is_protected(int fd);

/* ---- procfs ------------------------------------------------------------ */

/* 0 when dir_fd is the root directory of a procfs (fstatfs magic and root
 * inode), -EXDEV (type) or -ENOTDIR (not its root) otherwise. */
MOAT_NODISCARD int moat_procfs_verify(int dir_fd);

/*
 * Open path inside the procfs whose root is proc_fd (verified first), with
 * a leading "self/" or "thread-self/" replaced by what those links say,
 * then resolved beneath proc_fd without following any symlink and without
 * crossing a mount (so nothing mounted over a procfs file, and no symlink
 * planted by the container, can redirect the open); the result is checked
 * to be on a procfs. proc_fd < 0: the procfs at "/proc" of the caller,
 * verified the same way. Returns the fd or -errno.
 */
MOAT_NODISCARD int moat_procfs_open(int proc_fd, const char *path, int flags);

/* ---- LSM labels -------------------------------------------------------- */

enum moat_lsm {
        MOAT_LSM_APPARMOR,
        MOAT_LSM_SELINUX,
};

/* The annotation that turns "LSM not active" errors into no-ops. */
#define MOAT_ANNOTATION_LSM_IGNORE_INACTIVE "org.moat.lsm.ignore-inactive"

/* Whether the LSM is active on this kernel: lsm_list_modules(2), else
 * through the procfs at proc_fd (< 0: /proc). */
bool moat_lsm_is_active(enum moat_lsm lsm, int proc_fd);

/* Write the label for the next execve into the attr directory attr_fd
 * ("<procfs>/thread-self/attr"): AppArmor "exec <profile>" to
 * apparmor/exec (attr/exec on kernels without the subdirectory), SELinux
 * the label to exec. attr_fd must come from moat_procfs_open(); unit tests
 * pass a plain directory. */
MOAT_NODISCARD int moat_lsm_write_exec_label(int attr_fd, enum moat_lsm lsm, const char *label,
                                             struct moat_error **reterr);

/*
 * In the init (or an exec'd process), after pivot_root and before execve:
 * apply process.apparmorProfile / process.selinuxLabel for the next exec.
 * proc_fd is an fd of a procfs opened before pivot_root (it is verified
 * here). When the LSM is not active and a label is asked for: a clear
 * error, unless the annotation "org.moat.lsm.ignore-inactive" is "true".
 */
MOAT_NODISCARD int moat_lsm_apply_exec_label(const struct oci_config *c, const struct oci_process *p, int proc_fd,
                                             struct moat_error **reterr);

/* linux.mountLabel: the "context=" option to add to a tmpfs/mqueue/devpts
 * mount's data (*ret, newly allocated), NULL when there is no label or
 * SELinux is inactive and the annotation allows ignoring it; an error when
 * a label is asked for and SELinux is not active. */
MOAT_NODISCARD int moat_lsm_mount_label_data(const struct oci_config *c, const char *data, char **ret,
                                             struct moat_error **reterr);

/* ---- Landlock ----------------------------------------------------------- */

#define MOAT_ANNOTATION_LANDLOCK "org.moat.landlock"

/* Access classes of one rule. */
#define MOAT_LANDLOCK_READ 1u
#define MOAT_LANDLOCK_WRITE 2u
#define MOAT_LANDLOCK_EXECUTE 4u

struct moat_landlock_rule {
        char *path;      /* absolute, inside the container */
        unsigned access; /* MOAT_LANDLOCK_* */
};

struct moat_landlock_ruleset {
        struct moat_landlock_rule *rules;
        size_t n_rules;
};

/* Parse the annotation's value (JSON {"read":[...],"write":[...],
 * "execute":[...]} or "ro:/a,/b;rw:/c;rx:/d"); bounded, every path
 * absolute and without "..". */
MOAT_NODISCARD int moat_landlock_parse(const char *text, struct moat_landlock_ruleset *ret,
                                       struct moat_error **reterr);
void moat_landlock_ruleset_done(struct moat_landlock_ruleset *rs);

/* The Landlock ABI version of the running kernel, or -errno. */
MOAT_NODISCARD int moat_landlock_abi(void);

/* Check the Landlock annotation "org.moat.landlock" at create, so a bad
 * one fails create with a clear error (the rules are applied after start,
 * where errors can no longer reach the caller). */
MOAT_NODISCARD int moat_landlock_validate(const struct oci_config *c, struct moat_error **reterr);

/* Landlock restrictions from the annotation "org.moat.landlock" (see
 * docs/security.md); nothing when absent. Called right before execve,
 * inside the container's root; sets no_new_privs. */
MOAT_NODISCARD int moat_landlock_apply(const struct oci_config *c, struct moat_error **reterr);
