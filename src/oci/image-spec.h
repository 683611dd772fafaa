/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The OCI image-spec v1.1 documents (and their Docker schema 2 twins) as C
 * types, and their parser: image manifest, image index / manifest list,
 * image config, and the content descriptors that link them.
 *
 * One entry point, oci_image_doc_parse(), detects the document by its
 * mediaType (the document's own field, else the media type the caller got
 * from the referring descriptor or Content-Type, else its shape) and checks
 * every field moat uses against the schema, reporting the first problem with
 * its JSON path ("layers[3].digest: unsupported digest algorithm ...").
 * Unknown fields are ignored, as the spec requires. Everything is bounded:
 * document size, layers, index entries and string lengths.
 *
 * Digests: moat handles "sha256:" + 64 lowercase hex only; any other
 * algorithm is refused with an error that says so.
 *
 * Ownership: everything hangs off struct oci_image_doc and is released by
 * oci_image_doc_free(). String arrays are NULL-terminated.
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h" /* struct oci_key_value */

#include <jansson.h>

#define OCI_IMAGE_DOC_MAX_SIZE (4u * 1024u * 1024u)
#define OCI_IMAGE_LAYERS_MAX 1024u
#define OCI_IMAGE_MANIFESTS_MAX 4096u
#define OCI_IMAGE_STRING_MAX (64u * 1024u)

#define OCI_MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MT_EMPTY "application/vnd.oci.empty.v1+json"
#define OCI_MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define OCI_MT_LAYER_TAR_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MT_LAYER_TAR_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define OCI_MT_LAYER_ND_TAR "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define OCI_MT_LAYER_ND_TAR_GZIP "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define OCI_MT_LAYER_ND_TAR_ZSTD "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#define DOCKER_MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_MT_MANIFEST_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define DOCKER_MT_LAYER_TAR_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define DOCKER_MT_LAYER_FOREIGN_TAR_GZIP "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

/* "sha256:" + 64 hex + NUL */
#define OCI_DIGEST_STRING_SIZE 72

enum oci_compression {
        OCI_COMPRESSION_NONE,
        OCI_COMPRESSION_GZIP,
        OCI_COMPRESSION_ZSTD,
};

/* What a layer media type means: returns 0 and fills the compression and
 * whether the layer is non-distributable (foreign), or -EINVAL when the
 * media type is not a layer type moat can unpack. */
MOAT_NODISCARD int oci_layer_media_type(const char *media_type, enum oci_compression *ret_compression,
                                        bool *ret_nondistributable);

/* 0 when s is "sha256:" + 64 lowercase hex; otherwise -EINVAL and a message
 * (without a path) saying what is wrong. */
MOAT_NODISCARD int oci_digest_validate(const char *s, struct moat_error **reterr);

struct oci_platform {
        char *architecture;
        char *os;
        char *os_version;   /* optional */
        char **os_features; /* optional */
        char *variant;      /* optional */
};

struct oci_descriptor {
        char *media_type;
        char *digest;
        int64_t size;
        char **urls;         /* optional */
        struct oci_key_value *annotations;
        size_t n_annotations;
        bool has_platform;
        struct oci_platform platform;
        char *artifact_type; /* optional */
};

enum oci_image_doc_kind {
        OCI_DOC_MANIFEST,
        OCI_DOC_INDEX,
        OCI_DOC_CONFIG,
};

struct oci_manifest {
        bool docker;               /* Docker schema 2 rather than OCI */
        bool artifact;             /* config is not an image config: layers are not checked as layers */
        char *artifact_type;       /* optional */
        struct oci_descriptor config;
        struct oci_descriptor *layers;
        size_t n_layers;
        struct oci_descriptor *subject; /* optional */
        struct oci_key_value *annotations;
        size_t n_annotations;
};

struct oci_index {
        bool docker;               /* Docker manifest list rather than OCI */
        char *artifact_type;       /* optional */
        struct oci_descriptor *manifests;
        size_t n_manifests;
        struct oci_descriptor *subject; /* optional */
        struct oci_key_value *annotations;
        size_t n_annotations;
};

