/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The content-addressable image store: an OCI image layout on disk
 * (oci-layout, index.json, blobs/sha256/<hex>) that can be copied out as
 * it is. Blobs are written through a verifying ingest (temp file, SHA-256
 * while writing, fsync, rename); a blob whose digest does not match is
 * rejected and removed. Several processes may use one store (file locks);
 * after a crash at any point the store is consistent (half-written blobs
 * are discarded on the next open).
 *
 * Knows nothing of registries or containers: the registry client will
 * write through moat_store_ingest_*, the engine reads blobs by digest.
 */

#include "base/compat.h"
#include "base/error.h"

struct moat_store;
struct moat_ingest;

/* "sha256:<64 hex>" is the only digest algorithm accepted. */
#define MOAT_DIGEST_MAX 80

/* Open (creating when asked) the store rooted at path. */
MOAT_NODISCARD int moat_store_open(const char *path, bool create, struct moat_store **ret,
                                   struct moat_error **reterr);
void moat_store_free(struct moat_store *s);
static inline void moat_store_freep(struct moat_store **s)
{
        moat_store_free(*s);
        *s = NULL;
}
#define _cleanup_store_ __attribute__((cleanup(moat_store_freep)))

/* Check a digest string: "sha256:" and 64 lower-case hex digits. */
MOAT_NODISCARD int moat_digest_validate(const char *digest, struct moat_error **reterr);

/*
 * Ingest: begin (expected digest may be NULL when unknown, expected size
 * -1 when unknown), write any number of chunks, then commit (verifies the
 * digest and size, fsyncs, renames into blobs/sha256/) or abort. Commit
 * sets *ret_digest to the blob's digest. A mismatch is -EBADMSG naming
 * both digests, and leaves nothing behind. Commit (whatever its result)
 * and abort both free the ingest.
 */
MOAT_NODISCARD int moat_store_ingest_begin(struct moat_store *s, const char *expected_digest, int64_t expected_size,
                                           struct moat_ingest **ret, struct moat_error **reterr);
MOAT_NODISCARD int moat_ingest_write(struct moat_ingest *in, const void *buf, size_t len, struct moat_error **reterr);
MOAT_NODISCARD int moat_ingest_commit(struct moat_ingest *in, char **ret_digest, struct moat_error **reterr);
void moat_ingest_abort(struct moat_ingest *in);

/* Convenience: ingest a whole buffer. */
MOAT_NODISCARD int moat_store_put(struct moat_store *s, const void *buf, size_t len, const char *expected_digest,
                                  char **ret_digest, struct moat_error **reterr);

/* Open a blob for reading (O_RDONLY|O_CLOEXEC); -ENOENT when absent. With
 * verify, the content is re-hashed first and a corrupt blob is -EBADMSG. */
MOAT_NODISCARD int moat_store_open_blob(struct moat_store *s, const char *digest, bool verify, int *ret_fd,
                                        struct moat_error **reterr);

/* Read a whole blob (bounded by max). */
MOAT_NODISCARD int moat_store_read_blob(struct moat_store *s, const char *digest, size_t max, char **ret,
                                        size_t *ret_size, struct moat_error **reterr);

MOAT_NODISCARD int moat_store_has_blob(struct moat_store *s, const char *digest);

struct moat_store_verify_result {
        size_t blobs;     /* files looked at in blobs/sha256 */
        uint64_t bytes;   /* bytes re-hashed */
};

/* Re-hash every blob; report(digest, problem) for each corrupt one (content
 * that does not hash to its name, a file that is not a regular file, a
 * name that is not a digest). Returns the number of corrupt blobs (>= 0) or
 * -errno; ret (may be NULL) gets what was checked. */
MOAT_NODISCARD int moat_store_verify(struct moat_store *s, void (*report)(const char *digest, const char *problem,
                                                                           void *userdata),
                                     void *userdata, struct moat_store_verify_result *ret,
                                     struct moat_error **reterr);

/* Remove a blob (garbage collection decides which). */
MOAT_NODISCARD int moat_store_remove_blob(struct moat_store *s, const char *digest, struct moat_error **reterr);

/* The store's directory fd (for callers that add trees next to blobs). */
int moat_store_dir_fd(const struct moat_store *s);
