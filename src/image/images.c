/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The image database (see images.h): references in index.json, resolution,
 * garbage collection and the layer-tree cache.
 *
 * Why it is built this way:
 *  - index.json is the only list of references, so the store stays a valid
 *    OCI layout. It is edited as JSON (jansson), keeping every entry and
 *    field moat does not know, and replaced whole (temp, fsync, rename,
 *    fsync of the directory) under an exclusive flock of images.lock, so
 *    two taggers never lose each other's entries. Readers need no lock: a
 *    rename never shows half a file.
 *  - Layer trees are unpacked into a temp directory, checked (compressed
 *    digest against the manifest, DiffID against the config), synced and
 *    renamed with RENAME_NOREPLACE: a tree under its ChainID is therefore
 *    always complete and verified, and of two concurrent unpackers the
 *    loser of the rename just removes its copy. Removal (gc) renames a tree
 *    to a temp name first, so a crash half-way never leaves a partial tree
 *    under a ChainID; temp trees are collected by the next gc, which holds
 *    layers.lock exclusively while unpackers hold it shared.
 *  - GC is mark and sweep: every index.json entry is a root; unreadable or
 *    unparsable documents fail the collection rather than free what they
 *    might reference; missing blobs (a partial pull) are skipped.
 *  - Docker's image model on top of entries: an image's ID is its config
 *    digest, computed by resolving each entry (there is no second
 *    database to drift from index.json); an image without a name is an
 *    entry without the ref name annotation (docker's dangling image, still
 *    a GC root). Removal (rmi, prune) follows docker's daemon
 *    (daemon/images/image_delete.go) rule for rule under one exclusive
 *    images.lock: decide, rewrite index.json once, collect; whether a
 *    container uses an image is asked of the caller (the engine), never
 *    guessed here.
 *  - Resolution (list, lookup, resolve) reads index.json and the manifests
 *    and configs through caches of their parses ("the caches of
 *    resolution" below): a container's create and start resolve its image
 *    by walking every entry. index.json is re-read when its inode, size or
 *    mtime change; documents are content-addressed. Writers, gc and verify
 *    read the files.
 *  - verify re-hashes every blob, walks every entry as gc marks them
 *    (reporting what is missing or unreadable with who references it) and
 *    checks that each layer tree is named by a ChainID of a present image.
 */

#include "image/images.h"
#include "image/images-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/reference.h"
#include "image/snapshot.h"

#define IMAGES_LOCK "images.lock"
/* Layer trees are at most this deep (layer.c bounds paths to 4096 bytes). */
#define RM_MAX_DEPTH 2100u

#define _cleanup_json_ json_auto_t

/* ---- locks ---- */

int moat_images_store_lock(struct moat_store *s, const char *name, int op, int *ret_fd, struct moat_error **reterr)
{
        _cleanup_close_ int fd = openat(moat_store_dir_fd(s), name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0)
                return moat_error_set(reterr, errno, "opening the store's %s", name);
        while (flock(fd, op) < 0) {
                if (errno != EINTR)
                        return moat_error_set(reterr, errno, "locking the store's %s", name);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* ---- references ---- */

static int normalise_reference(const char *text, struct moat_reference *ret_ref, char **ret,
                               struct moat_error **reterr)
{
        struct moat_reference ref = {};
        int r;

        if (!text)
                return moat_error_setx(reterr, -EINVAL, "no reference given");
        r = moat_reference_parse(text, &ref, reterr);
        if (r < 0)
                return r;
        r = moat_reference_format(&ref, ret);
        if (r < 0) {
                moat_reference_clear(&ref);
                return moat_error_set(reterr, r, "formatting reference \"%s\"", text);
        }
        if (ret_ref)
                *ret_ref = ref;
        else
                moat_reference_clear(&ref);
        return 0;
}

static bool is_index_type(const char *mt)
{
        return mt && (streq(mt, OCI_MT_INDEX) || streq(mt, DOCKER_MT_MANIFEST_LIST));
}

static bool is_manifest_type(const char *mt)
{
        return mt && (streq(mt, OCI_MT_MANIFEST) || streq(mt, DOCKER_MT_MANIFEST));
}

/* Read and parse a document blob, checking the descriptor's size (size < 0: unknown). */
static int read_doc_len(struct moat_store *s, const char *digest, int64_t size, const char *media_type,
                        struct oci_image_doc **ret, size_t *ret_len, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        r = moat_store_read_blob(s, digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
        if (r < 0)
                return r;
        if (size >= 0 && (uint64_t) size != len)
                return moat_error_setx(reterr, -EBADMSG, "blob %s is %zu bytes, its descriptor says %lld", digest,
                                       len, (long long) size);
        r = oci_image_doc_parse(buf, len, media_type, ret, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "blob %s", digest);
        if (ret_len)
                *ret_len = len;
        return 0;
}

static int read_doc(struct moat_store *s, const char *digest, int64_t size, const char *media_type,
                    struct oci_image_doc **ret, struct moat_error **reterr)
{
        return read_doc_len(s, digest, size, media_type, ret, NULL, reterr);
}

/* ---- the caches of resolution ---- */

/*
 * Every container create and start resolves its image, which read and
 * parsed index.json and, for every entry, the manifest and the config.
 * Both caches are the process's, under one mutex, and hold parsed
 * documents that nobody modifies:
 *  - documents by (digest, the media type asked for): a blob's content is
 *    its digest, checked when it was read (a later change on disk is
 *    corruption, which verify finds: it reads the disk). A hit still
 *    checks that the blob is in the store asked (a collected or removed
 *    blob is not served). At most DOC_CACHE_MAX documents of at most
 *    DOC_CACHE_BYTES of blob text, least recently used out first; an
 *    image holds its documents (a reference count), so one that goes out
 *    lives until its images are freed.
 *  - index.json, one per store (at most INDEX_CACHE_MAX stores), valid
 *    while the file's (device, inode, size, mtime) are those of the file
 *    read: writers replace it by rename (a new inode), here or in another
 *    process. Only readers use it (list, find, entries); writers, gc and
 *    verify read the file under their lock.
 */
#define DOC_CACHE_MAX 64u
#define DOC_CACHE_BYTES (16u * 1024u * 1024u)
#define INDEX_CACHE_MAX 4u

struct moat_images_doc {
        unsigned refs;          /* the table's while in it, and each holder's */
        char *digest;
        char *media_type;       /* asked for; NULL: none */
        size_t len;             /* of the blob */
        uint64_t used;
        struct oci_image_doc *doc;
};

/* A parse of index.json; its refs (the slot's, each reader's) are counted
 * under the mutex, not with jansson's counts, so that readers on several
 * threads never touch the shared document. */
struct index_doc {
        unsigned refs;
        json_t *root;
};

struct index_slot {
        const struct moat_store *store;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtim;
        uint64_t used;
        struct index_doc *doc;
};

static struct {
        pthread_mutex_t lock;
        uint64_t clock;
        struct moat_images_doc *docs[DOC_CACHE_MAX];
        size_t n_docs;
        size_t doc_bytes;
        struct index_slot index[INDEX_CACHE_MAX];
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void doc_unref_locked(struct moat_images_doc *d)
{
        if (!d || --d->refs > 0)
                return;
        oci_image_doc_free(d->doc);
        free(d->digest);
        free(d->media_type);
        free(d);
}

static void doc_release(struct moat_images_doc *d)
{
        if (!d)
                return;
        pthread_mutex_lock(&cache.lock);
        doc_unref_locked(d);
        pthread_mutex_unlock(&cache.lock);
}

static void doc_releasep(struct moat_images_doc **d)
{
        doc_release(*d);
        *d = NULL;
}
#define _cleanup_doc_ __attribute__((cleanup(doc_releasep)))

static void doc_evict_locked(size_t i)
{
        struct moat_images_doc *d = cache.docs[i];

        cache.docs[i] = cache.docs[--cache.n_docs];
        cache.doc_bytes -= d->len;
        doc_unref_locked(d);
}

static bool same_media_type(const char *a, const char *b)
{
        return a ? b && streq(a, b) : !b;
}

static void doc_insert_locked(struct moat_images_doc *d)
{
        for (size_t i = 0; i < cache.n_docs; i++)
                if (streq(cache.docs[i]->digest, d->digest) && same_media_type(cache.docs[i]->media_type, d->media_type))
                        return; /* another thread's read of it got there first */
        if (d->len > DOC_CACHE_BYTES)
                return;
        while (cache.n_docs > 0 && (cache.n_docs >= DOC_CACHE_MAX || cache.doc_bytes + d->len > DOC_CACHE_BYTES)) {
                size_t oldest = 0;
                for (size_t i = 1; i < cache.n_docs; i++)
                        if (cache.docs[i]->used < cache.docs[oldest]->used)
                                oldest = i;
                doc_evict_locked(oldest);
        }
        d->refs++;
        d->used = ++cache.clock;
        cache.docs[cache.n_docs++] = d;
        cache.doc_bytes += d->len;
}

/* read_doc through the cache: *ret holds the document (doc_release). */
static int read_doc_cached(struct moat_store *s, const char *digest, int64_t size, const char *media_type,
                           struct moat_images_doc **ret, struct moat_error **reterr)
{
        _cleanup_doc_ struct moat_images_doc *d = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        size_t len;
        int r;

        pthread_mutex_lock(&cache.lock);
        for (size_t i = 0; i < cache.n_docs; i++)
                if (streq(cache.docs[i]->digest, digest) && same_media_type(cache.docs[i]->media_type, media_type)) {
                        d = cache.docs[i];
                        d->refs++;
                        d->used = ++cache.clock;
                        break;
                }
        pthread_mutex_unlock(&cache.lock);
        if (d && moat_store_has_blob(s, digest) > 0) {
                if (size >= 0 && (uint64_t) size != d->len)
                        return moat_error_setx(reterr, -EBADMSG, "blob %s is %zu bytes, its descriptor says %lld",
                                               digest, d->len, (long long) size);
                *ret = TAKE_PTR(d);
                return 0;
        }
        doc_releasep(&d); /* not in this store (any more): the read says what is wrong */

        r = read_doc_len(s, digest, size, media_type, &doc, &len, reterr);
        if (r < 0)
                return r;
        d = calloc(1, sizeof(*d));
        if (!d)
                return moat_error_set(reterr, -ENOMEM, "blob %s", digest);
        d->refs = 1;
        d->len = len;
        d->doc = TAKE_PTR(doc);
        d->digest = strdup(digest);
        d->media_type = media_type ? strdup(media_type) : NULL;
        if (!d->digest || (media_type && !d->media_type))
                return moat_error_set(reterr, -ENOMEM, "blob %s", digest);
        pthread_mutex_lock(&cache.lock);
        doc_insert_locked(d);
        pthread_mutex_unlock(&cache.lock);
        *ret = TAKE_PTR(d);
        return 0;
}

/* index.json's checks; its "manifests" array is added when missing. */
static int index_parse(const char *buf, size_t len, json_t **ret, json_t **ret_manifests, struct moat_error **reterr)
{
        _cleanup_json_ *root = NULL;
        json_error_t jerr;
        json_t *m;

        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return moat_error_setx(reterr, -EINVAL, "the store's index.json: line %d: %s", jerr.line, jerr.text);
        if (!json_is_object(root))
                return moat_error_setx(reterr, -EINVAL, "the store's index.json is not an object");
        m = json_object_get(root, "manifests");
        if (!m) {
                m = json_array();
                if (!m || json_object_set_new(root, "manifests", m) < 0)
                        return moat_error_set(reterr, -ENOMEM, "index.json");
        }
        if (!json_is_array(m))
                return moat_error_setx(reterr, -EINVAL, "the store's index.json: manifests is not an array");
        if (json_array_size(m) > MOAT_IMAGES_MAX_REFS)
                return moat_error_setx(reterr, -E2BIG, "the store's index.json: %zu manifests (at most %u)",
                                       json_array_size(m), MOAT_IMAGES_MAX_REFS);
        *ret_manifests = m;
        *ret = TAKE_PTR(root);
        return 0;
}

/* Load index.json: the document and its "manifests" array (borrowed). */
static int index_load(struct moat_store *s, json_t **ret, json_t **ret_manifests, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        r = read_full_file_at(moat_store_dir_fd(s), "index.json", MOAT_IMAGES_INDEX_MAX_SIZE, &buf, &len);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the store's index.json (at most %u bytes)",
                                      MOAT_IMAGES_INDEX_MAX_SIZE);
        return index_parse(buf, len, ret, ret_manifests, reterr);
}

static bool index_slot_matches(const struct index_slot *slot, const struct stat *st)
{
        return slot->doc && slot->dev == st->st_dev && slot->ino == st->st_ino && slot->size == st->st_size &&
               slot->mtim.tv_sec == st->st_mtim.tv_sec && slot->mtim.tv_nsec == st->st_mtim.tv_nsec;
}

static void index_unref_locked(struct index_doc *d)
{
        if (!d || --d->refs > 0)
                return;
        json_decref(d->root);
        free(d);
}

static void index_releasep(struct index_doc **d)
{
        if (!*d)
                return;
        pthread_mutex_lock(&cache.lock);
        index_unref_locked(*d);
        pthread_mutex_unlock(&cache.lock);
        *d = NULL;
}
#define _cleanup_index_ __attribute__((cleanup(index_releasep)))

/* index_load for readers: *ret holds the cached parse (index_releasep),
 * which must not be modified; *ret_manifests is its array. */
static int index_get(struct moat_store *s, struct index_doc **ret, json_t **ret_manifests,
                     struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_json_ *root = NULL;
        struct index_doc *d = NULL;
        json_t *m;
        struct stat st;
        size_t len;
        int r;

        if (fstatat(moat_store_dir_fd(s), "index.json", &st, 0) == 0) {
                pthread_mutex_lock(&cache.lock);
                for (size_t i = 0; i < INDEX_CACHE_MAX && !d; i++)
                        if (index_slot_matches(&cache.index[i], &st)) {
                                d = cache.index[i].doc;
                                d->refs++;
                                cache.index[i].used = ++cache.clock;
                        }
                pthread_mutex_unlock(&cache.lock);
                if (d) {
                        *ret_manifests = json_object_get(d->root, "manifests");
                        *ret = d;
                        return 0;
                }
        }

        /* Read from one descriptor, so the key is that of the file read. */
        fd = openat(moat_store_dir_fd(s), "index.json", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        r = fd < 0 ? -errno : fstat(fd, &st) < 0 ? -errno : read_full_fd(fd, MOAT_IMAGES_INDEX_MAX_SIZE, &buf, &len);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the store's index.json (at most %u bytes)",
                                      MOAT_IMAGES_INDEX_MAX_SIZE);
        r = index_parse(buf, len, &root, &m, reterr);
        if (r < 0)
                return r;
        d = calloc(1, sizeof(*d));
        if (!d)
                return moat_error_set(reterr, -ENOMEM, "index.json");
        *d = (struct index_doc) { .refs = 1, .root = TAKE_PTR(root) };
        if (S_ISREG(st.st_mode)) {
                pthread_mutex_lock(&cache.lock);
                struct index_slot *slot = NULL;
                for (size_t i = 0; i < INDEX_CACHE_MAX && !slot; i++)
                        if (cache.index[i].store == s)
                                slot = &cache.index[i];
                for (size_t i = 0; i < INDEX_CACHE_MAX && !slot; i++)
                        if (!cache.index[i].doc)
                                slot = &cache.index[i];
                if (!slot) {
                        slot = &cache.index[0];
                        for (size_t i = 1; i < INDEX_CACHE_MAX; i++)
                                if (cache.index[i].used < slot->used)
                                        slot = &cache.index[i];
                }
                index_unref_locked(slot->doc);
                d->refs++;
                *slot = (struct index_slot) {
                        .store = s,
                        .dev = st.st_dev,
                        .ino = st.st_ino,
                        .size = st.st_size,
                        .mtim = st.st_mtim,
                        .used = ++cache.clock,
                        .doc = d,
                };
                pthread_mutex_unlock(&cache.lock);
        }
        *ret_manifests = m;
        *ret = d;
        return 0;
}

static int index_save(struct moat_store *s, json_t *root, struct moat_error **reterr)
{
        _cleanup_free_ char *text = json_dumps(root, JSON_COMPACT);
        int r;

        if (!text)
                return moat_error_set(reterr, -ENOMEM, "serialising index.json");
        r = write_file_atomic_at(moat_store_dir_fd(s), "index.json", text, strlen(text), 0644);
        if (r < 0)
                return moat_error_set(reterr, r, "writing the store's index.json");
        if (fsync(moat_store_dir_fd(s)) < 0)
                return moat_error_set(reterr, errno, "fsync of the store directory");
        return 0;
}

static const char *entry_ref_name(json_t *entry)
{
        json_t *a = json_object_get(entry, "annotations");
        json_t *n = json_is_object(a) ? json_object_get(a, MOAT_IMAGES_REF_ANNOTATION) : NULL;
        return json_is_string(n) ? json_string_value(n) : NULL;
}

/* Remove every entry named name; returns how many went. The removed
 * entries are appended to removed when it is given. */
static size_t index_remove(json_t *manifests, const char *name, json_t *removed)
{
        size_t n = 0;

        for (size_t i = json_array_size(manifests); i > 0; i--) {
                json_t *e = json_array_get(manifests, i - 1);
                const char *en = entry_ref_name(e);
                if (en && streq(en, name)) {
                        if (removed)
                                (void) json_array_append(removed, e);
                        if (json_array_remove(manifests, i - 1) == 0)
                                n++;
                }
        }
        return n;
}

static const char *entry_digest(json_t *entry)
{
        return json_string_value(json_object_get(entry, "digest"));
}

static bool index_has_digest(json_t *manifests, const char *digest)
{
        size_t i;
        json_t *e;

        json_array_foreach(manifests, i, e) {
                const char *d = entry_digest(e);
                if (d && streq(d, digest))
                        return true;
        }
        return false;
}

/* Strip an entry of its name: what is left is an untagged entry. */
static void entry_unname(json_t *entry)
{
        json_t *a = json_object_get(entry, "annotations");

        if (!json_is_object(a))
                return;
        (void) json_object_del(a, MOAT_IMAGES_REF_ANNOTATION);
        (void) json_object_del(a, MOAT_IMAGES_TAG_TIME_ANNOTATION);
        if (json_object_size(a) == 0)
                (void) json_object_del(entry, "annotations");
}

static int now_rfc3339(char buf[static 32])
{
        struct timespec ts;
        struct tm tm;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !gmtime_r(&ts.tv_sec, &tm))
                return -errno;
        snprintf(buf + strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm), 13, ".%09ldZ", ts.tv_nsec);
        return 0;
}

int moat_images_tag(struct moat_store *s, const char *reference, const struct oci_descriptor *target,
                    struct moat_error **reterr)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        _cleanup_json_ *root = NULL;
        _cleanup_close_ int lock_fd = -EBADF;
        struct moat_reference ref = {};
        json_t *manifests, *entry;
        int r;

        if (!target || !target->digest || !target->media_type)
                return moat_error_setx(reterr, -EINVAL, "tag: no target descriptor");
        r = normalise_reference(reference, &ref, &name, reterr);
        if (r < 0)
                return r;
        if (ref.digest && !streq(ref.digest, target->digest)) {
                r = moat_error_setx(reterr, -EINVAL, "reference %s names digest %s, not the target %s", name,
                                    ref.digest, target->digest);
                moat_reference_clear(&ref);
                return r;
        }
        moat_reference_clear(&ref);
        if (!is_index_type(target->media_type) && !is_manifest_type(target->media_type))
                return moat_error_setx(reterr, -EMEDIUMTYPE, "tag %s: media type \"%s\" is not a manifest or index",
                                       name, target->media_type);
        if (target->size < 0)
                return moat_error_setx(reterr, -EINVAL, "tag %s: negative size %lld", name, (long long) target->size);
        r = read_doc(s, target->digest, target->size, target->media_type, &doc, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "tag %s", name);

        char when[32];
        r = now_rfc3339(when);
        if (r < 0)
                return moat_error_set(reterr, r, "tag %s: clock", name);
        entry = json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "mediaType", target->media_type, "digest", target->digest,
                          "size", (json_int_t) target->size, "annotations", MOAT_IMAGES_REF_ANNOTATION, name,
                          MOAT_IMAGES_TAG_TIME_ANNOTATION, when);
        if (!entry)
                return moat_error_set(reterr, -ENOMEM, "tag %s", name);

        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &lock_fd, reterr);
        if (r >= 0)
                r = index_load(s, &root, &manifests, reterr);
        if (r < 0) {
                json_decref(entry);
                return moat_error_wrap(reterr, r, "tag %s", name);
        }
        _cleanup_json_ *removed = json_array();
        if (!removed) {
                json_decref(entry);
                return moat_error_set(reterr, -ENOMEM, "tag %s", name);
        }
        (void) index_remove(manifests, name, removed);
        /* An untagged entry of the target has a name now. */
        for (size_t i = json_array_size(manifests); i > 0; i--) {
                json_t *e = json_array_get(manifests, i - 1);
                const char *d = entry_digest(e);
                if (!entry_ref_name(e) && d && streq(d, target->digest))
                        (void) json_array_remove(manifests, i - 1);
        }
        if (json_array_size(manifests) >= MOAT_IMAGES_MAX_REFS) {
                json_decref(entry);
                return moat_error_setx(reterr, -E2BIG, "tag %s: the store has %u references already", name,
                                       MOAT_IMAGES_MAX_REFS);
        }
        if (json_array_append_new(manifests, entry) < 0)
                return moat_error_set(reterr, -ENOMEM, "tag %s", name);
        /* The image the name held before stays, dangling, when nothing else holds it (docker). */
        for (size_t i = 0; i < json_array_size(removed); i++) {
                json_t *old = json_array_get(removed, i);
                const char *d = entry_digest(old);
                if (!d || index_has_digest(manifests, d))
                        continue;
                entry_unname(old);
                if (json_array_append(manifests, old) < 0)
                        return moat_error_set(reterr, -ENOMEM, "tag %s", name);
        }
        r = index_save(s, root, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "tag %s", name);
        return 0;
}

