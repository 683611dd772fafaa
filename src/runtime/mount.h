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

struct moat_cgroup;
struct moat_cgroup_mounts;

struct moat_mount_context {
        const struct oci_config *config;
        const char *rootfs;     /* absolute host path of root.path (resolved against the bundle) */
        bool in_user_ns;        /* created a user namespace: devices are bind-mounted, not mknod'ed */
        bool no_pivot;          /* --no-pivot */
        bool new_cgroup_ns;     /* a cgroup namespace was created (affects type "cgroup" mounts) */
        /* The host's cgroup mounts as the parent read them (the init is its
         * fork, in a copy of the same mount namespace); NULL: read them here
         * when a "cgroup" mount needs them. */
        const struct moat_cgroup_mounts *cgroup_mounts;
        /* The container's cgroup when the init sets up its root before it
         * has been moved there (and before it makes its cgroup namespace):
         * "cgroup" mounts bind the container's directories, which is what a
         * fresh mount inside the namespace would show. NULL: mount as the
         * init's own cgroup and cgroup namespace say. */
        const struct moat_cgroup *cgroup;
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

/*
 * Internal to the mount module (mount.c, mount-options.c, devices.c) and
 * its unit test.
 */

/* One mount's options[] split the way runc does: known names change flags
 * or attributes, everything else is filesystem data. */
struct moat_mount_options {
        unsigned long flags;        /* MS_* set by an option (includes MS_BIND, MS_REC for rbind) */
        unsigned long clear;        /* MS_* an option asked to clear (rw, suid, dev, exec, ...) */
        unsigned long propagation;  /* last propagation option (MS_PRIVATE|MS_REC, ...); 0 = none */
        uint64_t rec_set;           /* MOUNT_ATTR_* applied with AT_RECURSIVE (rro, rnosuid, ...) */
        uint64_t rec_clr;
        bool tmpcopyup;
        bool idmap;
        bool ridmap;
        char *data;                 /* unknown options joined with ','; NULL when none */
};

/* Options are bounded (at most 4096 of them, 64 KiB of data). */
MOAT_NODISCARD int moat_mount_options_parse(char *const *options, struct moat_mount_options *ret,
                                            struct moat_error **reterr);
void moat_mount_options_done(struct moat_mount_options *o);

/* One line of /proc/self/mountinfo, unescaped where paths are. */
struct moat_mountinfo_entry {
        int id;
        int parent;
        dev_t dev;
        char *root;
        char *mountpoint;
        char *mount_options;
        char *optional;     /* "shared:1 master:2", possibly empty */
        char *fstype;
        char *source;
        char *super_options;
};

/* The one parser of /proc/self/mountinfo in the runtime: cb for every
 * mount; cb returns < 0 to fail, > 0 to stop. Only for what the kernel
 * offers no cheaper call for: the text of every mount is formatted on
 * each read, so its cost grows with the mounts on the host. */
MOAT_NODISCARD int moat_mountinfo_foreach(int (*cb)(const struct moat_mountinfo_entry *e, void *userdata),
                                          void *userdata);

/* openat2(root_fd, path, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) with
 * O_CLOEXEC added; retries on EAGAIN. Returns the fd or -errno. */
MOAT_NODISCARD int moat_open_in_root(int root_fd, const char *path, int flags, mode_t mode);

/* Create every missing directory of path inside the root (mode 0755) and
 * return an O_PATH fd of the last one. */
MOAT_NODISCARD int moat_mkdir_p_in_root(int root_fd, const char *path);

/* Make sure path exists inside the root (parents as directories, the last
 * component as a directory or an empty file) and return an O_PATH fd of it.
 * An existing last component is kept whatever its type. */
MOAT_NODISCARD int moat_create_in_root(int root_fd, const char *path, bool directory, mode_t mode);

/* Devices (devices.c): the default devices, linux.devices and the /dev
 * links, inside the rootfs open as root_fd. */
MOAT_NODISCARD int moat_mount_create_devices(const struct moat_mount_context *ctx, int root_fd,
                                             bool devpts_at_dev_pts, struct moat_error **reterr);
