/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The content-addressable blob store, laid out as an OCI image layout
 * (oci-layout, index.json, blobs/sha256/<hex>) plus moat's own ingest/
 * directory for blobs being written and a lock file.
 *
 * Why it is built this way:
 *  - Every write goes to its own temp file in ingest/ while SHA-256 is
 *    computed (nettle); commit checks digest and size, fsyncs the file,
 *    renames it into blobs/sha256/ and fsyncs that directory. A blob name
 *    therefore always names complete, verified content, and two writers of
 *    the same blob simply rename identical files over each other.
 *  - Locks: each open store holds a shared flock on <root>/lock; each temp
 *    file is flocked by its writer. On open, leftover temp files (of a
 *    crashed writer) are removed: all of them when the exclusive store lock
 *    can be had (nobody else has the store open), otherwise only those whose
 *    own lock is free. So a crash at any point leaves, at worst, a temp
 *    file that the next open removes.
 */

#include "image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"

#define SHA256_HEX_LEN 64
#define TMP_PREFIX "tmp-"
#define OCI_LAYOUT_CONTENT "{\"imageLayoutVersion\":\"1.0.0\"}"
#define INDEX_CONTENT "{\"schemaVersion\":2,\"manifests\":[]}"
#define HASH_CHUNK (128 * 1024)

struct moat_store {
        char *path;
        int dir_fd;
        int lock_fd;
        int blobs_fd;  /* blobs/sha256 */
        int ingest_fd; /* ingest */
};

struct moat_ingest {
        struct moat_store *store;
        int fd;
        char *tmp_name;
        struct sha256_ctx ctx;
        uint64_t written;
        int64_t expected_size;
        char *expected_digest;
        bool failed;
};

