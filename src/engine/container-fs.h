/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * A container's files in its directory <data-root>/containers/<id>/:
 * upper/ and work/ (its writes, kept while the container exists),
 * rootfs/ (the overlay of the image's layers and upper/, mounted while it
 * runs), and the hostname, hosts and resolv.conf files bind-mounted into
 * it. Everything is made and removed through the directory's fd.
 */
#include "base/compat.h"
#include "base/error.h"
#include "image/images.h"
#include "image/snapshot.h"

#define MOAT_CONTAINER_ROOTFS "rootfs"
/* The tmpfs of a shareable IPC namespace's /dev/shm (IpcMode shareable),
 * mounted while the container runs; others (IpcMode container:<id>) bind it. */
#define MOAT_CONTAINER_SHM "shm"
/* Pinned volume subpaths (engine_volume_acquire), unmounted with the root. */
#define MOAT_SUBPATH_PINS "subpaths"

/* Unpack img's layers (as root: ownership and device nodes kept) and make
 * upper/ and work/ in dir_fd. */
MOAT_NODISCARD int moat_container_fs_prepare(struct moat_store *s, const struct moat_image *img, int dir_fd,
                                             struct moat_error **reterr);
/* Mount the overlay on dir/rootfs (created when missing); a rootfs that is
 * already a mount point is left as it is. flags: MOAT_SNAPSHOT_* (snapshot.h). */
MOAT_NODISCARD int moat_container_fs_mount(struct moat_store *s, const struct moat_image *img, int dir_fd,
                                           unsigned flags, struct moat_error **reterr);
/* Mount a tmpfs of size bytes (mode 1777, nosuid, nodev, noexec) on
 * dir/shm, made when missing; one already mounted is left as it is. */
MOAT_NODISCARD int moat_container_fs_mount_shm(int dir_fd, uint64_t size, struct moat_error **reterr);
/* Whether dir/shm is mounted: 1, 0, or a negative errno. */
int moat_container_fs_shm_mounted(int dir_fd);
/* Unmount dir/rootfs and dir/shm where mounted (the mounts and anything
 * below them). */
MOAT_NODISCARD int moat_container_fs_unmount(int dir_fd, struct moat_error **reterr);
/* Write hostname, hosts and resolv.conf into dir_fd for a container with
 * no network of its own beyond loopback (network none) or the host's
 * (host_network: the host's /etc/hosts and /etc/resolv.conf are copied),
 * with the host_config's ExtraHosts, Dns, DnsSearch and DnsOptions (as
 * create normalised them). */
MOAT_NODISCARD int moat_container_fs_write_etc(int dir_fd, const char *hostname, const char *domainname,
                                               bool host_network, const json_t *host_config,
                                               struct moat_error **reterr);
/* Remove the whole directory tree of a container that is unmounted. */
MOAT_NODISCARD int moat_container_fs_remove(int containers_dir_fd, const char *id, struct moat_error **reterr);
/* Make containers/name, a removed container's directory, a new one's: if
 * nothing is mounted on it and the container left nothing in it (upper/
 * empty with the attributes it was made with, rootfs/ empty, work/ holding
 * only overlayfs's scratch directory, which is removed, and its logs,
 * which are deleted), rename it to `to` and return 0; else a negative
 * errno and the caller removes it. */
MOAT_NODISCARD int moat_container_fs_recycle(int containers_dir_fd, const char *name, const char *to);
