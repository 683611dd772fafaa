/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * `docker import`: a root filesystem tarball becomes a one-layer image in
 * the store (store.h). The layer blob is the uncompressed tar exactly as
 * given (the input may be plain, gzip, bzip2, xz or zstd, as docker
 * accepts), stored as application/vnd.oci.image.layer.v1.tar, so its
 * digest is its DiffID. On top come an OCI image config (created now, the
 * host's or the asked platform, one history entry whose comment is the
 * message, default "Imported from -" as docker writes for a file) and an
 * OCI image manifest, all through the store's verifying ingest.
 *
 * Tagging is the caller's business (images.h).
 */

#include <jansson.h>

#include "base/compat.h"
#include "base/error.h"
#include "image/store.h"
#include "oci/image-spec.h"

/* Bounds on what is imported and on the changes. */
#define MOAT_IMPORT_ENTRIES_MAX INT64_C(1000000)
#define MOAT_IMPORT_BYTES_MAX (INT64_C(64) * 1024 * 1024 * 1024)
#define MOAT_IMPORT_CHANGES_MAX 1024u
#define MOAT_IMPORT_CHANGE_LEN_MAX (64u * 1024u)
#define MOAT_IMPORT_MESSAGE_MAX (64u * 1024u)
#define MOAT_IMPORT_PORTS_MAX 65536u

#define MOAT_IMPORT_DEFAULT_MESSAGE "Imported from -"

struct moat_import_options {
        char *const *changes;   /* Dockerfile instructions (docker import --change) */
        size_t n_changes;
        const char *message;    /* history comment; NULL: MOAT_IMPORT_DEFAULT_MESSAGE */
        const char *platform;   /* "os/arch[/variant]"; NULL: the host's */
        int64_t max_entries;    /* 0: MOAT_IMPORT_ENTRIES_MAX */
        int64_t max_bytes;      /* uncompressed; 0: MOAT_IMPORT_BYTES_MAX */
};

struct moat_import_result {
        struct oci_descriptor manifest; /* media_type, digest, size (owned) */
        char *id;                       /* the config digest: the image ID */
        char *layer_digest;             /* == the DiffID */
        int64_t layer_size;
        uint64_t entries;               /* tar entries seen */
};

void moat_import_result_free(struct moat_import_result *r);
static inline void moat_import_result_freep(struct moat_import_result **r)
{
        moat_import_result_free(*r);
        *r = NULL;
}
#define _cleanup_import_result_ __attribute__((cleanup(moat_import_result_freep)))

/*
 * Import the tarball read from in_fd. The changes and the platform are
 * checked before anything is read. The tar is read through libarchive to
 * the end (every header parsed, entry count and bytes bounded); input that
 * is not a tar is -EINVAL ("not a tar archive: ..."). On failure the layer
 * being written is discarded; blobs already committed stay (they are
 * content-addressed and garbage collection decides about them).
 */
MOAT_NODISCARD int moat_import_rootfs(struct moat_store *s, int in_fd, const struct moat_import_options *opts,
                                      struct moat_import_result **ret, struct moat_error **reterr);

/*
 * Apply Dockerfile instructions (docker import/commit --change) to the
 * "config" object of an image config (keys Env, Cmd, Entrypoint,
 * ExposedPorts, Labels, User, Volumes, WorkingDir, StopSignal). Allowed:
 * CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL;
 * ONBUILD and HEALTHCHECK are refused as not supported; anything else, or
 * a malformed argument, is -EINVAL naming the instruction. A change may
 * hold several lines (comments, "\" continuations) like a Dockerfile.
 * config is left unchanged on failure.
 */
MOAT_NODISCARD int moat_import_apply_changes(json_t *config, char *const *changes, size_t n,
                                             struct moat_error **reterr);

/* Parse "os/arch[/variant]" (NULL: the host) into docker's normalised
 * platform (arm64/v8 -> arm64, arm -> arm/v7, x86_64 -> amd64). Only
 * linux is accepted. Fills architecture, os and variant (maybe NULL). */
MOAT_NODISCARD int moat_import_platform(const char *text, struct oci_platform *ret, struct moat_error **reterr);
