/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The last steps before the container's program runs, in the container
 * init after pivot_root: rlimits, oom_score_adj, personality, user and
 * groups, umask, capabilities, no_new_privs, and the lookup of args[0] on
 * the container's PATH. Each step is its own function because their order
 * is fixed by the kernel's rules (see the comment at the top of process.c)
 * and the init calls them in that order.
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h"

/*
 * Apply process.rlimits. A hard limit above the caller's current hard limit
 * needs CAP_SYS_RESOURCE; without it the error names the rlimit, the value
 * asked for and the hard limit allowed ("process.rlimits[0]: RLIMIT_NOFILE
 * hard limit 1048576 exceeds the caller's hard limit 20000 and this process
 * lacks CAP_SYS_RESOURCE"), instead of a bare EPERM.
 */
MOAT_NODISCARD int moat_process_apply_rlimits(const struct oci_process *p, struct moat_error **reterr);

/* Write oom_score_adj when set, through the procfs at proc_fd (opened
 * before pivot_root), verified and resolved with moat_procfs_open(). */
MOAT_NODISCARD int moat_process_apply_oom_score_adj_at(const struct oci_process *p, int proc_fd,
                                                       struct moat_error **reterr);

/* The same through the caller's "/proc", verified the same way (a fake
 * /proc is refused, not written to). */
MOAT_NODISCARD int moat_process_apply_oom_score_adj(const struct oci_process *p, struct moat_error **reterr);

/* linux.personality (LINUX / LINUX32). */
MOAT_NODISCARD int moat_process_apply_personality(const struct oci_config *c, struct moat_error **reterr);

/*
 * Switch to process.user (setgroups with additionalGids, setresgid,
 * setresuid) while keeping the capabilities that process.capabilities asks
 * for (PR_SET_KEEPCAPS and a capset afterwards), set the umask, then set
 * all five capability sets (bounding first, ambient last) and, if asked,
 * no_new_privs. When process.capabilities is absent every capability is
 * dropped. Capabilities the running kernel does not know are skipped.
 * setgroups is skipped when the user namespace denies it (told by the
 * kernel, not by the container's /proc).
 */
MOAT_NODISCARD int moat_process_apply_credentials(const struct oci_process *p, struct moat_error **reterr);

/*
 * The same, also setting the securebits (SECBIT_* of linux/securebits.h,
 * as moat_process_securebits() returns them; 0 leaves them untouched).
 * They are set while the process still holds CAP_SETPCAP: after the
 * bounding set is dropped and before the uid changes (see process.c).
 * no_cap_ambient_raise with ambient capabilities to raise is refused.
 */
MOAT_NODISCARD int moat_process_apply_credentials_ex(const struct oci_process *p, unsigned securebits,
                                                     struct moat_error **reterr);

/* The annotation naming the securebits to set (OCI has no field for them):
 * a comma-separated list of noroot, noroot_locked, no_setuid_fixup,
 * no_setuid_fixup_locked, keep_caps_locked, no_cap_ambient_raise,
 * no_cap_ambient_raise_locked. */
#define MOAT_SECUREBITS_ANNOTATION "org.moat.securebits"

/*
 * Parse and validate the securebits annotation of c into SECBIT_* bits
 * (*ret = 0 when absent). An unknown or empty name, or no_cap_ambient_raise
 * together with ambient capabilities, is -EINVAL with the annotation named.
 */
MOAT_NODISCARD int moat_process_securebits(const struct oci_config *c, unsigned *ret, struct moat_error **reterr);

/* prctl(PR_SET_SECUREBITS, bits); needs CAP_SETPCAP (said in the error). */
MOAT_NODISCARD int moat_process_apply_securebits(unsigned bits, struct moat_error **reterr);

/*
 * Capabilities in p that the running kernel does not know (above its last
 * capability): apply_credentials skips them, as runc and crun do, and this
 * gives the caller (the runtime, at create) the warning to show.
 * *ret_warning is a newly allocated message naming them, or NULL when all
 * are known. Returns 0 or -ENOMEM.
 */
MOAT_NODISCARD int moat_process_check_capabilities(const struct oci_process *p, char **ret_warning);

/*
 * Resolve args[0] as execvp would, but on the PATH given in process.env
 * (not the runtime's), inside the current root; a name with a '/' is used
 * as it is. *ret is a newly allocated path. -ENOENT names the program.
 */
MOAT_NODISCARD int moat_process_find_executable(const struct oci_process *p, char **ret, struct moat_error **reterr);

/*
 * process.cwd (CVE-2024-21626): both steps resolve the path inside the
 * current root with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, so a cwd such
 * as /proc/self/fd/N can neither create directories in, nor land on, a
 * host directory the init still has open. make_cwd (as root, before the
 * credentials) creates the missing directories; chdir (after them, so
 * permissions are the user's) enters it and checks that getcwd() shows a
 * path inside the root.
 */
MOAT_NODISCARD int moat_process_make_cwd(const struct oci_process *p, struct moat_error **reterr);
MOAT_NODISCARD int moat_process_chdir(const struct oci_process *p, struct moat_error **reterr);
