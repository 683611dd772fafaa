/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * The engine's image operations (images.c): what the /images routes and
 * /system/df answer, in Docker's JSON. The image library (image/) does
 * the work; this layer adds what only the engine knows (which containers
 * use an image) and Docker's documents: the images list (ImageSummary),
 * image inspect, history rows and the delete/prune reports.
 *
 * The document builders that need nothing but a store (the moat_image_*
 * functions below) take a store and an image, so the in-process CLI verbs
 * (cmd-images.c, cmd-inspect.c, cmd-history.c) can produce the same JSON
 * through them.
 *
 * Errors are Docker's, as engine.h says: -ENOENT "No such image: <text>"
 * (404), -EBUSY conflicts (409), -EINVAL bad parameters (400),
 * -EOPNOTSUPP not supported (501).
 */
#include "base/compat.h"
#include "base/error.h"

#include <jansson.h>
#include <stdint.h>

struct moat_engine;
struct moat_store;
struct moat_image;

/* Bounds on what a client controls. */
#define MOAT_ENGINE_IMAGES_MAX_NAMES 4096u        /* images named in one save */
#define MOAT_ENGINE_IMAGES_MAX_FILTER_VALUES 64u
/* A size walk (container upper dirs, layer trees) stops after this many entries. */
#define MOAT_ENGINE_TREE_WALK_MAX_ENTRIES 1000000u
#define MOAT_ENGINE_TREE_WALK_MAX_DEPTH 512u

/* ---- documents from a store alone ----------------------------------------- */

/* Count of containers using an image (by ID), for ImageSummary.Containers. */
typedef int64_t (*moat_image_containers_fn)(const char *image_id, void *userdata);

struct moat_image_list_options {
        const json_t *filters;     /* docker's filters object or NULL: dangling, reference, label, before, since */
        bool shared_size;          /* fill SharedSize (else -1) */
        moat_image_containers_fn containers;   /* NULL: Containers is -1 */
        void *userdata;
};

/* GET /images/json: one ImageSummary per image (ID), newest first. A
 * filter moat does not implement is -EOPNOTSUPP naming it; a malformed
 * one -EINVAL. *ret_layers_size (may be NULL) gets the bytes of the
 * distinct layer blobs of every image (docker's LayersSize). */
MOAT_NODISCARD int moat_image_list_json(struct moat_store *s, const struct moat_image_list_options *o, json_t **ret,
                                        int64_t *ret_layers_size, struct moat_error **reterr);

/* Docker's image inspect document of img. layers_path (may be NULL) is
 * the store's layers directory, named in GraphDriver when every layer is
 * unpacked there. */
MOAT_NODISCARD int moat_image_inspect_json(struct moat_store *s, const struct moat_image *img,
                                           const char *layers_path, json_t **ret, struct moat_error **reterr);

/* Docker's history rows (Id, Created, CreatedBy, Tags, Size, Comment),
 * newest first: the image's ID and tags on the top row, "<missing>" below.
 * Size is the unpacked tree's size when the layer is unpacked, else the
 * layer blob's. An image with more non-empty history entries than layers
 * is -EINVAL, as docker refuses it. */
MOAT_NODISCARD int moat_image_history_json(struct moat_store *s, const struct moat_image *img, json_t **ret,
                                           struct moat_error **reterr);

/* docker's directory.Size of the tree at dfd/name (non-directories' sizes,
 * hard links once), walked by fd, bounded by MOAT_ENGINE_TREE_WALK_*:
 * -E2BIG past the entry bound, -ELOOP past the depth bound. */
MOAT_NODISCARD int moat_engine_tree_size(int dfd, const char *name, int64_t *ret);

/* ---- engine operations ----------------------------------------------------- */