static bool is_hex_digest(const char *hex)
{
        if (strlen(hex) != SHA256_HEX_LEN)
                return false;
        for (const char *p = hex; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int moat_digest_validate(const char *digest, struct moat_error **reterr)
{
        if (!digest)
                return moat_error_setx(reterr, -EINVAL, "missing digest");
        if (!startswith(digest, "sha256:"))
                return moat_error_setx(reterr, -EINVAL, "invalid digest \"%.100s\": only sha256 is supported",
                                       digest);
        if (!is_hex_digest(digest + strlen("sha256:")))
                return moat_error_setx(reterr, -EINVAL,
                                       "invalid digest \"%.100s\": expected \"sha256:\" and 64 lower-case hex digits",
                                       digest);
        return 0;
}

static void sha256_hex(struct sha256_ctx *ctx, char out[SHA256_HEX_LEN + 1])
{
        static const char hexd[] = "0123456789abcdef";
        uint8_t d[SHA256_DIGEST_SIZE];

        sha256_digest(ctx, sizeof(d), d);
        for (size_t i = 0; i < sizeof(d); i++) {
                out[2 * i] = hexd[d[i] >> 4];
                out[2 * i + 1] = hexd[d[i] & 0xf];
        }
        out[SHA256_HEX_LEN] = '\0';
}

/* Hash an fd from its start to EOF (pread: the offset is left alone). */
static int hash_fd(int fd, char out[SHA256_HEX_LEN + 1])
{
        _cleanup_free_ uint8_t *buf = malloc(HASH_CHUNK);
        struct sha256_ctx ctx;
        off_t off = 0;

        if (!buf)
                return -ENOMEM;
        sha256_init(&ctx);
        for (;;) {
                ssize_t n = pread(fd, buf, HASH_CHUNK, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                sha256_update(&ctx, (size_t) n, buf);
                off += n;
        }
        sha256_hex(&ctx, out);
        return 0;
}

/* A new temp file in ingest/, flocked by us (so cleanup leaves it alone). */
static int tmp_create(struct moat_store *s, char **ret_name)
{
        for (unsigned attempt = 0; attempt < 16; attempt++) {
                _cleanup_free_ char *name = NULL;
                _cleanup_close_ int fd = -EBADF;
                uint64_t nonce;
                struct stat st;

                if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
                        return negative_errno();
                if (asprintf(&name, TMP_PREFIX "%d-%016" PRIx64, (int) getpid(), nonce) < 0)
                        return -ENOMEM;
                fd = openat(s->ingest_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
                if (fd < 0) {
                        if (errno == EEXIST)
                                continue;
                        return negative_errno();
                }
                if (flock(fd, LOCK_EX) < 0)
                        return negative_errno();
                /* A concurrent cleanup may have removed it before we locked it. */
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                if (st.st_nlink == 0)
                        continue;
                *ret_name = TAKE_PTR(name);
                return TAKE_FD(fd);
        }
        return -EEXIST;
}

/* Remove temp files whose writer is gone. With all == true the caller holds
 * the exclusive store lock and every temp file is a leftover. */
static int ingest_cleanup(struct moat_store *s, bool all, struct moat_error **reterr)
{
        _cleanup_closedir_ DIR *d = NULL;
        int fd = openat(s->ingest_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *de;

        if (fd < 0)
                return moat_error_set(reterr, errno, "%s/ingest", s->path);
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return moat_error_set(reterr, errno, "%s/ingest", s->path);
        }
        while ((errno = 0, de = readdir(d))) {
                _cleanup_close_ int tfd = -EBADF;
                struct stat a, b;

                if (!startswith(de->d_name, TMP_PREFIX))
                        continue;
                if (!all) {
                        tfd = openat(s->ingest_fd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                        if (tfd < 0)
                                continue;
                        if (flock(tfd, LOCK_EX | LOCK_NB) < 0)
                                continue; /* a live writer */
                        if (fstat(tfd, &a) < 0 || fstatat(s->ingest_fd, de->d_name, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
                            a.st_ino != b.st_ino || a.st_dev != b.st_dev)
                                continue;
                }
                if (unlinkat(s->ingest_fd, de->d_name, 0) < 0 && errno != ENOENT)
                        return moat_error_set(reterr, errno, "removing leftover %s/ingest/%s", s->path, de->d_name);
        }
        if (errno != 0)
                return moat_error_set(reterr, errno, "reading %s/ingest", s->path);
        return 0;
}

/* Create dir_fd/name with content unless it exists (never replaces). */
static int create_file_noreplace(struct moat_store *s, const char *name, const char *content,
                                 struct moat_error **reterr)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (faccessat(s->dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        fd = tmp_create(s, &tmp);
        if (fd < 0)
                return moat_error_set(reterr, fd, "creating a temp file in %s/ingest", s->path);
        r = write_all(fd, content, strlen(content));
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && renameat2(s->ingest_fd, tmp, s->dir_fd, name, RENAME_NOREPLACE) < 0 && errno != EEXIST)
                r = negative_errno();
        if (unlinkat(s->ingest_fd, tmp, 0) < 0 && errno != ENOENT && r >= 0)
                r = negative_errno();
        if (r < 0)
                return moat_error_set(reterr, r, "creating %s/%s", s->path, name);
        return 0;
}

static int mkdirat_p(int dfd, const char *name, bool create)
{
        if (create && mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

int moat_store_open(const char *path, bool create, struct moat_store **ret, struct moat_error **reterr)
{
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_free_ char *layout = NULL;
        size_t layout_size;
        bool exclusive;
        int r;

        if (strempty(path))
                return moat_error_setx(reterr, -EINVAL, "empty store path");
        if (create && mkdir(path, 0700) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "creating store %s", path);

        s = calloc(1, sizeof(*s));
        if (!s)
                return moat_error_set(reterr, -ENOMEM, "store");
        s->dir_fd = s->lock_fd = s->blobs_fd = s->ingest_fd = -EBADF;
        s->path = strdup(path);
        if (!s->path)
                return moat_error_set(reterr, -ENOMEM, "store");

        s->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0)
                return moat_error_set(reterr, errno, "opening store %s", path);
        if (!create && faccessat(s->dir_fd, "oci-layout", F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                return moat_error_set(reterr, errno, "%s is not an image store (no oci-layout)", path);

        s->lock_fd = openat(s->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (s->lock_fd < 0)
                return moat_error_set(reterr, errno, "opening %s/lock", path);
        exclusive = flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0;
        if (!exclusive && flock(s->lock_fd, LOCK_SH) < 0)
                return moat_error_set(reterr, errno, "locking %s/lock", path);

        if ((r = mkdirat_p(s->dir_fd, "blobs", create)) < 0 ||
            (r = mkdirat_p(s->dir_fd, "blobs/sha256", create)) < 0 ||
            (r = mkdirat_p(s->dir_fd, "ingest", create)) < 0)
                return moat_error_set(reterr, r, "creating the directories of store %s", path);
        s->blobs_fd = openat(s->dir_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (s->blobs_fd < 0)
                return moat_error_set(reterr, errno, "opening %s/blobs/sha256", path);
        s->ingest_fd = openat(s->dir_fd, "ingest", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (s->ingest_fd < 0)
                return moat_error_set(reterr, errno, "opening %s/ingest", path);

        r = ingest_cleanup(s, exclusive, reterr);
        if (r < 0)
                return r;
        if (exclusive && flock(s->lock_fd, LOCK_SH) < 0)
                return moat_error_set(reterr, errno, "locking %s/lock", path);

        if (create) {
                r = create_file_noreplace(s, "oci-layout", OCI_LAYOUT_CONTENT, reterr);
                if (r < 0)
                        return r;
                r = create_file_noreplace(s, "index.json", INDEX_CONTENT, reterr);
                if (r < 0)
                        return r;
                if (fsync(s->dir_fd) < 0)
                        return moat_error_set(reterr, errno, "fsync %s", path);
        }

        r = read_full_file_at(s->dir_fd, "oci-layout", 4096, &layout, &layout_size);
        if (r < 0)
                return moat_error_set(reterr, r, "reading %s/oci-layout", path);
        if (!strstr(layout, "\"imageLayoutVersion\""))
                return moat_error_setx(reterr, -EINVAL, "%s/oci-layout has no imageLayoutVersion", path);

        *ret = TAKE_PTR(s);
        return 0;
}

void moat_store_free(struct moat_store *s)
{
        if (!s)
                return;
        safe_close(s->ingest_fd);
        safe_close(s->blobs_fd);
        safe_close(s->lock_fd);
        safe_close(s->dir_fd);
        free(s->path);
        free(s);
}

int moat_store_dir_fd(const struct moat_store *s)
{
        return s->dir_fd;
}

void moat_ingest_abort(struct moat_ingest *in)
{
        if (!in)
                return;
        if (in->fd >= 0 && in->tmp_name)
                (void) unlinkat(in->store->ingest_fd, in->tmp_name, 0);
        safe_close(in->fd);
        free(in->tmp_name);
        free(in->expected_digest);
        free(in);
}

static inline void moat_ingest_abortp(struct moat_ingest **in)
{
        moat_ingest_abort(*in);
        *in = NULL;
}

int moat_store_ingest_begin(struct moat_store *s, const char *expected_digest, int64_t expected_size,
                            struct moat_ingest **ret, struct moat_error **reterr)
{
        _cleanup_(moat_ingest_abortp) struct moat_ingest *in = NULL;
        int r;

        if (expected_digest) {
                r = moat_digest_validate(expected_digest, reterr);
                if (r < 0)
                        return r;
        }
        if (expected_size < -1)
                return moat_error_setx(reterr, -EINVAL, "invalid expected blob size %" PRId64, expected_size);

        in = calloc(1, sizeof(*in));
        if (!in)
                return moat_error_set(reterr, -ENOMEM, "ingest");
        in->store = s;
        in->fd = -EBADF;
        in->expected_size = expected_size;
        if (expected_digest) {
                in->expected_digest = strdup(expected_digest);
                if (!in->expected_digest)
                        return moat_error_set(reterr, -ENOMEM, "ingest");
        }
        sha256_init(&in->ctx);
        r = tmp_create(s, &in->tmp_name);
        if (r < 0)
                return moat_error_set(reterr, r, "creating a temp file in %s/ingest", s->path);
        in->fd = r;

        *ret = TAKE_PTR(in);
        return 0;
}

int moat_ingest_write(struct moat_ingest *in, const void *buf, size_t len, struct moat_error **reterr)
{
        int r;

        if (in->failed)
                return moat_error_setx(reterr, -EINVAL, "ingest already failed");
        if (in->expected_size >= 0 && (uint64_t) in->expected_size - in->written < len) {
                in->failed = true;
                return moat_error_setx(reterr, -EFBIG, "blob is larger than its expected size of %" PRId64 " bytes",
                                       in->expected_size);
        }
        r = write_all(in->fd, buf, len);
        if (r < 0) {
                in->failed = true;
                return moat_error_set(reterr, r, "writing %s/ingest/%s", in->store->path, in->tmp_name);
        }
        sha256_update(&in->ctx, len, buf);
        in->written += len;
        return 0;
}

int moat_ingest_commit(struct moat_ingest *ingest, char **ret_digest, struct moat_error **reterr)
{
        /* Commit always consumes the ingest; on failure the temp file goes. */
        _cleanup_(moat_ingest_abortp) struct moat_ingest *in = ingest;
        struct moat_store *s = in->store;
        char hex[SHA256_HEX_LEN + 1];
        _cleanup_free_ char *digest = NULL;

        if (in->failed)
                return moat_error_setx(reterr, -EINVAL, "cannot commit a failed ingest");
        sha256_hex(&in->ctx, hex);
        if (asprintf(&digest, "sha256:%s", hex) < 0) {
                digest = NULL;
                return moat_error_set(reterr, -ENOMEM, "ingest");
        }
        if (in->expected_size >= 0 && in->written != (uint64_t) in->expected_size)
                return moat_error_setx(reterr, -EBADMSG, "blob size mismatch: expected %" PRId64 " bytes, got %" PRIu64,
                                       in->expected_size, in->written);
        if (in->expected_digest && !streq(in->expected_digest, digest))
                return moat_error_setx(reterr, -EBADMSG, "blob digest mismatch: expected %s, got %s",
                                       in->expected_digest, digest);

        if (fchmod(in->fd, 0444) < 0)
                return moat_error_set(reterr, errno, "chmod %s/ingest/%s", s->path, in->tmp_name);
        if (fsync(in->fd) < 0)
                return moat_error_set(reterr, errno, "fsync %s/ingest/%s", s->path, in->tmp_name);
        if (renameat(s->ingest_fd, in->tmp_name, s->blobs_fd, hex) < 0)
                return moat_error_set(reterr, errno, "renaming %s/ingest/%s to blobs/sha256/%s", s->path,
                                      in->tmp_name, hex);
        /* Renamed: nothing left to remove. */
        free(in->tmp_name);
        in->tmp_name = NULL;
        if (fsync(s->blobs_fd) < 0)
                return moat_error_set(reterr, errno, "fsync %s/blobs/sha256", s->path);

        if (ret_digest)
                *ret_digest = TAKE_PTR(digest);
        return 0;
}

int moat_store_put(struct moat_store *s, const void *buf, size_t len, const char *expected_digest, char **ret_digest,
                   struct moat_error **reterr)
{
        struct moat_ingest *in = NULL;
        int r;

        if (len > INT64_MAX)
                return moat_error_setx(reterr, -EFBIG, "blob too large");
        r = moat_store_ingest_begin(s, expected_digest, (int64_t) len, &in, reterr);
        if (r < 0)
                return r;
        r = moat_ingest_write(in, buf, len, reterr);
        if (r < 0) {
                moat_ingest_abort(in);
                return r;
        }
        return moat_ingest_commit(in, ret_digest, reterr);
}

int moat_store_open_blob(struct moat_store *s, const char *digest, bool verify, int *ret_fd,
                         struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        const char *hex;
        int r;

        r = moat_digest_validate(digest, reterr);
        if (r < 0)
                return r;
        hex = digest + strlen("sha256:");
        fd = openat(s->blobs_fd, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return moat_error_set(reterr, errno, "blob %s", digest);
        if (verify) {
                char got[SHA256_HEX_LEN + 1];
                r = hash_fd(fd, got);
                if (r < 0)
                        return moat_error_set(reterr, r, "reading blob %s", digest);
                if (!streq(got, hex))
                        return moat_error_setx(reterr, -EBADMSG, "blob %s is corrupt: content hashes to sha256:%s",
                                               digest, got);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int moat_store_read_blob(struct moat_store *s, const char *digest, size_t max, char **ret, size_t *ret_size,
                         struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct sha256_ctx ctx;
        char got[SHA256_HEX_LEN + 1];
        size_t size;
        int r;

        r = moat_store_open_blob(s, digest, false, &fd, reterr);
        if (r < 0)
                return r;
        r = read_full_fd(fd, max, &buf, &size);
        if (r < 0)
                return moat_error_set(reterr, r, "reading blob %s (at most %zu bytes)", digest, max);
        sha256_init(&ctx);
        sha256_update(&ctx, size, (const uint8_t *) buf);
        sha256_hex(&ctx, got);
        if (!streq(got, digest + strlen("sha256:")))
                return moat_error_setx(reterr, -EBADMSG, "blob %s is corrupt: content hashes to sha256:%s", digest,
                                       got);
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int moat_store_has_blob(struct moat_store *s, const char *digest)
{
        struct stat st;

        if (moat_digest_validate(digest, NULL) < 0)
                return -EINVAL;
        if (fstatat(s->blobs_fd, digest + strlen("sha256:"), &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        return S_ISREG(st.st_mode) ? 1 : 0;
}

int moat_store_verify(struct moat_store *s, void (*report)(const char *digest, const char *problem, void *userdata),
                      void *userdata, struct moat_store_verify_result *ret, struct moat_error **reterr)
{
        struct moat_store_verify_result res = {};
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, bad = 0;

        fd = openat(s->blobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "%s/blobs/sha256", s->path);
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return moat_error_set(reterr, errno, "%s/blobs/sha256", s->path);
        }
        while ((errno = 0, de = readdir(d))) {
                _cleanup_close_ int bfd = -EBADF;
                char name[8 + 256], got[SHA256_HEX_LEN + 1], problem[128];
                struct stat st;
                int r;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                res.blobs++;
                snprintf(name, sizeof(name), "sha256:%s", de->d_name);
                if (!is_hex_digest(de->d_name)) {
                        bad++;
                        if (report)
                                report(name, "file name is not a sha256 hex digest", userdata);
                        continue;
                }
                bfd = openat(s->blobs_fd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                if (bfd < 0 || fstat(bfd, &st) < 0 || !S_ISREG(st.st_mode)) {
                        bad++;
                        if (report)
                                report(name, "not a readable regular file", userdata);
                        continue;
                }
                r = hash_fd(bfd, got);
                if (r < 0)
                        return moat_error_set(reterr, r, "reading %s/blobs/sha256/%s", s->path, de->d_name);
                res.bytes += (uint64_t) st.st_size;
                if (!streq(got, de->d_name)) {
                        bad++;
                        snprintf(problem, sizeof(problem), "content hashes to sha256:%s", got);
                        if (report)
                                report(name, problem, userdata);
                }
        }
        if (errno != 0)
                return moat_error_set(reterr, errno, "reading %s/blobs/sha256", s->path);
        if (ret)
                *ret = res;
        return bad;
}

int moat_store_remove_blob(struct moat_store *s, const char *digest, struct moat_error **reterr)
{
        int r = moat_digest_validate(digest, reterr);

        if (r < 0)
                return r;
        if (unlinkat(s->blobs_fd, digest + strlen("sha256:"), 0) < 0)
                return moat_error_set(reterr, errno, "removing blob %s", digest);
        return 0;
}
