/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * OCI hooks: run each hook of a list in order, with the container state
 * JSON on its stdin, its own args and env, and its timeout (SIGKILL when it
 * expires). The caller decides what a failure means (spec: create* and
 * prestart abort the create; poststart is reported; poststop runs every
 * hook and only warns).
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h"

enum moat_hooks_mode {
        MOAT_HOOKS_STOP_AT_FIRST_FAILURE,
        MOAT_HOOKS_RUN_ALL,  /* poststop: run every hook, report the first failure */
};

/*
 * Run list->hooks[0..n) in order. state_json is written to each hook's
 * stdin. A hook's stdout and stderr go to the runtime's stderr (fd 2).
 * Returns 0 when every hook exited 0; otherwise -EIO (non-zero exit,
 * signal) or -ETIMEDOUT (killed after its timeout), with *reterr naming the
 * hook kind, index and path: "createRuntime hook [1] /usr/bin/x exited with
 * status 3". No hook process is left behind either way.
 */
MOAT_NODISCARD int moat_hooks_run(enum oci_hook_kind kind, const struct oci_hook_list *list, const char *state_json,
                                  enum moat_hooks_mode mode, struct moat_error **reterr);
