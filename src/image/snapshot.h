/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Container root filesystems from unpacked layer trees (layer.h: overlayfs
 * form, whiteouts are char devices 0/0, opaque directories carry
 * trusted.overlay.opaque="y").
 *
 * A layer tree is the directory named by its chain id directly inside
 * layers_dir_fd. chain_ids lists the layers lowest first. A chain id must be
 * a single path component (no "/", not "." or ".."), at most
 * MOAT_SNAPSHOT_ID_MAX bytes.
 *
 * A container directory holds upper/ (the container's writes) and work/
 * (overlayfs's scratch directory) when writable. Unmounting is the
 * caller's business.
 */

#include "base/compat.h"
#include "base/error.h"

#define MOAT_SNAPSHOT_ID_MAX 255
/* A tree named <chain id of a layer> + this suffix sits on that layer in
 * the containers' mounts (the engine's mount points, container-fs.c); the
 * store's gc removes it with the layer. */
#define MOAT_SNAPSHOT_INIT_SUFFIX ".init"
/* overlayfs refuses more lower layers than this (OVL_MAX_STACK). */
#define MOAT_SNAPSHOT_OVL_MAX_STACK 500
/* moat_snapshot_mount() nests the lowest layers in a second overlay beyond
 * that: 500 + 499 lowers (overlayfs stacks at most two deep). */
#define MOAT_SNAPSHOT_MAX_LAYERS 999
/* The copy fallback has no kernel limit; this bounds the input. */
#define MOAT_SNAPSHOT_MAX_COPY_LAYERS 4096
/* The copy fallback refuses directory trees deeper than this. */
#define MOAT_SNAPSHOT_MAX_DEPTH 256

/* The flags of moat_snapshot_mount() and moat_snapshot_mount_legacy(). */
enum {
        /* No upper/ and work/: the layers alone, read-only (a bool true, as
         * callers once passed, means this). */
        MOAT_SNAPSHOT_READONLY = 1u << 0,
        /* overlayfs's "volatile": the upper file system is never synced,
         * so unmounting costs no journal commit. For writes that are
         * thrown away with the container (docker run --rm): after a crash
         * the upper is not to be trusted, and a later mount of the same
         * upper/ clears the kernel's marker of that. */
        MOAT_SNAPSHOT_VOLATILE = 1u << 1,
};

/*
 * Check that every layer exists and, unless readonly, create upper/ and
 * work/ in container_dir_fd (existing directories are kept, so a stopped
 * container keeps its writes).
 */
MOAT_NODISCARD int moat_snapshot_prepare(int layers_dir_fd, const char *const *chain_ids, size_t n,
                                         int container_dir_fd, bool readonly,
                                         struct moat_error **reterr);

/*
 * Mount the overlay of the layers (plus upper/ and work/ of
 * container_dir_fd unless readonly) on target_fd, an O_PATH (or any) fd of
 * the target directory, with the new mount API (fsopen, fsconfig, fsmount,
 * move_mount). Lower layers are passed one per "lowerdir+" call (Linux 6.8),
 * so the length of the layer paths does not matter; beyond overlayfs's 500
 * lowers, the lowest layers are first mounted as one detached read-only
 * overlay that becomes the lowest lower (layers on an overlayfs cannot be
 * nested so: the kernel stacks at most two deep). On older kernels this
 * falls back to moat_snapshot_mount_legacy(). A readonly mount of a single
 * layer is a read-only bind mount of the layer tree. container_dir_fd is
 * ignored (may be -EBADF) when readonly.
 */
MOAT_NODISCARD int moat_snapshot_mount(int layers_dir_fd, const char *const *chain_ids, size_t n,
                                       int container_dir_fd, unsigned flags, int target_fd,
                                       struct moat_error **reterr);

/*
 * The pre-6.8 way, exported so it can be tested on new kernels: one
 * mount(2) whose option string names every directory by a short
 * /proc/self/fd/N path of an O_PATH fd (the kernel's limit is one page for
 * the whole string, about 230 layers); a clear error when it does not fit.
 */
MOAT_NODISCARD int moat_snapshot_mount_legacy(int layers_dir_fd, const char *const *chain_ids,
                                              size_t n, int container_dir_fd, unsigned flags,
                                              int target_fd, struct moat_error **reterr);

/*
 * The copy-based fallback where overlayfs is unavailable: apply the layers
 * lowest first into dest_dir_fd (regular files, directories, symlinks,
 * device nodes, fifos, ownership, modes, times, xattrs). A whiteout deletes
 * the entry of that name below it; an opaque directory first clears what
 * the layers below put there. Every path is handled by fd, one component
 * at a time, never following a symlink. Hardlinks inside a layer become
 * separate copies.
 */
MOAT_NODISCARD int moat_snapshot_copy(int layers_dir_fd, const char *const *chain_ids, size_t n,
                                      int dest_dir_fd, struct moat_error **reterr);

/* Remove upper/ and work/ from container_dir_fd (absent ones are fine). */
MOAT_NODISCARD int moat_snapshot_remove(int container_dir_fd, struct moat_error **reterr);

/*
 * What is mounted at path (the topmost mount: stat sees that one), as
 * moat_snapshot_mount mounts a layer stack read-only: a bind mount of the
 * single layer tree has the tree's device and inode; an overlay's root
 * directory has the inode of its topmost lower (all layers are on one
 * filesystem), and the topmost ChainID names the whole stack below it.
 * *ret_which: the index of the matching tree in ids, or -1 when the mount
 * is of none of them. single: the stack has one layer (1), more (0), or
 * either (-1). Returns 1 when path is a mount point, 0 when it is not.
 */
MOAT_NODISCARD int moat_snapshot_mounted_stack(const char *path, int layers_fd, char *const *ids, size_t n_ids,
                                               int single, ssize_t *ret_which, struct moat_error **reterr);

/* Where the stack topped by layers/<top> (single: of one layer) is mounted
 * read-only, wherever that is: each read-only mount point of
 * /proc/self/mountinfo is checked as above. 1 and *ret_path (the first
 * such mount point) when mounted, 0 when not. */
MOAT_NODISCARD int moat_snapshot_mount_point(int layers_fd, const char *top, bool single, char **ret_path,
                                             struct moat_error **reterr);
