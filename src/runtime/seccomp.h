/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * linux.seccomp: compiled with libseccomp into a BPF program in the
 * runtime (before the clone, cached by a hash of the seccomp object under
 * <state root>/.cache/seccomp), installed by the container init as its last
 * act before execve. SCMP_ACT_NOTIFY filters hand their listener fd to the
 * agent at listenerPath with the container state (SCM_RIGHTS).
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h"

struct moat_seccomp;

/* Prepare the filter of config (NULL *ret when linux.seccomp is absent).
 * state_root is the runtime's --root (for the cache). Unknown syscall
 * names are skipped; warn (may be NULL) receives one message for them. */
MOAT_NODISCARD int moat_seccomp_prepare(const struct oci_config *config, const char *state_root,
                                        void (*warn)(const char *msg), struct moat_seccomp **ret,
                                        struct moat_error **reterr);
void moat_seccomp_free(struct moat_seccomp *s);
static inline void moat_seccomp_freep(struct moat_seccomp **s)
{
        moat_seccomp_free(*s);
        *s = NULL;
}
#define _cleanup_seccomp_ __attribute__((cleanup(moat_seccomp_freep)))

/*
 * Install the prepared filter in the calling process (the init, right
 * before execve; needs no_new_privs or CAP_SYS_ADMIN). With a notify
 * action and a listenerPath, connects to the agent and sends the listener
 * fd with state_json (the OCI state) as payload.
 */
MOAT_NODISCARD int moat_seccomp_install(const struct moat_seccomp *s, const char *state_json,
                                        struct moat_error **reterr);
