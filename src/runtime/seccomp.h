/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * linux.seccomp: compiled with libseccomp into a BPF program in the
 * runtime (before the clone, cached by a hash of the seccomp object under
 * <state root>/.cache/seccomp), installed by the container init as its last
 * act before execve. SCMP_ACT_NOTIFY filters hand their listener fd to the
 * agent at listenerPath with the container state (SCM_RIGHTS).
 *
 * Also moat's default security: the default seccomp profile (generated for
 * the capabilities a container is granted) and the capability set that
 * `spec --hardened` and the engine grant.
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h"

#include <jansson.h>

struct moat_seccomp;

/* Prepare the filter of config (NULL *ret when linux.seccomp is absent).
 * state_root is the runtime's --root (for the cache). Unknown syscall
 * names are skipped; warn (may be NULL) receives one message for them.
 * With a notify action, connects to listenerPath here, in the runtime's
 * mount namespace (the init sends on that connection). */
MOAT_NODISCARD int moat_seccomp_prepare(const struct oci_config *config, const char *state_root,
                                        void (*warn)(const char *msg), struct moat_seccomp **ret,
                                        struct moat_error **reterr);
/* The same from the linux.seccomp object itself; state_root may be NULL
 * (no cache). Errors name the path from "linux.seccomp". */
MOAT_NODISCARD int moat_seccomp_prepare_json(const json_t *seccomp, const char *state_root,
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
 * action and a listenerPath, sends the listener fd to the agent with the
 * container process state built around state_json (the OCI state) and
 * shuts the connection down.
 */
MOAT_NODISCARD int moat_seccomp_install(const struct moat_seccomp *s, const char *state_json,
                                        struct moat_error **reterr);

/* What a prepared filter is made of (tests, diagnostics). */
size_t moat_seccomp_instructions(const struct moat_seccomp *s);
bool moat_seccomp_from_cache(const struct moat_seccomp *s);
/* The cache file a prepared filter uses ("<hex sha256>"; NULL without a
 * cache). */
const char *moat_seccomp_cache_name(const struct moat_seccomp *s);

/* Check the content of a cache file: 0 when it holds a usable program,
 * -EBADMSG (or -EFBIG) otherwise. */
MOAT_NODISCARD int moat_seccomp_cache_check(const void *buf, size_t size);

/* The features document's linux.seccomp object (features-linux.json). */
MOAT_NODISCARD int moat_seccomp_features(json_t **ret);

/* ---- moat's default security ------------------------------------------- */

/* The capabilities moat grants by default (bounding, effective, permitted;
 * never inheritable or ambient), NULL-terminated: Podman's 11. */
extern const char *const moat_default_capabilities[];
/* Their mask (bit N = capability N). */
uint64_t moat_default_capability_mask(void);

/* moat's default seccomp profile in linux.seccomp form, for a container
 * granted the capabilities in caps (bit N = capability N): deny with EPERM
 * by default, allow what ordinary programs use, and open the syscalls a
 * granted capability is meant to unlock. */
MOAT_NODISCARD int moat_seccomp_default_profile(uint64_t caps, json_t **ret);