int moat_images_untag(struct moat_store *s, const char *reference, struct moat_error **reterr)
{
        _cleanup_free_ char *name = NULL;
        _cleanup_json_ *root = NULL;
        _cleanup_close_ int lock_fd = -EBADF;
        json_t *manifests;
        int r;

        r = normalise_reference(reference, NULL, &name, reterr);
        if (r < 0)
                return r;
        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &lock_fd, reterr);
        if (r >= 0)
                r = index_load(s, &root, &manifests, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "untag %s", name);
        if (index_remove(manifests, name, NULL) == 0)
                return moat_error_setx(reterr, -ENOENT, "no image %s in the store", name);
        r = index_save(s, root, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "untag %s", name);
        return 0;
}

int moat_images_add_untagged(struct moat_store *s, const struct oci_descriptor *target, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        _cleanup_json_ *root = NULL;
        _cleanup_close_ int lock_fd = -EBADF;
        json_t *manifests, *entry;
        int r;

        if (!target || !target->digest || !target->media_type || target->size < 0)
                return moat_error_setx(reterr, -EINVAL, "untagged entry: no valid target descriptor");
        if (!is_index_type(target->media_type) && !is_manifest_type(target->media_type))
                return moat_error_setx(reterr, -EMEDIUMTYPE, "untagged entry %s: media type \"%s\" is not a manifest or index",
                                       target->digest, target->media_type);
        r = read_doc(s, target->digest, target->size, target->media_type, &doc, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "untagged entry");
        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &lock_fd, reterr);
        if (r >= 0)
                r = index_load(s, &root, &manifests, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "untagged entry %s", target->digest);
        if (index_has_digest(manifests, target->digest))
                return 0;
        if (json_array_size(manifests) >= MOAT_IMAGES_MAX_REFS)
                return moat_error_setx(reterr, -E2BIG, "untagged entry %s: the store has %u entries already",
                                       target->digest, MOAT_IMAGES_MAX_REFS);
        entry = json_pack("{s:s, s:s, s:I}", "mediaType", target->media_type, "digest", target->digest, "size",
                          (json_int_t) target->size);
        if (!entry || json_array_append_new(manifests, entry) < 0)
                return moat_error_set(reterr, -ENOMEM, "untagged entry %s", target->digest);
        r = index_save(s, root, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "untagged entry %s", target->digest);
        return 0;
}

