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
/* When a named entry was made (docker's Metadata.LastTagTime), RFC 3339 UTC. */
#define MOAT_IMAGES_TAG_TIME_ANNOTATION "io.moat.image.tag-time"
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
 * An existing entry of the same reference is replaced; the image it held,
 * when no other entry holds it, stays as an untagged entry (docker's
 * dangling image). An untagged entry of target goes (it has a name now).
 */
MOAT_NODISCARD int moat_images_tag(struct moat_store *s, const char *reference, const struct oci_descriptor *target,
                                   struct moat_error **reterr);

/*
 * Remove the reference's entry; -ENOENT when it is not there. Only the
 * entry goes: the image it named is collected by the next gc unless another
 * entry reaches it (moat_images_remove is docker's rmi).
 */
MOAT_NODISCARD int moat_images_untag(struct moat_store *s, const char *reference, struct moat_error **reterr);

/*
 * Keep target in the store without a name: an index.json entry without a
 * ref name annotation, a GC root shown as docker's dangling <none>:<none>
 * image. Nothing is done when an entry already holds target's digest.
 * (moat_images_tag does this itself for an image that loses its last name
 * to a moved tag; a load uses it for the images an archive does not name.)
 */
MOAT_NODISCARD int moat_images_add_untagged(struct moat_store *s, const struct oci_descriptor *target,
                                            struct moat_error **reterr);

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

/*
 * One index.json entry with the ID of the image it holds. An image's ID is
 * the digest of its config (docker's image ID); several entries (names) can
 * hold one image.
 */
struct moat_image_entry {
        char *reference;   /* normalised; NULL for an untagged (dangling) entry */
        char *digest;      /* the manifest or index the entry holds */
        char *media_type;
        int64_t size;
        char *id;          /* config digest of the image for the platform; NULL when the entry does not
                            * hold a runnable image (artifact, blob missing or unreadable) */
        char *created;     /* the config's "created", or NULL */
        int64_t image_size;   /* sum of the manifest's layer sizes (0 without id) */
        char *tag_time;    /* RFC 3339 UTC time the entry was made (moat's annotation), or NULL */
};

/* Every entry of index.json, resolved for platform (NULL: linux/amd64):
 * named entries sorted by reference, then untagged ones by digest. */
MOAT_NODISCARD int moat_images_entries(struct moat_store *s, const struct oci_platform *platform,
                                       struct moat_image_entry **ret, size_t *ret_n, struct moat_error **reterr);
void moat_image_entries_free(struct moat_image_entry *entries, size_t n);

struct moat_images_doc;

