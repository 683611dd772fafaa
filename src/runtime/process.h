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

/* Write /proc/self/oom_score_adj when set. */
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
 * setgroups is skipped when /proc/self/setgroups says "deny".
 */
MOAT_NODISCARD int moat_process_apply_credentials(const struct oci_process *p, struct moat_error **reterr);

/*
 * Resolve args[0] as execvp would, but on the PATH given in process.env
 * (not the runtime's), inside the current root; a name with a '/' is used
 * as it is. *ret is a newly allocated path. -ENOENT names the program.
 */
MOAT_NODISCARD int moat_process_find_executable(const struct oci_process *p, char **ret, struct moat_error **reterr);
