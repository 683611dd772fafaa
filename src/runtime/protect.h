/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Defences around the runtime process itself and the last steps before the
 * container's program runs: the runtime binary is never reachable for
 * writing through /proc/<pid>/exe (CVE-2019-5736), LSM labels are applied
 * through a procfs the runtime opened and verified itself, and Landlock
 * rules are applied when the container asks for them.
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h"

/*
 * Make sure the running binary cannot be overwritten through
 * /proc/self/exe by a container process: re-exec from a sealed memfd copy
 * or a read-only clone when it is not already one. Called by moat-runtime
 * before create, run and exec; returns 0 in the re-executed process (or
 * when nothing had to be done), never returns on a successful re-exec.
 */
MOAT_NODISCARD int moat_protect_self_exe(int argc, char **argv, struct moat_error **reterr);

/*
 * In the init (or an exec'd process), after pivot_root and before execve:
 * apply process.apparmorProfile / process.selinuxLabel for the next exec.
 * proc_fd is an fd of a procfs opened and verified (fstatfs) before
 * pivot_root. When the LSM is not active and a label is asked for: a clear
 * error, unless the annotation "org.moat.lsm.ignore-inactive" is "true".
 */
MOAT_NODISCARD int moat_lsm_apply_exec_label(const struct oci_config *c, const struct oci_process *p, int proc_fd,
                                             struct moat_error **reterr);

/* Check the Landlock annotation "org.moat.landlock" at create, so a bad
 * one fails create with a clear error (the rules are applied after start,
 * where errors can no longer reach the caller). */
MOAT_NODISCARD int moat_landlock_validate(const struct oci_config *c, struct moat_error **reterr);

/* Landlock restrictions from the annotation "org.moat.landlock" (see
 * docs); nothing when absent. Called right before execve. */
MOAT_NODISCARD int moat_landlock_apply(const struct oci_config *c, struct moat_error **reterr);
