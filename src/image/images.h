/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The image database on top of one store (store.h): named references,
 * resolution to a platform's image, garbage collection and the cache of
 * unpacked layer trees.
 *
 * References live in the store's index.json, as OCI image layouts keep
 * them: one descriptor of a manifest or index per reference, annotated
 * "org.opencontainers.image.ref.name" with the full normalised reference
 * ("docker.io/library/busybox:latest"), so the store can be copied out as
 * a layout. index.json is replaced atomically (temp, fsync, rename) under
 * the exclusive lock of <store>/images.lock. (The store's own <store>/lock
 * is held shared by every open store, this process's included, so it
 * cannot be taken exclusively here.)
 *
 * Layer trees (layer.h form) live in <store>/layers/<chain id>/, one per
 * ChainID, unpacked once and shared by every image that has them.
 * Unpacking holds <store>/layers.lock shared; garbage collection holds it
 * exclusively, so it never removes a tree being unpacked or verified.
 *
 * Garbage collection removes what no reference in index.json reaches. A
 * pull that has written blobs but not yet tagged them is not a reference:
 * the caller must not collect while it pulls into the same store.
 */

#include "base/compat.h"
#include "base/error.h"
#include "image/layer.h"
#include "image/store.h"
#include "oci/image-spec.h"

#define MOAT_IMAGES_REF_ANNOTATION "org.opencontainers.image.ref.name"
/* Bounds on index.json: its size and its number of entries. */
#define MOAT_IMAGES_INDEX_MAX_SIZE (16u * 1024u * 1024u)
#define MOAT_IMAGES_MAX_REFS 65536u
/* Indexes nested in indexes are followed this deep. */
#define MOAT_IMAGES_MAX_NESTING 4u

/*
 * Point reference (any docker reference text; normalised before storing)
 * at target, a manifest or index (OCI or Docker media type) already in the
 * store; its blob must be present, of target->size bytes, and parse as
 * target->media_type. A reference with a digest must name target's digest.
 * An existing entry of the same reference is replaced.
 */
MOAT_NODISCARD int moat_images_tag(struct moat_store *s, const char *reference, const struct oci_descriptor *target,
                                   struct moat_error **reterr);

/* Remove the reference; -ENOENT when it is not there. */
MOAT_NODISCARD int moat_images_untag(struct moat_store *s, const char *reference, struct moat_error **reterr);

struct moat_image_ref {
        char *reference;   /* normalised */
        char *digest;      /* the manifest or index it names */
        char *media_type;
        int64_t size;
};

/* Every reference of the store, sorted by reference. */
MOAT_NODISCARD int moat_images_list(struct moat_store *s, struct moat_image_ref **ret, size_t *ret_n,
                                    struct moat_error **reterr);
void moat_image_refs_free(struct moat_image_ref *refs, size_t n);

struct moat_image {
        char *reference;        /* normalised text of what was resolved */
        char *target_digest;    /* what the reference names (manifest or index) */
        char *manifest_digest;  /* the image manifest chosen for the platform */
        char *config_digest;
        struct oci_image_doc *manifest_doc;
        struct oci_image_doc *config_doc;
        const struct oci_manifest *manifest;     /* views into the docs above */
        const struct oci_image_config *config;
};

void moat_image_free(struct moat_image *img);
static inline void moat_image_freep(struct moat_image **img)
{
        moat_image_free(*img);
        *img = NULL;
}
#define _cleanup_image_ __attribute__((cleanup(moat_image_freep)))

/*
 * Resolve reference text to an image: the entry of its normalised form in
 * index.json (or, for a reference with a digest and no entry, that blob),
 * then, through indexes, the manifest best matching platform (only os,
 * architecture and variant are used; NULL means linux/amd64), then its
 * config. Blobs are read bounded and checked against their descriptors'
 * sizes. -ENOENT when the reference is not there; -EMEDIUMTYPE when it
 * names something that is not a runnable image (an artifact).
 */
MOAT_NODISCARD int moat_images_resolve(struct moat_store *s, const char *reference,
                                       const struct oci_platform *platform, struct moat_image **ret,
                                       struct moat_error **reterr);

/*
 * Make sure every layer of img is unpacked under <store>/layers/ and
 * return the ChainIDs, lowest first (NULL-terminated, n = layers), ready
 * for snapshot.h with <store>/layers as its layers directory. A missing
 * tree is unpacked into <store>/layers/.tmp-XXXXXXXX, its compressed
 * digest and DiffID checked against the manifest and the config (a
 * mismatch is -EBADMSG naming both digests and leaves nothing behind),
 * synced, then renamed into place; a concurrent unpacker of the same layer
 * that loses the rename discards its own tree. opts may be NULL (no device
 * nodes, ownership not kept).
 */
MOAT_NODISCARD int moat_images_unpack(struct moat_store *s, const struct moat_image *img,
                                      const struct moat_layer_options *opts, char ***ret_chain_ids,
                                      struct moat_error **reterr);

/* Open <store>/layers (created when absent), O_DIRECTORY|O_CLOEXEC. */
MOAT_NODISCARD int moat_images_layers_dir(struct moat_store *s, int *ret_fd, struct moat_error **reterr);

struct moat_images_gc_result {
        size_t blobs_removed;
        uint64_t bytes_removed;   /* of the blobs */
        size_t layers_removed;    /* layer trees, leftover temp trees included */
};

/*
 * Remove every blob and layer tree that no entry of index.json reaches
 * (entry -> index -> manifests -> config + layers; a manifest's ChainIDs
 * keep its trees). Entries without a reference name are roots too. A blob
 * that is referenced but missing is fine (a partial pull).
 */
MOAT_NODISCARD int moat_images_gc(struct moat_store *s, struct moat_images_gc_result *ret,
                                  struct moat_error **reterr);

/* Untag, then collect. Whether an image used by containers may go (force)
 * is the caller's decision, made before calling this. */
MOAT_NODISCARD int moat_images_rmi(struct moat_store *s, const char *reference, struct moat_images_gc_result *ret,
                                   struct moat_error **reterr);