void moat_image_refs_free(struct moat_image_ref *refs, size_t n)
{
        if (!refs)
                return;
        for (size_t i = 0; i < n; i++) {
                free(refs[i].reference);
                free(refs[i].digest);
                free(refs[i].media_type);
        }
        free(refs);
}

static int ref_cmp(const void *a, const void *b)
{
        return strcmp(((const struct moat_image_ref *) a)->reference, ((const struct moat_image_ref *) b)->reference);
}

/* The descriptor fields of an index.json entry, checked. */
static int entry_fields(json_t *entry, size_t i, const char **ret_mt, const char **ret_digest, int64_t *ret_size,
                        struct moat_error **reterr)
{
        json_t *mt = json_object_get(entry, "mediaType"), *dg = json_object_get(entry, "digest"),
               *sz = json_object_get(entry, "size");
        int r;

        if (!json_is_string(mt) || !json_is_string(dg) || !json_is_integer(sz) || json_integer_value(sz) < 0)
                return moat_error_setx(reterr, -EINVAL,
                                       "the store's index.json: manifests[%zu] lacks a mediaType, digest or size", i);
        r = oci_digest_validate(json_string_value(dg), reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "the store's index.json: manifests[%zu].digest", i);
        *ret_mt = json_string_value(mt);
        *ret_digest = json_string_value(dg);
        *ret_size = json_integer_value(sz);
        return 0;
}

int moat_images_list(struct moat_store *s, struct moat_image_ref **ret, size_t *ret_n, struct moat_error **reterr)
{
        _cleanup_index_ struct index_doc *index = NULL;
        struct moat_image_ref *refs = NULL;
        json_t *manifests;
        size_t n = 0;
        int r;

        r = index_get(s, &index, &manifests, reterr);
        if (r < 0)
                return r;
        refs = calloc(json_array_size(manifests) + 1, sizeof(*refs));
        if (!refs)
                return moat_error_set(reterr, -ENOMEM, "listing images");
        for (size_t i = 0; i < json_array_size(manifests); i++) {
                json_t *e = json_array_get(manifests, i);
                const char *name = entry_ref_name(e), *mt, *digest;
                int64_t size;

                if (!name)
                        continue;
                r = entry_fields(e, i, &mt, &digest, &size, reterr);
                if (r < 0) {
                        moat_image_refs_free(refs, n);
                        return r;
                }
                refs[n].reference = strdup(name);
                refs[n].digest = strdup(digest);
                refs[n].media_type = strdup(mt);
                refs[n].size = size;
                n++;
                if (!refs[n - 1].reference || !refs[n - 1].digest || !refs[n - 1].media_type) {
                        moat_image_refs_free(refs, n);
                        return moat_error_set(reterr, -ENOMEM, "listing images");
                }
        }
        if (n > 1)
                qsort(refs, n, sizeof(*refs), ref_cmp);
        *ret = refs;
        *ret_n = n;
        return 0;
}

/* ---- resolve ---- */

void moat_image_free(struct moat_image *img)
{
        if (!img)
                return;
        free(img->reference);
        free(img->target_digest);
        free(img->manifest_digest);
        free(img->config_digest);
        free(img->target_media_type);
        doc_release(img->manifest_hold);
        doc_release(img->config_hold);
        free(img);
}

/* Find the entry of name: copies its descriptor fields. -ENOENT when absent. */
static int index_find(struct moat_store *s, const char *name, char **ret_mt, char **ret_digest, int64_t *ret_size,
                      struct moat_error **reterr)
{
        _cleanup_index_ struct index_doc *index = NULL;
        json_t *manifests;
        int r;

        r = index_get(s, &index, &manifests, reterr);
        if (r < 0)
                return r;
        for (size_t i = json_array_size(manifests); i > 0; i--) {
                json_t *e = json_array_get(manifests, i - 1);
                const char *n = entry_ref_name(e), *mt, *digest;
                int64_t size;

                if (!n || !streq(n, name))
                        continue;
                r = entry_fields(e, i - 1, &mt, &digest, &size, reterr);
                if (r < 0)
                        return r;
                *ret_mt = strdup(mt);
                *ret_digest = strdup(digest);
                *ret_size = size;
                if (!*ret_mt || !*ret_digest)
                        return moat_error_set(reterr, -ENOMEM, "resolving %s", name);
                return 0;
        }
        return -ENOENT;
}

/* The media type of a blob found by digest alone: its own mediaType. */
static int sniff_media_type(struct moat_store *s, const char *digest, char **ret, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        int r = read_doc(s, digest, -1, NULL, &doc, reterr);

        if (r < 0)
                return r;
        if (doc->kind == OCI_DOC_CONFIG)
                return moat_error_setx(reterr, -EMEDIUMTYPE, "blob %s is an image config, not a manifest", digest);
        *ret = strdup(doc->media_type);
        return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "blob %s", digest);
}

/* Walk from a target (manifest or index) to the platform's manifest and
 * its config; img->reference names it in errors. */
static int resolve_target(struct moat_store *s, struct moat_image *img, const char *target_mt,
                          const char *target_digest, int64_t target_size, const struct oci_platform *platform,
                          struct moat_error **reterr)
{
        _cleanup_free_ char *mt = strdup(target_mt), *digest = strdup(target_digest);
        int64_t size = target_size;
        int r;

        img->target_digest = strdup(target_digest);
        img->target_media_type = strdup(target_mt);
        img->target_size = target_size;
        if (!mt || !digest || !img->target_digest || !img->target_media_type)
                return moat_error_set(reterr, -ENOMEM, "resolving %s", img->reference);

        for (unsigned depth = 0;; depth++) {
                _cleanup_doc_ struct moat_images_doc *held = NULL;
                const struct oci_image_doc *doc;
                const struct oci_descriptor *pick;

                if (depth > MOAT_IMAGES_MAX_NESTING)
                        return moat_error_setx(reterr, -ELOOP, "resolving %s: indexes nested deeper than %u",
                                               img->reference, MOAT_IMAGES_MAX_NESTING);
                if (!is_index_type(mt) && !is_manifest_type(mt))
                        return moat_error_setx(reterr, -EMEDIUMTYPE,
                                               "resolving %s: %s has media type \"%s\", not a manifest or index",
                                               img->reference, digest, mt);
                r = read_doc_cached(s, digest, size, mt, &held, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "resolving %s", img->reference);
                doc = held->doc;
                if (doc->kind == OCI_DOC_MANIFEST) {
                        img->manifest_hold = TAKE_PTR(held);
                        img->manifest_doc = img->manifest_hold->doc;
                        break;
                }
                if (doc->kind != OCI_DOC_INDEX)
                        return moat_error_setx(reterr, -EMEDIUMTYPE, "resolving %s: %s is not a manifest or index",
                                               img->reference, digest);
                r = oci_index_select(&doc->index, platform ? platform->os : NULL,
                                     platform ? platform->architecture : NULL, platform ? platform->variant : NULL,
                                     &pick, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "resolving %s (index %s)", img->reference, digest);
                free(mt);
                free(digest);
                mt = strdup(pick->media_type);
                digest = strdup(pick->digest);
                size = pick->size;
                if (!mt || !digest)
                        return moat_error_set(reterr, -ENOMEM, "resolving %s", img->reference);
        }