MOAT_NODISCARD int moat_engine_images_list(struct moat_engine *e, const json_t *filters, bool shared_size,
                                           json_t **ret, struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_image_inspect(struct moat_engine *e, const char *text, json_t **ret,
                                             struct moat_error **reterr);
/* platform: docker's JSON-encoded OCI platform query ({"os", "architecture",
 * "variant"}); NULL or "" picks the default, as lookups do. */
MOAT_NODISCARD int moat_engine_image_history(struct moat_engine *e, const char *text, const char *platform,
                                             json_t **ret, struct moat_error **reterr);
/* POST /images/{name}/tag: repo[:tag] (tag NULL or "" : "latest" unless
 * repo has one) points at what source names. */
MOAT_NODISCARD int moat_engine_image_tag(struct moat_engine *e, const char *source, const char *repo,
                                         const char *tag, struct moat_error **reterr);
/* DELETE /images/{name}: docker's rmi; *ret is the array of {"Untagged"}
 * and {"Deleted"} items. A running container's image is never deleted,
 * a stopped container's only with force (docker's messages). */
MOAT_NODISCARD int moat_engine_image_remove(struct moat_engine *e, const char *text, bool force, json_t **ret,
                                            struct moat_error **reterr);
/* POST /images/prune: filters dangling=true|false (false: every unused
 * image), until=<timestamp|duration>; others -EOPNOTSUPP. *ret is
 * {"ImagesDeleted": [...]|null, "SpaceReclaimed": N}. */
MOAT_NODISCARD int moat_engine_images_prune(struct moat_engine *e, const json_t *filters, json_t **ret,
                                            struct moat_error **reterr);
/* The number of images (IDs), for /info. */
MOAT_NODISCARD int moat_engine_images_count(struct moat_engine *e, int64_t *ret, struct moat_error **reterr);

/* One layer of a load: docker's "Loading layer" line. */
struct moat_engine_load_progress {
        const char *id;       /* 12 hex digits of the layer's digest, or the legacy directory's name */
        uint64_t current;
        int64_t total;        /* -1 when unknown */
        bool done;
};
typedef void (*moat_engine_load_progress_fn)(const struct moat_engine_load_progress *p, void *userdata);

/* POST /images/load: read an archive (docker-archive or OCI layout tar,
 * plain, gzip or zstd) from fd, tag what it names, keep the rest as
 * untagged images. *ret_lines gets docker's "Loaded image: x:y" and
 * "Loaded image ID: sha256:..." lines (without newlines). progress may be
 * NULL. */
/* platform: as moat_engine_image_history's; when given, only that
 * platform's image of each archived one is kept (an image without it is
 * an error, and nothing is tagged). */
MOAT_NODISCARD int moat_engine_images_load(struct moat_engine *e, int fd, const char *platform,
                                           moat_engine_load_progress_fn progress, void *userdata, json_t **ret_lines,
                                           struct moat_error **reterr);

/* GET /images/get: resolve the names first (a missing one is -ENOENT
 * before anything is written), then write a docker-format archive. A name
 * that is a reference goes with its name; an ID or digest without one, as
 * docker saves them. */
struct moat_engine_image_save;
/* platform: as moat_engine_image_history's; when given, each name's image
 * of that platform is saved (its manifest, not the index). */
MOAT_NODISCARD int moat_engine_images_save_prepare(struct moat_engine *e, const char *const *names, size_t n,
                                                   const char *platform, struct moat_engine_image_save **ret,
                                                   struct moat_error **reterr);
/* oci_only: the OCI layout without docker's manifest.json. */
MOAT_NODISCARD int moat_engine_images_save_write(struct moat_engine_image_save *sv, int fd, bool oci_only,
                                                 struct moat_error **reterr);
void moat_engine_images_save_free(struct moat_engine_image_save *sv);

struct moat_engine_import_options {
        char *const *changes;     /* Dockerfile instructions */
        size_t n_changes;
        const char *message;      /* NULL: "Imported from -" */
        const char *platform;     /* NULL or "": the host's */
        const char *reference;    /* NULL: kept untagged */
};
/* POST /images/create?fromSrc=-: a rootfs tarball read from fd becomes a
 * one-layer image; *ret_id is its ID. */
MOAT_NODISCARD int moat_engine_images_import(struct moat_engine *e, int fd, const struct moat_engine_import_options *o,
                                             char **ret_id, struct moat_error **reterr);

/* GET /system/df. */
enum {
        MOAT_ENGINE_DF_CONTAINERS = 1 << 0,
        MOAT_ENGINE_DF_IMAGES = 1 << 1,
        MOAT_ENGINE_DF_VOLUMES = 1 << 2,
        MOAT_ENGINE_DF_BUILD_CACHE = 1 << 3,
        MOAT_ENGINE_DF_ALL = 0xf,
};
MOAT_NODISCARD int moat_engine_system_df(struct moat_engine *e, unsigned what, json_t **ret,
                                         struct moat_error **reterr);
