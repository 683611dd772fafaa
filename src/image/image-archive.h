/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Image archives in and out of the store: `docker save` tarballs (the
 * legacy form of dockerd 20.10 with manifest.json and <dir>/layer.tar, and
 * the OCI layout form of docker 25+), OCI layout tarballs (oci-archive) and
 * OCI layout directories (skopeo's oci:).
 *
 * Loading only puts blobs into the store and says which images it found
 * (reference text as the archive names it, or NULL, and the descriptor of
 * the manifest or index); tagging them is the caller's business.
 *
 * A failed load may leave behind blobs it had already verified and
 * committed (they are content-addressed and valid; garbage collection
 * decides about unreferenced ones). A blob that fails verification is
 * never committed.
 */

#include "base/compat.h"
#include "base/error.h"
#include "image/store.h"

/* Bounds on what an archive may hold. */
#define MOAT_ARCHIVE_ENTRIES_MAX 100000u
#define MOAT_ARCHIVE_JSON_MAX (4u * 1024u * 1024u)
#define MOAT_ARCHIVE_MEMBER_MAX (INT64_C(64) * 1024 * 1024 * 1024)
#define MOAT_ARCHIVE_IMAGES_MAX 4096u

struct moat_archive_image {
        char *ref;        /* reference text from the archive, or NULL */
        char *digest;     /* the manifest's or index's digest */
        char *media_type; /* its media type */
        int64_t size;     /* its size */
};

struct moat_archive_result {
        struct moat_archive_image *images;
        size_t n_images;
};

void moat_archive_result_free(struct moat_archive_result *r);
static inline void moat_archive_result_freep(struct moat_archive_result **r)
{
        moat_archive_result_free(*r);
        *r = NULL;
}
#define _cleanup_archive_result_ __attribute__((cleanup(moat_archive_result_freep)))

/* What a blob of the archive is, judged by its first bytes (documents are
 * JSON and start with '{'; layers are tar, gzip or zstd). */
enum moat_archive_blob_kind {
        MOAT_ARCHIVE_BLOB_DOCUMENT,
        MOAT_ARCHIVE_BLOB_LAYER,
};

struct moat_archive_progress {
        const char *member;       /* the archive member's name */
        const char *digest;       /* the digest its name carries, NULL when computed (legacy layer.tar) */
        enum moat_archive_blob_kind kind;
        uint64_t current;         /* bytes read so far */
        int64_t total;            /* the member's size, -1 when the archive does not say */
        bool done;                /* the blob is verified and committed */
};

struct moat_archive_load_options {
        /* Called for each blob as it is read: once after its first bytes,
         * then every 512 KiB at most, and once when it is committed (done).
         * Not called for a blob that fails. May be NULL. */
        void (*progress)(const struct moat_archive_progress *p, void *userdata);
        void *userdata;
};

/* Load a tar stream (uncompressed, gzip or zstd) read from fd; opts may be NULL. */
MOAT_NODISCARD int moat_archive_load(struct moat_store *s, int fd, const struct moat_archive_load_options *opts,
                                     struct moat_archive_result **ret, struct moat_error **reterr);

/* Load an OCI image layout directory (oci-layout, index.json, blobs/). */
MOAT_NODISCARD int moat_archive_load_layout_dir(struct moat_store *s, int dir_fd, struct moat_archive_result **ret,
                                                struct moat_error **reterr);

enum moat_archive_format {
        MOAT_ARCHIVE_OCI,    /* OCI layout tarball */
        MOAT_ARCHIVE_DOCKER, /* the same plus docker's manifest.json (docker load) */
};

struct moat_archive_save_image {
        const char *ref;    /* written as the ref name annotation and RepoTag; may be NULL */
        const char *digest; /* a manifest (or index) in the store */
};

/* Write an uncompressed tar to out_fd holding the blobs reachable from the
 * given manifests (for an index: the index and those of its manifests the
 * store has, with their blobs). */
MOAT_NODISCARD int moat_archive_save(struct moat_store *s, const struct moat_archive_save_image *images, size_t n,
                                     int out_fd, enum moat_archive_format format, struct moat_error **reterr);