        img->manifest = oci_image_doc_manifest(img->manifest_doc);
        img->manifest_digest = TAKE_PTR(digest);
        if (img->manifest->artifact)
                return moat_error_setx(reterr, -EMEDIUMTYPE,
                                       "resolving %s: manifest %s is an artifact (config %s), not an image",
                                       img->reference, img->manifest_digest, img->manifest->config.media_type);
        img->config_digest = strdup(img->manifest->config.digest);
        if (!img->config_digest)
                return moat_error_set(reterr, -ENOMEM, "resolving %s", img->reference);
        r = read_doc_cached(s, img->config_digest, img->manifest->config.size, img->manifest->config.media_type,
                            &img->config_hold, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "resolving %s: config", img->reference);
        img->config_doc = img->config_hold->doc;
        img->config = oci_image_doc_config(img->config_doc);
        if (!img->config)
                return moat_error_setx(reterr, -EMEDIUMTYPE, "resolving %s: config %s is not an image config",
                                       img->reference, img->config_digest);
        if (img->config->n_diff_ids != img->manifest->n_layers)
                return moat_error_setx(reterr, -EINVAL,
                                       "resolving %s: manifest %s has %zu layers but config %s has %zu diff_ids",
                                       img->reference, img->manifest_digest, img->manifest->n_layers,
                                       img->config_digest, img->config->n_diff_ids);
        return 0;
}