struct oci_image_exec_config {
        char *user;
        char **exposed_ports;       /* the keys of ExposedPorts: "80/tcp" */
        char **env;
        char **entrypoint;
        bool has_entrypoint;
        char **cmd;
        bool has_cmd;
        char **volumes;             /* the keys of Volumes */
        char *working_dir;
        struct oci_key_value *labels;
        size_t n_labels;
        char *stop_signal;
        bool args_escaped;
        json_t *healthcheck;        /* borrowed from the document; type-checked as an object */
};

struct oci_history {
        char *created;
        char *created_by;
        char *author;
        char *comment;
        bool empty_layer;
};

struct oci_image_config {
        char *architecture;
        char *os;
        char *os_version;     /* optional */
        char **os_features;   /* optional */
        char *variant;        /* optional */
        char *created;        /* optional */
        char *author;         /* optional */
        bool has_config;
        struct oci_image_exec_config config;
        char **diff_ids;      /* rootfs.diff_ids, validated digests */
        size_t n_diff_ids;
        struct oci_history *history;
        size_t n_history;
};

struct oci_image_doc {
        enum oci_image_doc_kind kind;
        char *media_type;     /* the media type it was parsed as */
        struct oci_manifest manifest; /* when kind == OCI_DOC_MANIFEST */
        struct oci_index index;       /* when kind == OCI_DOC_INDEX */
        struct oci_image_config config; /* when kind == OCI_DOC_CONFIG */
        json_t *json;         /* the whole document, owned */
};

/* Parse a manifest, index or config held in memory. media_type is what the
 * caller was told the document is (descriptor mediaType, HTTP
 * Content-Type), or NULL; a document whose own mediaType disagrees with it
 * is refused. Configs carry no mediaType of their own, so they are found by
 * media_type or, without one, by their "rootfs" member. Returns -EINVAL,
 * -EFBIG, -EPROTONOSUPPORT (known but unsupported type, e.g. Docker schema 1)
 * or -ENOMEM with *reterr naming the JSON path. */
MOAT_NODISCARD int oci_image_doc_parse(const char *buf, size_t len, const char *media_type,
                                       struct oci_image_doc **ret, struct moat_error **reterr);

/* Typed views: NULL when the document is of another kind. */
const struct oci_manifest *oci_image_doc_manifest(const struct oci_image_doc *d);
const struct oci_index *oci_image_doc_index(const struct oci_image_doc *d);
const struct oci_image_config *oci_image_doc_config(const struct oci_image_doc *d);

void oci_image_doc_free(struct oci_image_doc *d);
static inline void oci_image_doc_freep(struct oci_image_doc **d)
{
        oci_image_doc_free(*d);
        *d = NULL;
}
#define _cleanup_oci_image_doc_ __attribute__((cleanup(oci_image_doc_freep)))

/* Annotation / label lookup; NULL when absent. */
const char *oci_key_value_find(const struct oci_key_value *kv, size_t n, const char *key);

/* Pick the best manifest of an index for a platform. os/arch default to
 * linux/amd64 when NULL; Go and uname spellings are accepted (x86_64,
 * aarch64, armhf...). Variants match like containerd: arm64 means arm64/v8,
 * arm means arm/v7, and a CPU runs lower variants of its architecture (and
 * arm64 falls back to 32-bit arm) when nothing better is there. Entries
 * without a platform are never picked. On no match returns -ENOENT with a
 * message listing the platforms the index offers. */
MOAT_NODISCARD int oci_index_select(const struct oci_index *index, const char *os, const char *arch,
                                    const char *variant, const struct oci_descriptor **ret,
                                    struct moat_error **reterr);

/* ChainIDs of a layer stack: ChainID(L0) = DiffID(L0), ChainID(Ln) =
 * sha256(ChainID(Ln-1) + " " + DiffID(Ln)). Returns a NULL-terminated array
 * of n strings. Each diff_id must be a valid sha256 digest. */
MOAT_NODISCARD int oci_chain_ids(char *const *diff_ids, size_t n, char ***ret, struct moat_error **reterr);
