/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The container's filesystem view, built by the container init inside its
 * new mount namespace, in three steps the init calls in order:
 *
 *   1. moat_mount_prepare_rootfs(): before pivot_root, with the host's
 *      filesystem still visible. Makes the existing mounts private/slave
 *      (rootfsPropagation), bind-mounts root.path onto itself, performs
 *      every entry of mounts[] in order, creates linux.devices and the
 *      default devices, and the /dev links.
 *   2. (the init runs createContainer hooks here)
 *   3. moat_mount_pivot_root(): pivot_root into the rootfs and detach the
 *      old root; or MS_MOVE + chroot with --no-pivot and automatically when
 *      the current root is ramfs/initramfs (pivot_root fails there).
 *   4. moat_mount_finalize(): inside the new root: maskedPaths,
 *      readonlyPaths, root.readonly, and the final rootfsPropagation.
 *
 * Every target inside the rootfs is resolved from an fd of the rootfs with
 * openat2(RESOLVE_IN_ROOT) (a symlink anywhere in the path stays inside the
 * rootfs) and mounted through /proc/self/fd or the new mount API
 * (move_mount); missing targets are created inside the root only.
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h"

struct moat_mount_context {
        const struct oci_config *config;
        const char *rootfs;     /* absolute host path of root.path (resolved against the bundle) */
        bool in_user_ns;        /* created a user namespace: devices are bind-mounted, not mknod'ed */
        bool no_pivot;          /* --no-pivot */
        bool new_cgroup_ns;     /* a cgroup namespace was created (affects type "cgroup" mounts) */
};

MOAT_NODISCARD int moat_mount_prepare_rootfs(const struct moat_mount_context *ctx, struct moat_error **reterr);
MOAT_NODISCARD int moat_mount_pivot_root(const struct moat_mount_context *ctx, struct moat_error **reterr);
MOAT_NODISCARD int moat_mount_finalize(const struct moat_mount_context *ctx, struct moat_error **reterr);

/*
 * The mount option table: translate one OCI mount option into what it
 * means. Exposed for `features` (mountOptions lists every option known
 * here) and for unit tests. Returns the NULL-terminated list of names.
 */
const char *const *moat_mount_known_options(void);