int moat_images_resolve(struct moat_store *s, const char *reference, const struct oci_platform *platform,
                        struct moat_image **ret, struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_free_ char *mt = NULL, *digest = NULL;
        struct moat_reference ref = {};
        int64_t size = -1;
        int r;

        img = calloc(1, sizeof(*img));
        if (!img)
                return moat_error_set(reterr, -ENOMEM, "resolving %s", reference);
        r = normalise_reference(reference, &ref, &img->reference, reterr);
        if (r < 0)
                return r;
        r = index_find(s, img->reference, &mt, &digest, &size, reterr);
        if (r == -ENOENT && ref.digest) {
                digest = strdup(ref.digest);
                r = digest ? moat_store_has_blob(s, digest) : -ENOMEM;
                if (r == 0)
                        r = -ENOENT;
                else if (r > 0)
                        r = sniff_media_type(s, digest, &mt, reterr);
        }
        moat_reference_clear(&ref);
        if (r == -ENOENT)
                return moat_error_setx(reterr, -ENOENT, "no image %s in the store", img->reference);
        if (r < 0)
                return moat_error_wrap(reterr, r, "resolving %s", img->reference);
        r = resolve_target(s, img, mt, digest, size, platform, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(img);
        return 0;
}

/* ---- entries, IDs and lookup ---- */

void moat_image_entries_free(struct moat_image_entry *entries, size_t n)
{
        if (!entries)
                return;
        for (size_t i = 0; i < n; i++) {
                free(entries[i].reference);
                free(entries[i].digest);
                free(entries[i].media_type);
                free(entries[i].id);
                free(entries[i].created);
                free(entries[i].tag_time);
        }
        free(entries);
}

static int64_t image_layers_size(const struct moat_image *img)
{
        int64_t sum = 0;

        for (size_t i = 0; i < img->manifest->n_layers; i++)
                if (img->manifest->layers[i].size > 0)
                        sum += img->manifest->layers[i].size;
        return sum;
}

/* Resolve one entry to its image; *ret NULL (and no error) when it holds no runnable image. */
static int entry_image(struct moat_store *s, const char *name, const char *mt, const char *digest, int64_t size,
                       const struct oci_platform *platform, struct moat_image **ret, struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = calloc(1, sizeof(*img));
        int r;

        *ret = NULL;
        if (!img)
                return moat_error_set(reterr, -ENOMEM, "resolving %s", digest);
        img->reference = strdup(name ? name : digest);
        if (!img->reference)
                return moat_error_set(reterr, -ENOMEM, "resolving %s", digest);
        r = resolve_target(s, img, mt, digest, size, platform, NULL);
        if (r == -ENOMEM)
                return moat_error_set(reterr, r, "resolving %s", digest);
        if (r < 0)
                return 0;
        *ret = TAKE_PTR(img);
        return 0;
}

static int entry_cmp(const void *a, const void *b)
{
        const struct moat_image_entry *x = a, *y = b;

        if (!x->reference != !y->reference)
                return x->reference ? -1 : 1;
        if (x->reference)
                return strcmp(x->reference, y->reference);
        return strcmp(x->digest, y->digest);
}

int moat_images_entries(struct moat_store *s, const struct oci_platform *platform, struct moat_image_entry **ret,
                        size_t *ret_n, struct moat_error **reterr)
{
        _cleanup_index_ struct index_doc *index = NULL;
        struct moat_image_entry *v;
        json_t *manifests;
        size_t n = 0;
        int r;

        r = index_get(s, &index, &manifests, reterr);
        if (r < 0)
                return r;
        v = calloc(json_array_size(manifests) + 1, sizeof(*v));
        if (!v)
                return moat_error_set(reterr, -ENOMEM, "listing images");
        for (size_t i = 0; i < json_array_size(manifests); i++) {
                json_t *e = json_array_get(manifests, i), *a = json_object_get(e, "annotations");
                const char *name = entry_ref_name(e), *mt, *digest,
                           *when = json_string_value(json_object_get(a, MOAT_IMAGES_TAG_TIME_ANNOTATION));
                _cleanup_image_ struct moat_image *img = NULL;
                struct moat_image_entry *x = &v[n];
                int64_t size;

                r = entry_fields(e, i, &mt, &digest, &size, reterr);
                if (r >= 0)
                        r = entry_image(s, name, mt, digest, size, platform, &img, reterr);
                if (r < 0) {
                        moat_image_entries_free(v, n);
                        return r;
                }
                n++;
                x->reference = name ? strdup(name) : NULL;
                x->digest = strdup(digest);
                x->media_type = strdup(mt);
                x->size = size;
                x->tag_time = when ? strdup(when) : NULL;
                if (img) {
                        x->id = strdup(img->config_digest);
                        x->created = img->config->created ? strdup(img->config->created) : NULL;
                        x->image_size = image_layers_size(img);
                }
                if ((name && !x->reference) || !x->digest || !x->media_type || (when && !x->tag_time) ||
                    (img && (!x->id || (img->config->created && !x->created)))) {
                        moat_image_entries_free(v, n);
                        return moat_error_set(reterr, -ENOMEM, "listing images");
                }
        }
        if (n > 1)
                qsort(v, n, sizeof(*v), entry_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

/* text as an ID: "sha256:" optional, then 1 to 64 lower-case hex digits. */
static const char *id_hex(const char *text)
{
        const char *hex = startswith(text, "sha256:") ? text + strlen("sha256:") : text;
        size_t len = strlen(hex);

        if (len == 0 || len > 64)
                return NULL;
        for (const char *p = hex; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return NULL;
        return hex;
}

/*
 * The entry holding the image that ID text (full or prefix) names: the
 * first named one, else the first. -ENOENT when none, -ENOTUNIQ when a
 * prefix matches several IDs.
 */
static int find_by_id(const struct moat_image_entry *v, size_t n, const char *text, bool prefix, size_t *ret,
                      struct moat_error **reterr)
{
        const char *hex = id_hex(text), *found = NULL;
        size_t pick = SIZE_MAX;

        if (!hex || (!prefix && strlen(hex) != 64))
                return -ENOENT;
        for (size_t i = 0; i < n; i++) {
                if (!v[i].id || !startswith(v[i].id + strlen("sha256:"), hex))
                        continue;
                if (found && !streq(found, v[i].id))
                        return moat_error_setx(reterr, -ENOTUNIQ, "multiple IDs found with provided prefix: %s",
                                               text);
                found = v[i].id;
                if (pick == SIZE_MAX || (!v[pick].reference && v[i].reference))
                        pick = i;
        }
        if (pick == SIZE_MAX)
                return -ENOENT;
        *ret = pick;
        return 0;
}

static int image_of_entry(struct moat_store *s, const struct moat_image_entry *e, const struct oci_platform *platform,
                          struct moat_image **ret, struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = calloc(1, sizeof(*img));
        int r;

        if (!img || !(img->reference = strdup(e->id)))
                return moat_error_set(reterr, -ENOMEM, "image %s", e->id);
        img->by_id = true;
        r = resolve_target(s, img, e->media_type, e->digest, e->size, platform, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(img);
        return 0;
}

int moat_images_lookup(struct moat_store *s, const char *text, const struct oci_platform *platform,
                       struct moat_image **ret, struct moat_error **reterr)
{
        struct moat_image_entry *v = NULL;
        _cleanup_error_ struct moat_error *ref_err = NULL;
        size_t n = 0, pick;
        int r;

        if (strempty(text))
                return moat_error_setx(reterr, -EINVAL, "no image name or ID given");
        r = moat_images_entries(s, platform, &v, &n, reterr);
        if (r < 0)
                return r;
        r = find_by_id(v, n, text, false, &pick, reterr);
        if (r == -ENOENT && !(id_hex(text) && strlen(id_hex(text)) == 64)) {
                r = moat_images_resolve(s, text, platform, ret, &ref_err);
                if (r >= 0 || (r != -ENOENT && !(r == -EINVAL && id_hex(text)))) {
                        if (r < 0 && reterr && !*reterr)
                                *reterr = TAKE_PTR(ref_err);
                        moat_image_entries_free(v, n);
                        return r;
                }
                r = id_hex(text) ? find_by_id(v, n, text, true, &pick, reterr) : -ENOENT;
        }
        if (r >= 0)
                r = image_of_entry(s, &v[pick], platform, ret, reterr);
        moat_image_entries_free(v, n);
        if (r == -ENOENT)
                return moat_error_setx(reterr, -ENOENT, "No such image: %s", text);
        return r;
}

/* ---- layer trees ---- */

/* Remove name in dfd, recursively; never follows symlinks. */
/* A layer's mount points' tree (snapshot.h): its layer's chain id in base. */
static bool init_layer_base(const char *name, char base[static MOAT_SNAPSHOT_ID_MAX + 1])
{
        size_t l = strlen(name), sl = strlen(MOAT_SNAPSHOT_INIT_SUFFIX);
        if (l <= sl || l - sl > MOAT_SNAPSHOT_ID_MAX || !streq(name + l - sl, MOAT_SNAPSHOT_INIT_SUFFIX))
                return false;
        memcpy(base, name, l - sl);
        base[l - sl] = '\0';
        return oci_digest_validate(base, NULL) >= 0;
}

int moat_images_rm_rf_at(int dfd, const char *name, unsigned depth)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        if (unlinkat(dfd, name, 0) >= 0)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return errno == ENOENT ? 0 : negative_errno();
        if (depth > RM_MAX_DEPTH)
                return -ELOOP;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                r = moat_images_rm_rf_at(dirfd(d), de->d_name, depth + 1);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return negative_errno();
        return RET_NERRNO(unlinkat(dfd, name, AT_REMOVEDIR));
}

int moat_images_layers_dir(struct moat_store *s, int *ret_fd, struct moat_error **reterr)
{
        int fd;

        if (mkdirat(moat_store_dir_fd(s), LAYERS_DIR, 0700) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "creating the store's %s/", LAYERS_DIR);
        fd = openat(moat_store_dir_fd(s), LAYERS_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening the store's %s/", LAYERS_DIR);
        *ret_fd = fd;
        return 0;
}

/* A new, empty temp directory in layers/ (mode 0755: it becomes a root). */
int moat_images_layer_tmp_create(int layers_fd, char ret_name[static 32], struct moat_error **reterr)
{
        for (unsigned attempt = 0; attempt < 16; attempt++) {
                uint64_t nonce = 0;

                if (getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
                        return moat_error_set(reterr, errno, "getrandom");
                snprintf(ret_name, 32, LAYER_TMP_PREFIX "%016llx", (unsigned long long) nonce);
                if (mkdirat(layers_fd, ret_name, 0700) < 0) {
                        if (errno == EEXIST)
                                continue;
                        return moat_error_set(reterr, errno, "creating layers/%s", ret_name);
                }
                return 0;
        }
        return moat_error_setx(reterr, -EEXIST, "no free temp name in layers/");
}

/* ---- garbage collection ---- */

struct strset {
        char **v;
        size_t n, cap;
};

static void strset_clear(struct strset *set)
{
        for (size_t i = 0; i < set->n; i++)
                free(set->v[i]);
        free(set->v);
        *set = (struct strset) {};
}

static int strset_add(struct strset *set, const char *s)
{
        if (set->n == set->cap) {
                size_t cap = set->cap ? set->cap * 2 : 64;
                char **v = reallocarray(set->v, cap, sizeof(char *));
                if (!v)
                        return -ENOMEM;
                set->v = v;
                set->cap = cap;
        }
        set->v[set->n] = strdup(s);
        if (!set->v[set->n])
                return -ENOMEM;
        set->n++;
        return 0;
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool strset_has(const struct strset *set, const char *s)
{
        return set->n > 0 && bsearch(&s, set->v, set->n, sizeof(char *), str_cmp);
}

struct gc_marks {
        struct strset blobs;
        struct strset chains;
};

static int gc_mark(struct moat_store *s, const char *mt, const char *digest, int64_t size, unsigned depth,
                   struct gc_marks *marks, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        int r;

        r = oci_digest_validate(digest, reterr);
        if (r < 0)
                return r;
        if (strset_add(&marks->blobs, digest) < 0)
                return moat_error_set(reterr, -ENOMEM, "gc");
        if (!is_index_type(mt) && !is_manifest_type(mt))
                return 0;
        if (depth > MOAT_IMAGES_MAX_NESTING)
                return moat_error_setx(reterr, -ELOOP, "%s: indexes nested deeper than %u", digest,
                                       MOAT_IMAGES_MAX_NESTING);
        r = moat_store_has_blob(s, digest);
        if (r < 0)
                return moat_error_set(reterr, r, "blob %s", digest);
        if (r == 0)
                return 0; /* a partial pull */
        r = read_doc(s, digest, size, mt, &doc, reterr);
        if (r < 0)
                return r;
        if (doc->kind == OCI_DOC_INDEX) {
                for (size_t i = 0; i < doc->index.n_manifests; i++) {
                        const struct oci_descriptor *d = &doc->index.manifests[i];
                        r = gc_mark(s, d->media_type, d->digest, d->size, depth + 1, marks, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "index %s: manifests[%zu]", digest, i);
                }
                return 0;
        }
        if (doc->kind != OCI_DOC_MANIFEST)
                return 0;

        const struct oci_manifest *m = &doc->manifest;
        if (strset_add(&marks->blobs, m->config.digest) < 0)
                return moat_error_set(reterr, -ENOMEM, "gc");
        for (size_t i = 0; i < m->n_layers; i++)
                if (strset_add(&marks->blobs, m->layers[i].digest) < 0)
                        return moat_error_set(reterr, -ENOMEM, "gc");
        if (m->artifact)
                return 0;
        r = moat_store_has_blob(s, m->config.digest);
        if (r < 0)
                return moat_error_set(reterr, r, "blob %s", m->config.digest);
        if (r == 0)
                return 0;

        _cleanup_oci_image_doc_ struct oci_image_doc *cfg = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        r = read_doc(s, m->config.digest, m->config.size, m->config.media_type, &cfg, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "manifest %s: config", digest);
        if (cfg->kind != OCI_DOC_CONFIG)
                return 0;
        r = oci_chain_ids(cfg->config.diff_ids, cfg->config.n_diff_ids, &chain, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "config %s", m->config.digest);
        for (size_t i = 0; chain[i]; i++)
                if (strset_add(&marks->chains, chain[i]) < 0)
                        return moat_error_set(reterr, -ENOMEM, "gc");
        return 0;
}

static int gc_sweep_blobs(struct moat_store *s, const struct strset *keep, struct moat_images_gc_result *res,
                          struct moat_error **reterr)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        fd = openat(moat_store_dir_fd(s), "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening the store's blobs/sha256");
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return moat_error_set(reterr, r, "opening the store's blobs/sha256");
        }
        while ((errno = 0, de = readdir(d))) {
                char digest[MOAT_DIGEST_MAX];
                struct stat st;

                if (strlen(de->d_name) != 64)
                        continue;
                snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
                if (moat_digest_validate(digest, NULL) < 0 || strset_has(keep, digest))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        st.st_size = 0;
                r = moat_store_remove_blob(s, digest, NULL);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return moat_error_set(reterr, r, "removing blob %s", digest);
                res->blobs_removed++;
                res->bytes_removed += (uint64_t) st.st_size;
        }
        if (errno != 0)
                return moat_error_set(reterr, errno, "reading the store's blobs/sha256");
        return 0;
}

static int gc_sweep_layers(struct moat_store *s, const struct strset *keep, struct moat_images_gc_result *res,
                           struct moat_error **reterr)
{
        _cleanup_close_ int layers_fd = -EBADF;
        _cleanup_closedir_ DIR *d = NULL;
        struct strset doomed = {};
        struct dirent *de;
        int fd, r = 0;

        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;
        fd = openat(layers_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening the store's layers/");
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return moat_error_set(reterr, r, "opening the store's layers/");
        }
        while ((errno = 0, de = readdir(d))) {
                char base[MOAT_SNAPSHOT_ID_MAX + 1];
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (startswith(de->d_name, LAYER_TMP_PREFIX) ||
                    (oci_digest_validate(de->d_name, NULL) >= 0 && !strset_has(keep, de->d_name)) ||
                    (init_layer_base(de->d_name, base) && !strset_has(keep, base)))
                        if (strset_add(&doomed, de->d_name) < 0) {
                                strset_clear(&doomed);
                                return moat_error_set(reterr, -ENOMEM, "gc");
                        }
        }
        if (errno != 0) {
                strset_clear(&doomed);
                return moat_error_set(reterr, errno, "reading the store's layers/");
        }
        for (size_t i = 0; i < doomed.n && r >= 0; i++) {
                const char *name = doomed.v[i];
                char tmp[32];

                if (!startswith(name, LAYER_TMP_PREFIX)) {
                        /* Out of its name first: never a partial tree under a ChainID. */
                        r = moat_images_layer_tmp_create(layers_fd, tmp, reterr);
                        if (r < 0)
                                break;
                        if (renameat(layers_fd, name, layers_fd, tmp) < 0) { /* replaces the empty tmp */
                                r = moat_error_set(reterr, errno, "moving layers/%s aside", name);
                                (void) unlinkat(layers_fd, tmp, AT_REMOVEDIR);
                                break;
                        }
                        name = tmp;
                }
                r = moat_images_rm_rf_at(layers_fd, name, 0);
                if (r < 0)
                        r = moat_error_set(reterr, r, "removing layers/%s", name);
                else
                        res->layers_removed++;
        }
        strset_clear(&doomed);
        if (r >= 0 && fsync(layers_fd) < 0)
                r = moat_error_set(reterr, errno, "fsync of layers/");
        return r;
}

/* Mark and sweep; the caller holds images.lock exclusively. */
static int gc_locked(struct moat_store *s, struct moat_images_gc_result *ret, struct moat_error **reterr)
{
        _cleanup_close_ int layers_lock = -EBADF;
        _cleanup_json_ *root = NULL;
        struct moat_images_gc_result res = {};
        struct gc_marks marks = {};
        json_t *manifests;
        int r;

        r = moat_images_store_lock(s, LAYERS_LOCK, LOCK_EX, &layers_lock, reterr);
        if (r < 0)
                return r;
        r = index_load(s, &root, &manifests, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "gc");
        for (size_t i = 0; i < json_array_size(manifests) && r >= 0; i++) {
                const char *mt, *digest;
                int64_t size;

                r = entry_fields(json_array_get(manifests, i), i, &mt, &digest, &size, reterr);
                if (r >= 0)
                        r = gc_mark(s, mt, digest, size, 0, &marks, reterr);
                if (r < 0) {
                        const char *name = entry_ref_name(json_array_get(manifests, i));
                        r = moat_error_wrap(reterr, r, "gc: %s", name ? name : "unnamed index.json entry");
                }
        }
        if (r >= 0) {
                if (marks.blobs.n > 1)
                        qsort(marks.blobs.v, marks.blobs.n, sizeof(char *), str_cmp);
                if (marks.chains.n > 1)
                        qsort(marks.chains.v, marks.chains.n, sizeof(char *), str_cmp);
                r = gc_sweep_blobs(s, &marks.blobs, &res, reterr);
        }
        if (r >= 0)
                r = gc_sweep_layers(s, &marks.chains, &res, reterr);
        strset_clear(&marks.blobs);
        strset_clear(&marks.chains);
        if (r < 0)
                return r;
        if (ret)
                *ret = res;
        return 0;
}

int moat_images_gc(struct moat_store *s, struct moat_images_gc_result *ret, struct moat_error **reterr)
{
        _cleanup_close_ int images_lock = -EBADF;
        int r;

        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &images_lock, reterr);
        if (r < 0)
                return r;
        return gc_locked(s, ret, reterr);
}

/* ---- removal (docker rmi and image prune) ---- */

void moat_images_delete_report_clear(struct moat_images_delete_report *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++) {
                free(r->items[i].untagged);
                free(r->items[i].deleted);
        }
        free(r->items);
        *r = (struct moat_images_delete_report) {};
}

static int report_add(struct moat_images_delete_report *r, const char *untagged, const char *deleted)
{
        struct moat_images_delete_item *v = reallocarray(r->items, r->n + 1, sizeof(*v));

        if (!v)
                return -ENOMEM;
        r->items = v;
        v[r->n] = (struct moat_images_delete_item) {
                .untagged = untagged ? strdup(untagged) : NULL,
                .deleted = deleted ? strdup(deleted) : NULL,
        };
        r->n++;
        if ((untagged && !v[r->n - 1].untagged) || (deleted && !v[r->n - 1].deleted))
                return -ENOMEM;
        return 0;
}

/* The familiar form docker prints ("busybox:latest"); name itself when it does not parse. */
static char *familiar_dup(const char *name)
{
        struct moat_reference ref = {};
        char *fam = NULL;

        if (moat_reference_parse(name, &ref, NULL) >= 0) {
                if (moat_reference_familiar(&ref, &fam) < 0)
                        fam = NULL;
                moat_reference_clear(&ref);
        }
        return fam ? fam : strdup(name);
}

static int report_untagged(struct moat_images_delete_report *r, const char *name)
{
        _cleanup_free_ char *fam = familiar_dup(name);

        return fam ? report_add(r, fam, NULL) : -ENOMEM;
}

/* An index.json entry during a removal, with its image. */
struct rm_entry {
        json_t *json;             /* borrowed from the loaded index */
        const char *name;         /* borrowed; NULL when untagged */
        struct moat_image *img;   /* NULL when it holds no runnable image */
        enum { KEEP, DROP, UNNAME } fate;
};

/* An image being deleted: what to say about it once collected. */
struct rm_plan {
        char *id;
        char **chains;   /* ChainIDs, top layer first */
        char **blobs;    /* the layers' blobs, same order */
        bool *had;       /* the blob was there before */
        size_t n;
};

struct rm_ctx {
        struct moat_store *s;
        json_t *root, *manifests;
        struct rm_entry *e;
        size_t n;
        struct rm_plan *plans;
        size_t n_plans;
        moat_images_use_fn in_use;
        void *userdata;
};

static void rm_ctx_done(struct rm_ctx *c)
{
        for (size_t i = 0; i < c->n; i++)
                moat_image_free(c->e[i].img);
        free(c->e);
        for (size_t i = 0; i < c->n_plans; i++) {
                free(c->plans[i].id);
                strv_free(c->plans[i].chains);
                strv_free(c->plans[i].blobs);
                free(c->plans[i].had);
        }
        free(c->plans);
        json_decref(c->root);
}

static const char *rm_id(const struct rm_entry *e)
{
        return e->img ? e->img->config_digest : NULL;
}

/* Load index.json (the caller holds images.lock) and resolve every entry. */
static int rm_load(struct rm_ctx *c, struct moat_error **reterr)
{
        int r = index_load(c->s, &c->root, &c->manifests, reterr);

        if (r < 0)
                return r;
        c->e = calloc(json_array_size(c->manifests) + 1, sizeof(*c->e));
        if (!c->e)
                return moat_error_set(reterr, -ENOMEM, "images");
        for (size_t i = 0; i < json_array_size(c->manifests); i++) {
                struct rm_entry *x = &c->e[c->n++];
                const char *mt, *digest;
                int64_t size;

                x->json = json_array_get(c->manifests, i);
                x->name = entry_ref_name(x->json);
                r = entry_fields(x->json, i, &mt, &digest, &size, reterr);
                if (r >= 0)
                        r = entry_image(c->s, x->name, mt, digest, size, NULL, &x->img, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Named entries still kept that hold image id. */
static size_t rm_names(const struct rm_ctx *c, const char *id)
{
        size_t k = 0;

        for (size_t i = 0; i < c->n; i++)
                if (c->e[i].fate == KEEP && c->e[i].name && rm_id(&c->e[i]) && streq(rm_id(&c->e[i]), id))
                        k++;
        return k;
}

static size_t repo_len(const char *name)
{
        const char *slash = strrchr(name, '/'), *at = strchr(name, '@'), *colon;
        size_t len = at ? (size_t) (at - name) : strlen(name);

        colon = memrchr(name, ':', len);
        if (colon && (!slash || colon > slash))
                len = (size_t) (colon - name);
        return len;
}

/* docker's isSingleReference: at most one tag, digest references all of its repository. */
static bool rm_single_reference(const struct rm_ctx *c, const char *id)
{
        const char *single = NULL, *canon = NULL, *first = NULL;
        bool canon_many = false;
        size_t k = rm_names(c, id);

        if (k <= 1)
                return k == 1;
        for (size_t i = 0; i < c->n; i++) {
                const struct rm_entry *x = &c->e[i];
                if (x->fate != KEEP || !x->name || !rm_id(x) || !streq(rm_id(x), id))
                        continue;
                if (!first)
                        first = x->name;
                if (strchr(x->name, '@')) {
                        if (canon && (repo_len(canon) != repo_len(x->name) ||
                                      strncmp(canon, x->name, repo_len(canon)) != 0))
                                canon_many = true;
                        canon = canon ? canon : x->name;
                } else if (!single)
                        single = x->name;
                else
                        return false;
        }
        if (!single)
                single = first;
        return canon && !canon_many && repo_len(canon) == repo_len(single) &&
               strncmp(canon, single, repo_len(single)) == 0;
}

static int rm_use(struct rm_ctx *c, const char *id, char **ret_container, struct moat_error **reterr)
{
        int r;

        *ret_container = NULL;
        if (!c->in_use)
                return MOAT_IMAGE_UNUSED;
        r = c->in_use(id, ret_container, c->userdata);
        if (r < 0)
                return moat_error_set(reterr, r, "checking whether containers use image %s", id);
        if (r > MOAT_IMAGE_USED_RUNNING)
                return moat_error_setx(reterr, -EINVAL, "image %s: invalid answer %d from the use check", id, r);
        if (r != MOAT_IMAGE_UNUSED && !*ret_container)
                return moat_error_setx(reterr, -EINVAL, "image %s: the use check named no container", id);
        return r;
}

/* Where `moat mount` has id's layer stack mounted (1 and *ret_path; 0:
 * nowhere, or never unpacked). Deleting the image would take the trees
 * from under the mount, and `moat unmount` could then not know it. */
static int rm_mounted(struct rm_ctx *c, const char *id, char **ret_path, struct moat_error **reterr)
{
        const struct moat_image *img = NULL;
        for (size_t i = 0; i < c->n && !img; i++)
                if (rm_id(&c->e[i]) && streq(rm_id(&c->e[i]), id))
                        img = c->e[i].img;
        if (!img || !img->config || img->config->n_diff_ids == 0)
                return 0;
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_close_ int layers_fd = -EBADF;
        int r = oci_chain_ids(img->config->diff_ids, img->config->n_diff_ids, &chain, reterr);
        if (r >= 0)
                r = moat_images_layers_dir(c->s, &layers_fd, reterr);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        size_t n = img->config->n_diff_ids;
        return moat_snapshot_mount_point(layers_fd, chain[n - 1], n == 1, ret_path, reterr);
}

/* docker's stringid.TruncateID: 12 hex digits, no algorithm. */
static void short_id(const char *id, char buf[static 13])
{
        const char *colon = id ? strchr(id, ':') : NULL;
        snprintf(buf, 13, "%s", colon ? colon + 1 : (id ? id : ""));
}

/* Mark every entry of id for dropping; plan what to report once collected. */
static int rm_delete(struct rm_ctx *c, const char *id, struct moat_images_delete_report *report,
                     struct moat_error **reterr)
{
        const struct moat_image *img = NULL;
        struct rm_plan *v, *p;
        int r;

        for (size_t i = 0; i < c->n; i++)
                if (rm_id(&c->e[i]) && streq(rm_id(&c->e[i]), id)) {
                        img = c->e[i].img;
                        if (c->e[i].fate == DROP)
                                continue;
                        if (c->e[i].fate == KEEP && c->e[i].name) {
                                r = report_untagged(report, c->e[i].name);
                                if (r < 0)
                                        return moat_error_set(reterr, r, "image %s", id);
                        }
                        c->e[i].fate = DROP;
                }
        if (!img)
                return 0;
        v = reallocarray(c->plans, c->n_plans + 1, sizeof(*v));
        if (!v)
                return moat_error_set(reterr, -ENOMEM, "image %s", id);
        c->plans = v;
        p = &v[c->n_plans++];
        *p = (struct rm_plan) { .id = strdup(id) };
        _cleanup_strv_free_ char **chain = NULL;
        r = oci_chain_ids(img->config->diff_ids, img->config->n_diff_ids, &chain, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "image %s", id);
        p->n = img->manifest->n_layers;
        p->chains = calloc(p->n + 1, sizeof(char *));
        p->blobs = calloc(p->n + 1, sizeof(char *));
        p->had = calloc(p->n + 1, sizeof(bool));
        if (!p->id || !p->chains || !p->blobs || !p->had)
                return moat_error_set(reterr, -ENOMEM, "image %s", id);
        for (size_t i = 0; i < p->n; i++) {
                size_t k = p->n - 1 - i;
                p->chains[i] = strdup(chain[k]);
                p->blobs[i] = strdup(img->manifest->layers[k].digest);
                if (!p->chains[i] || !p->blobs[i])
                        return moat_error_set(reterr, -ENOMEM, "image %s", id);
                p->had[i] = moat_store_has_blob(c->s, p->blobs[i]) > 0;
        }
        return 0;
}

/* Write the entries' fates to index.json. */
static int rm_apply(struct rm_ctx *c, struct moat_error **reterr)
{
        for (size_t i = c->n; i > 0; i--) {
                struct rm_entry *x = &c->e[i - 1];
                if (x->fate == UNNAME) {
                        entry_unname(x->json);
                        x->name = NULL;
                        /* one untagged entry of a digest is enough */
                        for (size_t k = 0; k < i - 1; k++)
                                if (c->e[k].fate != DROP && streq(entry_digest(c->e[k].json), entry_digest(x->json)))
                                        x->fate = DROP;
                }
        }
        for (size_t i = c->n; i > 0; i--)
                if (c->e[i - 1].fate == DROP)
                        (void) json_array_remove(c->manifests, i - 1);
        return index_save(c->s, c->root, reterr);
}

/* rm_apply, then collect and report what went. */
static int rm_commit(struct rm_ctx *c, struct moat_images_delete_report *report, struct moat_error **reterr)
{
        struct moat_images_gc_result gc = {};
        struct strset said = {};
        int r;

        r = rm_apply(c, reterr);
        if (r < 0)
                return r;
        r = gc_locked(c->s, &gc, reterr);
        if (r < 0)
                return r;
        report->reclaimed += gc.bytes_removed;
        for (size_t i = 0; i < c->n_plans && r >= 0; i++) {
                struct rm_plan *p = &c->plans[i];
                r = report_add(report, NULL, p->id);
                for (size_t k = 0; k < p->n && r >= 0; k++) {
                        if (!p->had[k] || moat_store_has_blob(c->s, p->blobs[k]) != 0 || strset_has(&said, p->chains[k]))
                                continue;
                        r = report_add(report, NULL, p->chains[k]);
                        if (r >= 0)
                                r = strset_add(&said, p->chains[k]);
                        if (r >= 0 && said.n > 1)
                                qsort(said.v, said.n, sizeof(char *), str_cmp);
                }
        }
        strset_clear(&said);
        if (r < 0)
                return moat_error_set(reterr, r, "images");
        return 0;
}

static int conflict(const char *id, bool hard, struct moat_error **reterr, const char *fmt, ...) MOAT_PRINTF(4, 5);
static int conflict(const char *id, bool hard, struct moat_error **reterr, const char *fmt, ...)
{
        char sid[13], msg[256];
        va_list ap;

        short_id(id, sid);
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return moat_error_setx(reterr, -EBUSY, "conflict: unable to delete %s (%s) - %s", sid,
                               hard ? "cannot be forced" : "must be forced", msg);
}

int moat_images_remove(struct moat_store *s, const char *text, const struct moat_images_remove_options *opts,
                       struct moat_images_delete_report *report, struct moat_error **reterr)
{
        _cleanup_(rm_ctx_done) struct rm_ctx c = { .s = s };
        _cleanup_close_ int lock_fd = -EBADF;
        _cleanup_image_ struct moat_image *found = NULL;
        _cleanup_free_ char *ctr = NULL, *id = NULL;
        bool force = opts && opts->force, quiet = false;
        size_t target = SIZE_MAX;
        int use = -1, r;

        if (opts) {
                c.in_use = opts->in_use;
                c.userdata = opts->userdata;
        }
        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &lock_fd, reterr);
        if (r < 0)
                return r;
        r = moat_images_lookup(s, text, NULL, &found, reterr);
        if (r < 0 && r != -ENOENT && r != -ENOTUNIQ && r != -EINVAL && r != -ENOMEM) {
                /* A name of something that is not a runnable image (an artifact, a broken
                 * image): only the name goes, and what it alone reached. */
                _cleanup_free_ char *name = NULL;
                if (normalise_reference(text, NULL, &name, NULL) < 0)
                        return r;
                int k = rm_load(&c, NULL);
                for (size_t i = 0; k >= 0 && i < c.n; i++)
                        if (c.e[i].name && streq(c.e[i].name, name))
                                target = i;
                if (target == SIZE_MAX)
                        return r;
                if (reterr) {
                        moat_error_free(*reterr);
                        *reterr = NULL;
                }
                r = report_untagged(report, name);
                if (r < 0)
                        return moat_error_set(reterr, r, "rmi %s", text);
                c.e[target].fate = DROP;
                return rm_commit(&c, report, reterr);
        }
        if (r < 0)
                return r;
        r = rm_load(&c, reterr);
        if (r < 0)
                return r;
        id = strdup(found->config_digest);
        if (!id)
                return moat_error_set(reterr, -ENOMEM, "rmi %s", text);
        if (!found->by_id) {
                for (size_t i = 0; i < c.n; i++)
                        if (c.e[i].name && streq(c.e[i].name, found->reference))
                                target = i;
                if (target == SIZE_MAX) /* name@digest without an entry: as by ID */
                        found->by_id = true;
        }

        if (!found->by_id) {
                if (!force && rm_names(&c, id) == 1) {
                        use = rm_use(&c, id, &ctr, reterr);
                        if (use < 0)
                                return use;
                        if (use != MOAT_IMAGE_UNUSED) {
                                char sc[13], si[13];
                                short_id(ctr, sc);
                                short_id(id, si);
                                return moat_error_setx(reterr, -EBUSY,
                                                       "conflict: unable to remove repository reference \"%s\" "
                                                       "(must force) - container %s is using its referenced image %s",
                                                       text, sc, si);
                        }
                }
                r = report_untagged(report, c.e[target].name);
                if (r < 0)
                        return moat_error_set(reterr, r, "rmi %s", text);
                c.e[target].fate = DROP;
                if (rm_names(&c, id) > 0) {
                        r = rm_apply(&c, reterr);
                        return r < 0 ? moat_error_wrap(reterr, r, "rmi %s", text) : 0;
                }
                quiet = true;
        } else if (rm_single_reference(&c, id)) {
                use = rm_use(&c, id, &ctr, reterr);
                if (use < 0)
                        return use;
                if (use == MOAT_IMAGE_USED_RUNNING)
                        return conflict(id, true, reterr, "image is being used by running container %s", ctr);
                if (use == MOAT_IMAGE_USED_STOPPED && !force)
                        return conflict(id, false, reterr, "image is being used by stopped container %s", ctr);
                for (size_t i = 0; i < c.n; i++)
                        if (c.e[i].fate == KEEP && c.e[i].name && rm_id(&c.e[i]) && streq(rm_id(&c.e[i]), id)) {
                                r = report_untagged(report, c.e[i].name);
                                if (r < 0)
                                        return moat_error_set(reterr, r, "rmi %s", text);
                                c.e[i].fate = DROP;
                        }
        }

        /* docker's imageDeleteHelper */
        if (use < 0) {
                use = rm_use(&c, id, &ctr, reterr);
                if (use < 0)
                        return use;
        }
        _cleanup_free_ char *mounted_at = NULL;
        int mounted = use == MOAT_IMAGE_USED_RUNNING ? 0 : rm_mounted(&c, id, &mounted_at, reterr);
        if (mounted < 0)
                return mounted;
        r = 0;
        if (use == MOAT_IMAGE_USED_RUNNING)
                r = conflict(id, true, quiet ? NULL : reterr, "image is being used by running container %s", ctr);
        else if (mounted > 0)
                r = conflict(id, true, quiet ? NULL : reterr, "image is mounted on %s (moat unmount it first)",
                             mounted_at);
        else if (!force && rm_names(&c, id) > 0)
                r = conflict(id, false, quiet ? NULL : reterr, "image is referenced in multiple repositories");
        else if (!force && use == MOAT_IMAGE_USED_STOPPED)
                r = conflict(id, false, quiet ? NULL : reterr, "image is being used by stopped container %s", ctr);
        if (r < 0) {
                if (!quiet)
                        return r;
                /* The image stays, without a name: keep the untagged entry the untag left. */
                c.e[target].fate = UNNAME;
                return rm_commit(&c, report, reterr);
        }
        r = rm_delete(&c, id, report, reterr);
        if (r < 0)
                return r;
        r = rm_commit(&c, report, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "rmi %s", text);
        return 0;
}

int moat_images_prune(struct moat_store *s, const struct moat_images_prune_options *opts,
                      struct moat_images_delete_report *report, struct moat_error **reterr)
{
        _cleanup_(rm_ctx_done) struct rm_ctx c = { .s = s };
        _cleanup_close_ int lock_fd = -EBADF;
        int r;

        if (opts) {
                c.in_use = opts->in_use;
                c.userdata = opts->userdata;
        }
        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_EX, &lock_fd, reterr);
        if (r < 0)
                return r;
        r = rm_load(&c, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "prune");
        for (size_t i = 0; i < c.n; i++) {
                _cleanup_free_ char *ctr = NULL, *id = NULL;
                const char *eid = rm_id(&c.e[i]);

                if (c.e[i].fate != KEEP || !eid)
                        continue;
                if (!(opts && opts->all) && rm_names(&c, eid) > 0)
                        continue;
                id = strdup(eid);
                if (!id)
                        return moat_error_set(reterr, -ENOMEM, "prune");
                r = rm_use(&c, id, &ctr, reterr);
                if (r < 0)
                        return r;
                if (r != MOAT_IMAGE_UNUSED)
                        continue;
                _cleanup_free_ char *mounted_at = NULL;
                r = rm_mounted(&c, id, &mounted_at, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "prune");
                if (r > 0)
                        continue;
                r = rm_delete(&c, id, report, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "prune");
        }
        r = rm_commit(&c, report, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "prune");
        return 0;
}

/* ---- verify ---- */

struct vref {
        char *digest;
        char *who;
};

struct vctx {
        struct moat_store *s;
        struct vref *refs;        /* who reaches each blob */
        size_t n_refs;
        struct strset corrupt;    /* sorted */
        struct strset missing;
        struct vref *unreadable;  /* digest, problem */
        size_t n_unreadable;
        struct strset chains;
};

static int vref_add(struct vref **v, size_t *n, const char *digest, const char *who)
{
        struct vref *x = reallocarray(*v, *n + 1, sizeof(**v));

        if (!x)
                return -ENOMEM;
        *v = x;
        x[*n] = (struct vref) { .digest = strdup(digest), .who = strdup(who) };
        (*n)++;
        return x[*n - 1].digest && x[*n - 1].who ? 0 : -ENOMEM;
}

static void vrefs_free(struct vref *v, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(v[i].digest);
                free(v[i].who);
        }
        free(v);
}

static int vref_cmp(const void *a, const void *b)
{
        return strcmp(((const struct vref *) a)->digest, ((const struct vref *) b)->digest);
}

/* Who reaches digest, "; "-joined (the first few), or NULL. refs is sorted. */
static char *v_referrers(const struct vctx *c, const char *digest)
{
        struct vref key = { .digest = (char *) digest };
        const struct vref *hit = c->n_refs ? bsearch(&key, c->refs, c->n_refs, sizeof(*c->refs), vref_cmp) : NULL;
        char *out = NULL;
        size_t first, last, shown = 0;

        if (!hit)
                return NULL;
        first = last = (size_t) (hit - c->refs);
        while (first > 0 && streq(c->refs[first - 1].digest, digest))
                first--;
        while (last + 1 < c->n_refs && streq(c->refs[last + 1].digest, digest))
                last++;
        for (size_t i = first; i <= last; i++) {
                char *next = NULL;
                if (shown == 4) {
                        if (asprintf(&next, "%s; and %zu more", out, last - i + 1) < 0)
                                break;
                        free(out);
                        return next;
                }
                if (asprintf(&next, "%s%s%s", out ? out : "", out ? "; " : "", c->refs[i].who) < 0)
                        break;
                free(out);
                out = next;
                shown++;
        }
        return out;
}

static int v_walk(struct vctx *c, const char *who, const char *mt, const char *digest, int64_t size, bool child,
                  unsigned depth, struct moat_error **reterr)
{
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int r;

        if (vref_add(&c->refs, &c->n_refs, digest, who) < 0)
                return moat_error_set(reterr, -ENOMEM, "verify");
        r = moat_store_has_blob(c->s, digest);
        if (r < 0)
                return moat_error_set(reterr, r, "blob %s", digest);
        if (r == 0) {
                /* an index's manifests for other platforms may be absent */
                if (!child && strset_add(&c->missing, digest) < 0)
                        return moat_error_set(reterr, -ENOMEM, "verify");
                return 0;
        }
        if (strset_has(&c->corrupt, digest) || (!is_index_type(mt) && !is_manifest_type(mt)))
                return 0;
        if (depth > MOAT_IMAGES_MAX_NESTING)
                return vref_add(&c->unreadable, &c->n_unreadable, digest, "indexes nested too deep") < 0 ? -ENOMEM : 0;
        r = read_doc(c->s, digest, size, mt, &doc, &err);
        if (r == -ENOMEM)
                return moat_error_set(reterr, r, "verify");
        if (r < 0)
                return vref_add(&c->unreadable, &c->n_unreadable, digest, err ? err->msg : strerror(-r)) < 0
                               ? moat_error_set(reterr, -ENOMEM, "verify")
                               : 0;
        if (doc->kind == OCI_DOC_INDEX) {
                for (size_t i = 0; i < doc->index.n_manifests; i++) {
                        const struct oci_descriptor *d = &doc->index.manifests[i];
                        _cleanup_free_ char *w = NULL;
                        if (asprintf(&w, "%s (manifest of index %s)", who, digest) < 0)
                                return moat_error_set(reterr, -ENOMEM, "verify");
                        r = v_walk(c, w, d->media_type, d->digest, d->size, true, depth + 1, reterr);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        if (doc->kind != OCI_DOC_MANIFEST)
                return 0;

        const struct oci_manifest *m = &doc->manifest;
        _cleanup_free_ char *w = NULL;
        if (asprintf(&w, "%s (config of manifest %s)", who, digest) < 0 ||
            vref_add(&c->refs, &c->n_refs, m->config.digest, w) < 0)
                return moat_error_set(reterr, -ENOMEM, "verify");
        for (size_t i = 0; i < m->n_layers; i++) {
                _cleanup_free_ char *lw = NULL;
                if (asprintf(&lw, "%s (layer %zu of manifest %s)", who, i + 1, digest) < 0 ||
                    vref_add(&c->refs, &c->n_refs, m->layers[i].digest, lw) < 0)
                        return moat_error_set(reterr, -ENOMEM, "verify");
                r = moat_store_has_blob(c->s, m->layers[i].digest);
                if (r == 0 && strset_add(&c->missing, m->layers[i].digest) < 0)
                        return moat_error_set(reterr, -ENOMEM, "verify");
        }
        r = moat_store_has_blob(c->s, m->config.digest);
        if (r == 0 && strset_add(&c->missing, m->config.digest) < 0)
                return moat_error_set(reterr, -ENOMEM, "verify");
        if (r <= 0 || m->artifact)
                return 0;
        /* A corrupt config is reported by its hash; it is still read (when it
         * parses) for its ChainIDs, so its trees are not called strays too. */
        bool corrupt = strset_has(&c->corrupt, m->config.digest);

        _cleanup_oci_image_doc_ struct oci_image_doc *cfg = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_error_ struct moat_error *cerr = NULL;
        if (corrupt) {
                _cleanup_close_ int fd = -EBADF;
                _cleanup_free_ char *buf = NULL;
                size_t len;
                r = moat_store_open_blob(c->s, m->config.digest, false, &fd, &cerr);
                if (r >= 0)
                        r = read_full_fd(fd, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len);
                if (r >= 0)
                        r = oci_image_doc_parse(buf, len, m->config.media_type, &cfg, &cerr);
        } else
                r = read_doc(c->s, m->config.digest, m->config.size, m->config.media_type, &cfg, &cerr);
        if (r >= 0 && cfg->kind == OCI_DOC_CONFIG)
                r = oci_chain_ids(cfg->config.diff_ids, cfg->config.n_diff_ids, &chain, &cerr);
        if (r == -ENOMEM)
                return moat_error_set(reterr, r, "verify");
        if (r < 0 && corrupt)
                return 0;
        if (r < 0)
                return vref_add(&c->unreadable, &c->n_unreadable, m->config.digest,
                                cerr ? cerr->msg : strerror(-r)) < 0
                               ? moat_error_set(reterr, -ENOMEM, "verify")
                               : 0;
        for (size_t i = 0; chain && chain[i]; i++)
                if (strset_add(&c->chains, chain[i]) < 0)
                        return moat_error_set(reterr, -ENOMEM, "verify");
        return 0;
}

struct v_report_ctx {
        struct vctx *c;
        moat_images_verify_fn report;
        void *userdata;
        size_t problems;
};

static void v_issue(struct v_report_ctx *rc, const char *subject, const char *problem, const char *digest_for_refs)
{
        _cleanup_free_ char *who = digest_for_refs ? v_referrers(rc->c, digest_for_refs) : NULL;
        struct moat_images_verify_issue issue = { .subject = subject, .problem = problem, .referenced_by = who };

        rc->problems++;
        if (rc->report)
                rc->report(&issue, rc->userdata);
}

static void v_corrupt_cb(const char *digest, const char *problem, void *userdata)
{
        struct vctx *c = userdata;

        if (strset_add(&c->corrupt, digest) >= 0 && strset_add(&c->corrupt, problem) >= 0)
                return;
}

static void strset_sort_unique(struct strset *set)
{
        size_t k = 0;

        if (set->n > 1)
                qsort(set->v, set->n, sizeof(char *), str_cmp);
        for (size_t i = 0; i < set->n; i++) {
                if (k > 0 && streq(set->v[k - 1], set->v[i])) {
                        free(set->v[i]);
                        continue;
                }
                set->v[k++] = set->v[i];
        }
        set->n = k;
}

static int v_layers(struct vctx *c, struct v_report_ctx *rc, size_t *ret_trees, struct moat_error **reterr)
{
        _cleanup_close_ int layers_fd = -EBADF;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        size_t trees = 0;
        int fd, r;

        r = moat_images_layers_dir(c->s, &layers_fd, reterr);
        if (r < 0)
                return r;
        fd = openat(layers_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || !(d = fdopendir(fd))) {
                r = moat_error_set(reterr, errno, "opening the store's layers/");
                safe_close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                char subject[300];
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, "..") || startswith(de->d_name, LAYER_TMP_PREFIX))
                        continue;
                snprintf(subject, sizeof(subject), "layers/%s", de->d_name);
                /* The mount points' tree of a layer (snapshot.h) goes with it. */
                char base[MOAT_SNAPSHOT_ID_MAX + 1];
                bool init = init_layer_base(de->d_name, base);
                if (!init)
                        trees++;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
                    (!init && oci_digest_validate(de->d_name, NULL) < 0))
                        v_issue(rc, subject, "not a layer tree: the name is not a ChainID or it is not a directory",
                                NULL);
                else if (!strset_has(&c->chains, init ? base : de->d_name))
                        v_issue(rc, subject, "stray layer tree: no image in the store has this ChainID", NULL);
        }
        if (errno != 0)
                return moat_error_set(reterr, errno, "reading the store's layers/");
        *ret_trees = trees;
        return 0;
}

int moat_images_verify(struct moat_store *s, moat_images_verify_fn report, void *userdata,
                       struct moat_images_verify_result *ret, struct moat_error **reterr)
{
        _cleanup_close_ int images_lock = -EBADF, layers_lock = -EBADF;
        _cleanup_json_ *root = NULL;
        struct vctx c = { .s = s };
        struct v_report_ctx rc = { .c = &c, .report = report, .userdata = userdata };
        struct moat_store_verify_result sres = {};
        struct strset corrupt_pairs = {};
        json_t *manifests;
        size_t trees = 0;
        int r;

        r = moat_images_store_lock(s, IMAGES_LOCK, LOCK_SH, &images_lock, reterr);
        if (r >= 0)
                r = moat_images_store_lock(s, LAYERS_LOCK, LOCK_SH, &layers_lock, reterr);
        if (r >= 0)
                r = moat_store_verify(s, v_corrupt_cb, &c, &sres, reterr);
        if (r >= 0) {
                /* v_corrupt_cb stored digest, problem pairs: keep the pairs, index the digests */
                corrupt_pairs = c.corrupt;
                c.corrupt = (struct strset) {};
                for (size_t i = 0; i + 1 < corrupt_pairs.n && r >= 0; i += 2)
                        r = strset_add(&c.corrupt, corrupt_pairs.v[i]);
                if (r < 0)
                        r = moat_error_set(reterr, r, "verify");
                strset_sort_unique(&c.corrupt);
        }
        if (r >= 0)
                r = index_load(s, &root, &manifests, reterr);
        for (size_t i = 0; r >= 0 && i < json_array_size(manifests); i++) {
                json_t *e = json_array_get(manifests, i);
                const char *mt, *digest, *name = entry_ref_name(e);
                _cleanup_free_ char *who = NULL;
                int64_t size;

                r = entry_fields(e, i, &mt, &digest, &size, reterr);
                if (r < 0)
                        break;
                if (name)
                        who = familiar_dup(name);
                else if (asprintf(&who, "untagged entry %s", digest) < 0)
                        who = NULL;
                if (!who) {
                        r = moat_error_set(reterr, -ENOMEM, "verify");
                        break;
                }
                r = v_walk(&c, who, mt, digest, size, false, 0, reterr);
        }
        if (r >= 0) {
                if (c.n_refs > 1)
                        qsort(c.refs, c.n_refs, sizeof(*c.refs), vref_cmp);
                strset_sort_unique(&c.missing);
                strset_sort_unique(&c.chains);
                for (size_t i = 0; i + 1 < corrupt_pairs.n; i += 2)
                        v_issue(&rc, corrupt_pairs.v[i], corrupt_pairs.v[i + 1], corrupt_pairs.v[i]);
                for (size_t i = 0; i < c.missing.n; i++)
                        v_issue(&rc, c.missing.v[i], "missing: referenced but not in the store", c.missing.v[i]);
                for (size_t i = 0; i < c.n_unreadable; i++)
                        v_issue(&rc, c.unreadable[i].digest, c.unreadable[i].who, c.unreadable[i].digest);
                r = v_layers(&c, &rc, &trees, reterr);
        }
        vrefs_free(c.refs, c.n_refs);
        vrefs_free(c.unreadable, c.n_unreadable);
        strset_clear(&c.corrupt);
        strset_clear(&c.missing);
        strset_clear(&c.chains);
        strset_clear(&corrupt_pairs);
        if (r < 0)
                return r;
        if (ret)
                *ret = (struct moat_images_verify_result) {
                        .blobs = sres.blobs, .bytes = sres.bytes, .layer_trees = trees, .problems = rc.problems,
                };
        return rc.problems > INT_MAX ? INT_MAX : (int) rc.problems;
}
