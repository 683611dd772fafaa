/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * Named volumes of the local driver: docker's /volumes routes over the
 * engine, and what the containers' side needs (volumes resolved when a
 * container starts, anonymous volumes removed with their container).
 *
 * A volume is a directory <data-root>/volumes/<name>/_data (volumes/ is
 * 0701, <name>/ and _data/ 0755) and a record in the database (db.h),
 * which also knows which containers use it (their Mounts). A volume
 * created with DriverOpts type/device/o is a tmpfs or a bind mount placed
 * on its _data when a container first needs it and removed with the
 * volume. Anonymous volumes carry docker's label
 * "com.docker.volume.anonymous" (what prune removes by default).
 *
 * Errors are docker's words and classes (engine.h).
 */
#include "base/compat.h"
#include "base/error.h"
#include "engine/docker-spec.h"

#include <jansson.h>

struct moat_engine;

#define MOAT_VOLUME_ANONYMOUS_LABEL "com.docker.volume.anonymous"

/* POST /volumes/create: body {Name, Driver, DriverOpts, Labels}; *ret is
 * docker's Volume object (the existing one when the name exists). */
MOAT_NODISCARD int moat_engine_volume_create(struct moat_engine *e, const json_t *body, json_t **ret,
                                             struct moat_error **reterr);
/* GET /volumes/{name} */
MOAT_NODISCARD int moat_engine_volume_inspect(struct moat_engine *e, const char *name, json_t **ret,
                                              struct moat_error **reterr);
/* GET /volumes: filters (may be NULL) dangling, name, label, driver;
 * *ret {"Volumes": [...], "Warnings": []}. */
MOAT_NODISCARD int moat_engine_volume_list(struct moat_engine *e, const json_t *filters, json_t **ret,
                                           struct moat_error **reterr);
/* DELETE /volumes/{name}: in use -EBUSY; force makes a missing one fine. */
MOAT_NODISCARD int moat_engine_volume_remove(struct moat_engine *e, const char *name, bool force,
                                             struct moat_error **reterr);
/* POST /volumes/prune: unused anonymous volumes, or every unused one with
 * the filter all=true; label and label! filters. *ret {"VolumesDeleted",
 * "SpaceReclaimed"}. */
MOAT_NODISCARD int moat_engine_volume_prune(struct moat_engine *e, const json_t *filters, json_t **ret,
                                            struct moat_error **reterr);

/* ---- for the engine's containers ---- */

/* The volume of req for a container being started, created when missing
 * (anonymous: named reuse_name when given, else a new 64-hex name), its
 * options' mount placed, and, unless req->nocopy, filled from what the
 * container's root (root_fd) holds at req->destination when the volume
 * is empty. The volume stays "pending" (no removal, no prune) until
 * engine_volume_release(): the container must have recorded its use in
 * the database by then. */
/* A VolumeOptions.Subpath is pinned when pin_dir_fd (the container's
 * directory) is given: the directory it resolved to by fd is cloned
 * (open_tree) onto a private mount point there (MOAT_SUBPATH_PINS/N), and
 * that path, which no container can change, is *ret_host_path; the pins go
 * with the container's root (moat_container_fs_unmount). Without it (the
 * create-time pass) the checked path itself is returned. */
MOAT_NODISCARD int engine_volume_acquire(struct moat_engine *e, const struct moat_docker_volume_request *req,
                                         const char *reuse_name, int root_fd, int pin_dir_fd, char **ret_host_path,
                                         char **ret_name, struct moat_error **reterr);
void engine_volume_release(struct moat_engine *e, const char *name);
/* Remove the anonymous volumes among a container's Mounts (docker rm -v,
 * AutoRemove); those still used elsewhere stay. */
void engine_volumes_remove_anonymous(struct moat_engine *e, const json_t *mounts);
/* The Volumes of GET /system/df: each volume as listed, with UsageData
 * {Size: bytes of its data (-1 when it cannot be measured), RefCount:
 * the containers that use it}. */
MOAT_NODISCARD int engine_volumes_df(struct moat_engine *e, json_t **ret, struct moat_error **reterr);
/* Bytes of the regular files below the directory fd, on its filesystem
 * (docker's SpaceReclaimed). */
uint64_t engine_tree_size(int fd);