struct moat_image {
        char *reference;        /* normalised text of what was resolved */
        char *target_digest;    /* what the reference names (manifest or index) */
        char *manifest_digest;  /* the image manifest chosen for the platform */
        char *config_digest;    /* the image's ID */
        /* The documents, shared with the image database's cache and other
         * threads' images: read only. */
        const struct oci_image_doc *manifest_doc;
        const struct oci_image_doc *config_doc;
        const struct oci_manifest *manifest;     /* views into the docs above */
        const struct oci_image_config *config;
        char *target_media_type;  /* of target_digest */
        int64_t target_size;      /* of target_digest, -1 when found by digest alone */
        bool by_id;               /* found by moat_images_lookup through its ID */
        struct moat_images_doc *manifest_hold, *config_hold;   /* private: the cache's documents held */
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
 * Find an image by what a docker user may type for one (docker's
 * GetImage), for platform (NULL: linux/amd64). Tried in order:
 *  1. "sha256:<64 hex>" or "<64 hex>": the full ID, the image whose config
 *     digest it is;
 *  2. reference text: moat_images_resolve (a tag, or name@digest);
 *  3. "<hex>" or "sha256:<hex>", 1 to 63 lower-case hex digits: a prefix of
 *     the ID of exactly one image.
 * IDs are those of index.json entries (moat_images_entries), named or not.
 * Found by ID, ret->by_id is set, ret->reference is the full ID and the
 * entry used is the first named one holding the image (else an untagged
 * one). -ENOENT "No such image: <text>" when nothing matches; -ENOTUNIQ
 * "multiple IDs found with provided prefix: <prefix>" when a prefix names
 * several images; -EMEDIUMTYPE when a reference names an artifact.
 */
MOAT_NODISCARD int moat_images_lookup(struct moat_store *s, const char *text, const struct oci_platform *platform,
                                      struct moat_image **ret, struct moat_error **reterr);

/*
 * Make sure every layer of img is unpacked under <store>/layers/ and
 * return the ChainIDs, lowest first (NULL-terminated, n = layers), ready
 * for snapshot.h with <store>/layers as its layers directory. A missing
 * tree is unpacked into <store>/layers/.tmp-XXXXXXXX, its compressed
 * digest and DiffID checked against the manifest and the config (a
 * mismatch is -EBADMSG naming both digests and leaves nothing behind),
 * synced, then renamed into place; a concurrent unpacker of the same layer
 * that loses the rename discards its own tree. opts may be NULL (no device
 * nodes, ownership not kept). Missing layers are unpacked concurrently (at
 * most min(layers, CPUs, 8) threads, all joined before returning); their
 * trees are synced with one syncfs and renamed only when every layer
 * succeeded, so a failure installs nothing and leaves no temp tree; the
 * error names the layer.
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
 * that is referenced but missing is fine (a partial pull). Holds images.lock
 * and layers.lock exclusively.
 */
MOAT_NODISCARD int moat_images_gc(struct moat_store *s, struct moat_images_gc_result *ret,
                                  struct moat_error **reterr);

/*
 * Whether a container uses an image: the engine's veto on removal (docker's
 * conflicts). Called with the image's ID; returns MOAT_IMAGE_UNUSED, or
 * MOAT_IMAGE_USED_STOPPED / MOAT_IMAGE_USED_RUNNING with *ret_container set
 * to a malloc'ed container ID; or -errno (the removal fails with it). A
 * NULL callback means no container uses any image (the CLI, which runs no
 * containers).
 */
enum moat_image_use {
        MOAT_IMAGE_UNUSED = 0,
        MOAT_IMAGE_USED_STOPPED = 1,
        MOAT_IMAGE_USED_RUNNING = 2,
};
typedef int (*moat_images_use_fn)(const char *image_id, char **ret_container, void *userdata);

/* What a removal did, in docker's ImageDeleteResponseItem order. */
struct moat_images_delete_item {
        char *untagged;   /* familiar reference ("busybox:latest"), or NULL */
        char *deleted;    /* image ID, or a layer's ChainID, or NULL */
};
struct moat_images_delete_report {
        struct moat_images_delete_item *items;
        size_t n;
        uint64_t reclaimed;   /* bytes of blobs the collection removed */
};
void moat_images_delete_report_clear(struct moat_images_delete_report *r);

struct moat_images_remove_options {
        bool force;
        moat_images_use_fn in_use;
        void *userdata;
};

/*
 * docker rmi of one image (text as moat_images_lookup takes it), with
 * docker's rules:
 *  - by reference: the reference is untagged (refused when it is the
 *    image's only name and a container uses the image, unless force:
 *    "conflict: unable to remove repository reference ..."); the image is
 *    deleted when no name is left, unless a container uses it (force does
 *    not override a running one: then it stays as an untagged entry);
 *  - by ID: an image with one name loses it; with several names it is
 *    refused unless force ("conflict: unable to delete <id> (must be forced)
 *    - image is referenced in multiple repositories"), with force all go; a
 *    running container's image is never deleted, a stopped one's only with
 *    force.
 * Conflicts are -EBUSY with docker's message. Deleting removes the image's
 * entries and collects (moat_images_gc); report (appended to, may hold
 * earlier items) gets "Untagged" items, "Deleted" for the ID and for the
 * ChainID of each layer whose blob went, top layer first.
 */
MOAT_NODISCARD int moat_images_remove(struct moat_store *s, const char *text,
                                      const struct moat_images_remove_options *opts,
                                      struct moat_images_delete_report *report, struct moat_error **reterr);

struct moat_images_prune_options {
        bool all;   /* every unused image, not only the dangling (untagged) ones */
        moat_images_use_fn in_use;
        void *userdata;
};

/*
 * docker image prune: delete every dangling image (no name) no container
 * uses; with all, every image no container uses (its names untagged
 * first). Then collect unreferenced blobs and layer trees, whatever was
 * deleted; report->reclaimed counts every blob byte removed.
 */
MOAT_NODISCARD int moat_images_prune(struct moat_store *s, const struct moat_images_prune_options *opts,
                                     struct moat_images_delete_report *report, struct moat_error **reterr);

struct moat_images_verify_issue {
        const char *subject;        /* a blob's digest, or "layers/<name>" */
        const char *problem;        /* what is wrong */
        const char *referenced_by;  /* the names and documents reaching it, or NULL */
};
typedef void (*moat_images_verify_fn)(const struct moat_images_verify_issue *issue, void *userdata);

struct moat_images_verify_result {
        size_t blobs;         /* blobs re-hashed */
        uint64_t bytes;       /* their bytes */
        size_t layer_trees;   /* trees under layers/ checked */
        size_t problems;
};

/*
 * Check the whole store: every blob re-hashed (moat_store_verify); every
 * blob an entry reaches present and parsable (the manifests of an index for
 * other platforms may be absent, as a docker save of one platform leaves
 * them); every tree under layers/ named by a ChainID of an image present
 * (temp trees of unpackers are gc's business and skipped). Holds images.lock
 * and layers.lock shared. Returns the number of problems, each reported.
 */
MOAT_NODISCARD int moat_images_verify(struct moat_store *s, moat_images_verify_fn report, void *userdata,
                                      struct moat_images_verify_result *ret, struct moat_error **reterr);
