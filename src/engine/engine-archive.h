/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * What the engine does with a container's files and processes beyond its
 * life: docker cp (stat, tar out, tar in), docker export, docker top,
 * docker update and docker container prune.
 *
 * Every path inside a container is resolved by fd with openat2
 * RESOLVE_IN_ROOT on the container's root filesystem (mounted for the
 * operation when the container is stopped, under the container's busy
 * claim), so a symlink in the container (to "/", to "/etc", "../..")
 * resolves inside it and never reaches the host (CVE-2018-15664). A path
 * at or below a volume or bind mount of the container is resolved the
 * same way inside the mount's source (what the container sees there); a
 * path on a tmpfs mount is refused (not reachable from the host).
 *
 * Errors: docker's words and classes (engine.h).
 */
#include "base/compat.h"
#include "base/error.h"

#include <jansson.h>

struct moat_engine;
struct moat_engine_archive;

/* HEAD /containers/{id}/archive: docker's ContainerPathStat {name, size,
 * mode (Go's FileMode bits), mtime, linkTarget}. The last component of
 * path is not followed (a symlink is described, with linkTarget its
 * resolution inside the container) unless path ends in "/" or "/.". */
MOAT_NODISCARD int moat_engine_archive_stat(struct moat_engine *e, const char *ref, const char *path,
                                            json_t **ret_stat, struct moat_error **reterr);

/* GET /containers/{id}/archive in two steps, so errors come before the
 * response: open (claim, mount, resolve; *ret_stat as above), then write
 * the tar of the path (named by its base name, a directory with its
 * content) to out_fd, then close (unmount, release). */
MOAT_NODISCARD int moat_engine_archive_open(struct moat_engine *e, const char *ref, const char *path,
                                            struct moat_engine_archive **ret, json_t **ret_stat,
                                            struct moat_error **reterr);
/* GET /containers/{id}/export: the whole root filesystem. */
MOAT_NODISCARD int moat_engine_export_open(struct moat_engine *e, const char *ref, struct moat_engine_archive **ret,
                                           struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_archive_write(struct moat_engine_archive *a, int out_fd, struct moat_error **reterr);
void moat_engine_archive_close(struct moat_engine_archive *a);

/* PUT /containers/{id}/archive: extract the tar read from in_fd into the
 * directory path. no_overwrite_dir_non_dir: refuse to replace a directory
 * by a non-directory and the reverse; copy_uid_gid: everything owned by
 * the container's user (Config.User), else the archive's owners. */
MOAT_NODISCARD int moat_engine_archive_extract(struct moat_engine *e, const char *ref, const char *path, int in_fd,
                                               bool no_overwrite_dir_non_dir, bool copy_uid_gid,
                                               struct moat_error **reterr);

/* GET /containers/{id}/top: the host's ps with ps_args (NULL or "":
 * "-ef") filtered to the container's processes: {"Titles", "Processes"}. */
MOAT_NODISCARD int moat_engine_top(struct moat_engine *e, const char *ref, const char *ps_args, json_t **ret,
                                   struct moat_error **reterr);

/* POST /containers/{id}/update: body with Memory, MemorySwap,
 * MemoryReservation, NanoCpus, CpuShares, CpuQuota, CpuPeriod,
 * CpusetCpus, CpusetMems, PidsLimit, BlkioWeight, RestartPolicy. A
 * running container gets the limits at once; the stored HostConfig is
 * updated in any case. *ret_warnings: docker's Warnings (an array). */
MOAT_NODISCARD int moat_engine_update(struct moat_engine *e, const char *ref, const json_t *body,
                                      json_t **ret_warnings, struct moat_error **reterr);

/* POST /containers/prune: removes the stopped containers (created,
 * exited, dead) created before until_ns (0: any) matching the label and
 * label! filters (filters may be NULL; "until" is the caller's, already
 * in until_ns). *ret {"ContainersDeleted", "SpaceReclaimed"}. */
MOAT_NODISCARD int moat_engine_containers_prune(struct moat_engine *e, const json_t *filters, int64_t until_ns,
                                                json_t **ret, struct moat_error **reterr);
