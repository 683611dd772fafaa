/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit test of the image database (src/image/images.c): a tiny image made
 * here (gzip tar layers written with libarchive, config and manifest JSON,
 * an index of two platforms) is put into a fresh store, tagged, listed,
 * resolved, unpacked into the layer cache and garbage-collected.
 */

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/images.h"
#include "image/store.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-images-XXXXXX";

struct buf {
        char *data;
        size_t size, cap;
};

static la_ssize_t buf_write(struct archive *a, void *userdata, const void *p, size_t n)
{
        struct buf *b = userdata;
        (void) a;
        if (b->size + n > b->cap) {
                size_t cap = (b->size + n) * 2;
                char *d = realloc(b->data, cap);
                if (!d)
                        return -1;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->size, p, n);
        b->size += n;
        return (la_ssize_t) n;
}

static void sha256_hex(const void *p, size_t n, char out[80])
{
        struct sha256_ctx c;
        uint8_t d[SHA256_DIGEST_SIZE];
        sha256_init(&c);
        sha256_update(&c, n, p);
        sha256_digest(&c, sizeof(d), d);
        int o = snprintf(out, 80, "sha256:");
        for (size_t i = 0; i < sizeof(d); i++)
                o += snprintf(out + o, (size_t) (80 - o), "%02x", d[i]);
}

/* A tar of one directory "etc" and one file etc/<name> holding content. */
static bool make_tar(const char *name, const char *content, struct buf *out)
{
        struct archive *a = archive_write_new();
        char path[128];
        bool good = false;

        *out = (struct buf) {};
        if (archive_write_set_format_pax(a) != ARCHIVE_OK || archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_open2(a, out, NULL, buf_write, NULL, NULL) != ARCHIVE_OK)
                goto out;
        for (int i = 0; i < 2; i++) {
                struct archive_entry *e = archive_entry_new();
                size_t size = i ? strlen(content) : 0;
                snprintf(path, sizeof(path), "etc/%s", name);
                archive_entry_set_pathname(e, i ? path : "etc/");
                archive_entry_set_filetype(e, i ? AE_IFREG : AE_IFDIR);
                archive_entry_set_perm(e, i ? 0644 : 0755);
                archive_entry_set_size(e, (la_int64_t) size);
                archive_entry_set_mtime(e, 1600000000, 0);
                int r = archive_write_header(a, e);
                if (r == ARCHIVE_OK && size && archive_write_data(a, content, size) != (la_ssize_t) size)
                        r = ARCHIVE_FATAL;
                archive_entry_free(e);
                if (r != ARCHIVE_OK)
                        goto out;
        }
        good = archive_write_close(a) == ARCHIVE_OK;
out:
        archive_write_free(a);
        return good;
}

static bool gzip_buf(const struct buf *tar, struct buf *out)
{
        struct archive *a = archive_write_new();
        bool good = false;

        *out = (struct buf) {};
        if (archive_write_set_format_raw(a) != ARCHIVE_OK || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
            archive_write_open2(a, out, NULL, buf_write, NULL, NULL) != ARCHIVE_OK)
                goto out;
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, "data");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t) tar->size);
        int r = archive_write_header(a, e);
        archive_entry_free(e);
        if (r != ARCHIVE_OK || archive_write_data(a, tar->data, tar->size) != (la_ssize_t) tar->size)
                goto out;
        good = archive_write_close(a) == ARCHIVE_OK;
out:
        archive_write_free(a);
        return good;
}

struct layer {
        char digest[80];   /* of the gzip blob */
        char diff_id[80];  /* of the tar */
        size_t size;
};

static bool put_layer(struct moat_store *s, const char *name, const char *content, struct layer *l)
{
        struct buf tar, gz;
        _cleanup_free_ char *digest = NULL;
        bool good = make_tar(name, content, &tar) && gzip_buf(&tar, &gz);

        if (!good)
                return false;
        sha256_hex(tar.data, tar.size, l->diff_id);
        sha256_hex(gz.data, gz.size, l->digest);
        l->size = gz.size;
        good = moat_store_put(s, gz.data, gz.size, l->digest, &digest, NULL) >= 0;
        free(tar.data);
        free(gz.data);
        return good;
}

/* Put a JSON text; fills its descriptor fields. */
static bool put_doc(struct moat_store *s, const char *text, char digest[80], int64_t *size)
{
        _cleanup_free_ char *d = NULL;

        sha256_hex(text, strlen(text), digest);
        *size = (int64_t) strlen(text);
        return moat_store_put(s, text, strlen(text), digest, &d, NULL) >= 0;
}

struct image {
        char config[80], manifest[80];
        int64_t config_size, manifest_size;
};

/* extra: more config fields ("\"author\":\"x\","), may be "" */
static bool put_image_x(struct moat_store *s, const char *arch, const char *extra, const struct layer *layers,
                        const char *const *diff_ids, size_t n, struct image *img)
{
        char text[4096];
        int o;

        o = snprintf(text, sizeof(text),
                     "{%s\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[", extra,
                     arch);
        for (size_t i = 0; i < n; i++)
                o += snprintf(text + o, sizeof(text) - (size_t) o, "%s\"%s\"", i ? "," : "", diff_ids[i]);
        snprintf(text + o, sizeof(text) - (size_t) o, "]}}");
        if (!put_doc(s, text, img->config, &img->config_size))
                return false;
        o = snprintf(text, sizeof(text),
                     "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_MANIFEST "\",\"config\":{\"mediaType\":\"" OCI_MT_CONFIG
                     "\",\"digest\":\"%s\",\"size\":%lld},\"layers\":[",
                     img->config, (long long) img->config_size);
        for (size_t i = 0; i < n; i++)
                o += snprintf(text + o, sizeof(text) - (size_t) o,
                              "%s{\"mediaType\":\"" OCI_MT_LAYER_TAR_GZIP "\",\"digest\":\"%s\",\"size\":%zu}",
                              i ? "," : "", layers[i].digest, layers[i].size);
        snprintf(text + o, sizeof(text) - (size_t) o, "]}");
        return put_doc(s, text, img->manifest, &img->manifest_size);
}

static bool put_image(struct moat_store *s, const char *arch, const struct layer *layers, const char *const *diff_ids,
                      size_t n, struct image *img)
{
        return put_image_x(s, arch, "", layers, diff_ids, n, img);
}

static int tag(struct moat_store *s, const char *ref, const char *mt, const char *digest, int64_t size)
{
        struct oci_descriptor d = { .media_type = (char *) mt, .digest = (char *) digest, .size = size };
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_images_tag(s, ref, &d, &err);
        if (r < 0)
                printf("# tag %s: %s\n", ref, err->msg);
        return r;
}

static bool layer_file_is(int store_fd, const char *chain, const char *file, const char *want)
{
        char path[256];
        _cleanup_free_ char *got = NULL;
        size_t n;

        snprintf(path, sizeof(path), "layers/%s/etc/%s", chain, file);
        if (read_full_file_at(store_fd, path, 4096, &got, &n) < 0)
                return false;
        return streq(got, want);
}

/* Entries of <store>/layers other than . and .. */
static int count_layer_dirs(int store_fd, bool tmp_only)
{
        int fd = openat(store_fd, "layers", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
                    (!tmp_only || startswith(de->d_name, ".tmp-")))
                        n++;
        return n;
}

static size_t count_entries(struct moat_store *s, const char *digest, bool named)
{
        struct moat_image_entry *v = NULL;
        size_t n = 0, k = 0;

        if (moat_images_entries(s, NULL, &v, &n, NULL) < 0)
                return SIZE_MAX;
        for (size_t i = 0; i < n; i++)
                if (streq(v[i].digest, digest) && !v[i].reference == !named)
                        k++;
        moat_image_entries_free(v, n);
        return k;
}

static struct layer la, lb;
static struct image ia, ib;

static void test_ids_and_dangling(struct moat_store *s)
{
        _cleanup_error_ struct moat_error *err = NULL;
        const char *ids[1];
        char text[200];

        ok(put_layer(s, "a", "layer a\n", &la), "layer a stored");
        ids[0] = la.diff_id;
        ok(put_image_x(s, "amd64", "\"author\":\"a\",", &la, ids, 1, &ia), "image A stored");
        is_int(tag(s, "localhost/a:1", OCI_MT_MANIFEST, ia.manifest, ia.manifest_size), 0, "tag A as a:1");

        {
                _cleanup_image_ struct moat_image *x = NULL, *y = NULL, *z = NULL, *w = NULL;
                is_int(moat_images_lookup(s, "localhost/a:1", NULL, &x, NULL), 0, "lookup by reference");
                ok(x && !x->by_id && streq(x->config_digest, ia.config) && streq(x->target_digest, ia.manifest) &&
                           x->target_size == ia.manifest_size && streq(x->target_media_type, OCI_MT_MANIFEST),
                   "by reference: the entry's descriptor, not by ID");
                is_int(moat_images_lookup(s, ia.config, NULL, &y, NULL), 0, "lookup by full ID sha256:<hex>");
                ok(y && y->by_id && streq(y->reference, ia.config) && streq(y->target_digest, ia.manifest),
                   "by ID: the image of the entry");
                is_int(moat_images_lookup(s, ia.config + 7, NULL, &z, NULL), 0, "lookup by bare 64 hex");
                snprintf(text, sizeof(text), "%.12s", ia.config + 7);
                is_int(moat_images_lookup(s, text, NULL, &w, NULL), 0, "lookup by a 12-hex prefix");
                ok(w && w->by_id && streq(w->config_digest, ia.config), "the prefix finds A");
        }
        {
                _cleanup_image_ struct moat_image *x = NULL;
                _cleanup_error_ struct moat_error *e = NULL;
                snprintf(text, sizeof(text), "sha256:%.5s", ia.config + 7);
                is_int(moat_images_lookup(s, text, NULL, &x, NULL), 0, "lookup by sha256:<prefix>");
                is_int(moat_images_lookup(s, "localhost/nothere:1", NULL, &x, &e), -ENOENT, "unknown name");
                ok(e && strstr(e->msg, "No such image: localhost/nothere:1"), "named in the error: %s",
                   e ? e->msg : "");
        }

        /* an ambiguous prefix: another image whose ID starts with A's first digit */
        {
                struct image other = {};
                char extra[64];
                bool found = false;
                for (int i = 0; i < 400 && !found; i++) {
                        snprintf(extra, sizeof(extra), "\"author\":\"x%d\",", i);
                        found = put_image_x(s, "amd64", extra, &la, ids, 1, &other) && other.config[7] == ia.config[7];
                }
                ok(found, "an image with the same first ID digit");
                is_int(tag(s, "localhost/same-digit:1", OCI_MT_MANIFEST, other.manifest, other.manifest_size), 0,
                       "tagged");
                _cleanup_image_ struct moat_image *x = NULL;
                _cleanup_error_ struct moat_error *e = NULL;
                snprintf(text, sizeof(text), "%c", ia.config[7]);
                is_int(moat_images_lookup(s, text, NULL, &x, &e), -ENOTUNIQ, "a one-digit prefix is ambiguous");
                ok(e && strstr(e->msg, "multiple IDs found with provided prefix") && strstr(e->msg, text),
                   "docker's message naming the prefix: %s", e ? e->msg : "");
                is_int(moat_images_untag(s, "localhost/same-digit:1", NULL), 0, "untag it");
                struct moat_images_gc_result g;
                is_int(moat_images_gc(s, &g, NULL), 0, "and collect it");
        }

        /* a moved tag leaves the image it held dangling */
        ok(put_image_x(s, "amd64", "\"author\":\"b\",", &la, ids, 1, &ib), "image B stored (same layer)");
        is_int(tag(s, "localhost/a:1", OCI_MT_MANIFEST, ib.manifest, ib.manifest_size), 0, "move a:1 to B");
        is_int(count_entries(s, ia.manifest, false), 1, "A stays as an untagged entry");
        is_int(count_entries(s, ib.manifest, true), 1, "B is named");
        {
                _cleanup_free_ char *idx = NULL;
                size_t n;
                snprintf(text, sizeof(text), "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}", OCI_MT_MANIFEST,
                         ia.manifest, (long long) ia.manifest_size);
                ok(read_full_file_at(moat_store_dir_fd(s), "index.json", 1 << 20, &idx, &n) >= 0 && strstr(idx, text),
                   "index.json holds A without annotations");
        }
        {
                struct moat_image_entry *v = NULL;
                size_t n = 0;
                is_int(moat_images_entries(s, NULL, &v, &n, &err), 0, "entries");
                ok(n == 2 && v[0].reference && streq(v[0].reference, "localhost/a:1") && streq(v[0].id, ib.config) &&
                           v[0].tag_time && !v[1].reference && streq(v[1].id, ia.config) &&
                           v[1].image_size == (int64_t) la.size,
                   "named first (with its tag time), then untagged; IDs are config digests");
                moat_image_entries_free(v, n);
                struct moat_images_gc_result g;
                is_int(moat_images_gc(s, &g, NULL), 0, "gc");
                ok(g.blobs_removed == 0 && moat_store_has_blob(s, ia.config) == 1, "gc keeps the dangling image");
        }
        struct oci_descriptor d = { .media_type = (char *) OCI_MT_MANIFEST, .digest = ia.manifest,
                                    .size = ia.manifest_size };
        is_int(moat_images_add_untagged(s, &d, NULL), 0, "add_untagged of an image already there");
        is_int(count_entries(s, ia.manifest, false), 1, "no second entry");
        is_int(tag(s, "localhost/a:2", OCI_MT_MANIFEST, ia.manifest, ia.manifest_size), 0, "name A again");
        is_int(count_entries(s, ia.manifest, false), 0, "its untagged entry went");
}

struct use {
        const char *id;
        int answer;
        int calls;
};

static int use_cb(const char *image_id, char **ret_container, void *userdata)
{
        struct use *u = userdata;

        u->calls++;
        if (!streq(image_id, u->id))
                return MOAT_IMAGE_UNUSED;
        *ret_container = strdup("cafe0123456789abcdef");
        return u->answer;
}

static void test_remove_rules(struct moat_store *s)
{
        struct use u = { .id = ia.config, .answer = MOAT_IMAGE_USED_STOPPED };
        struct moat_images_remove_options o = { .in_use = use_cb, .userdata = &u };
        struct moat_images_delete_report rep = {};

        /* A is named localhost/a:2 only, B localhost/a:1 */
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_images_remove(s, "localhost/a:2", &o, &rep, &e), -EBUSY,
                       "the only name of an image a container uses: refused");
                ok(e && streq(e->msg, "conflict: unable to remove repository reference \"localhost/a:2\" (must force) "
                                      "- container cafe01234567 is using its referenced image ")
                           ? true
                           : e && strstr(e->msg, "(must force) - container cafe01234567 is using its referenced image"),
                   "docker's message: %s", e ? e->msg : "");
                is_int(rep.n, 0, "nothing done");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                u.answer = MOAT_IMAGE_USED_RUNNING;
                is_int(moat_images_remove(s, ia.config, &o, &rep, &e), -EBUSY, "by ID, running container: refused");
                ok(e && strstr(e->msg, "(cannot be forced) - image is being used by running container cafe01234567"),
                   "docker's message: %s", e ? e->msg : "");
                o.force = true;
                moat_error_free(e);
                e = NULL;
                is_int(moat_images_remove(s, ia.config, &o, &rep, &e), -EBUSY, "even with force");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                u.answer = MOAT_IMAGE_USED_STOPPED;
                o.force = false;
                is_int(moat_images_remove(s, ia.config, &o, &rep, &e), -EBUSY, "by ID, stopped container: refused");
                ok(e && strstr(e->msg, "(must be forced) - image is being used by stopped container cafe01234567"),
                   "docker's message: %s", e ? e->msg : "");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                u.answer = MOAT_IMAGE_USED_RUNNING;
                o.force = true;
                is_int(moat_images_remove(s, "localhost/a:2", &o, &rep, &e), 0,
                       "force: the name goes though a running container uses the image");
                ok(rep.n == 1 && streq(rep.items[0].untagged, "localhost/a:2"), "only Untagged");
                is_int(count_entries(s, ia.manifest, false), 1, "the image stays, untagged");
                ok(moat_store_has_blob(s, ia.config) == 1, "its blobs stay");
                moat_images_delete_report_clear(&rep);
        }
        /* B with three names */
        is_int(tag(s, "localhost/b:1", OCI_MT_MANIFEST, ib.manifest, ib.manifest_size), 0, "B as b:1");
        is_int(tag(s, "localhost/c:1", OCI_MT_MANIFEST, ib.manifest, ib.manifest_size), 0, "B as c:1");
        {
                _cleanup_error_ struct moat_error *e = NULL;
                char sid[13];
                snprintf(sid, sizeof(sid), "%.12s", ib.config + 7);
                o.force = false;
                is_int(moat_images_remove(s, ib.config + 7, &o, &rep, &e), -EBUSY, "by ID, several names: refused");
                ok(e && strstr(e->msg, "conflict: unable to delete ") && strstr(e->msg, sid) &&
                           strstr(e->msg, "(must be forced) - image is referenced in multiple repositories"),
                   "docker's message: %s", e ? e->msg : "");
                is_int(rep.n, 0, "nothing done");
        }
        o.force = true;
        is_int(moat_images_remove(s, ib.config, &o, &rep, NULL), 0, "by ID with force");
        ok(rep.n == 4 && streq(rep.items[0].untagged, "localhost/a:1") && streq(rep.items[1].untagged, "localhost/b:1") &&
                   streq(rep.items[2].untagged, "localhost/c:1") && streq(rep.items[3].deleted, ib.config),
           "three Untagged, Deleted: the ID; the shared layer is not deleted");
        ok(moat_store_has_blob(s, ib.manifest) == 0 && moat_store_has_blob(s, ib.config) == 0 &&
                   moat_store_has_blob(s, la.digest) == 1,
           "B's blobs went, the layer A shares stayed");
        moat_images_delete_report_clear(&rep);
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_images_remove(s, "localhost/b:1", NULL, &rep, &e), -ENOENT, "removing it again");
                ok(e && strstr(e->msg, "No such image: localhost/b:1"), "No such image: %s", e ? e->msg : "");
        }
}

static void test_prune(struct moat_store *s)
{
        struct use u = { .id = ia.config, .answer = MOAT_IMAGE_USED_STOPPED };
        struct moat_images_prune_options o = { .in_use = use_cb, .userdata = &u };
        struct moat_images_delete_report rep = {};
        const char *ids[1];
        struct image ic;

        ok(put_layer(s, "b", "layer b\n", &lb), "layer b stored");
        ids[0] = lb.diff_id;
        ok(put_image_x(s, "amd64", "\"author\":\"c\",", &lb, ids, 1, &ic), "image C stored");
        is_int(tag(s, "localhost/c:2", OCI_MT_MANIFEST, ic.manifest, ic.manifest_size), 0, "C named");
        is_int(moat_images_prune(s, &o, &rep, NULL), 0, "prune, A (dangling) in use");
        ok(rep.n == 0 && count_entries(s, ia.manifest, false) == 1, "nothing pruned");
        o.in_use = NULL;
        is_int(moat_images_prune(s, &o, &rep, NULL), 0, "prune");
        ok(rep.n == 2 && streq(rep.items[0].deleted, ia.config) && streq(rep.items[1].deleted, la.diff_id),
           "A and its layer deleted");
        ok(rep.reclaimed == (uint64_t) (ia.manifest_size + ia.config_size + (int64_t) la.size), "reclaimed its bytes");
        ok(moat_store_has_blob(s, ic.config) == 1, "the named image stays");
        moat_images_delete_report_clear(&rep);
        o.all = true;
        is_int(moat_images_prune(s, &o, &rep, NULL), 0, "prune -a");
        ok(rep.n == 3 && streq(rep.items[0].untagged, "localhost/c:2") && streq(rep.items[1].deleted, ic.config) &&
                   streq(rep.items[2].deleted, lb.diff_id),
           "untagged: c:2, deleted: C and its layer");

        ok(moat_store_has_blob(s, ic.config) == 0, "gone");
        moat_images_delete_report_clear(&rep);
        is_int(moat_images_prune(s, &o, &rep, NULL), 0, "prune of an empty store");
        ok(rep.n == 0 && rep.reclaimed == 0, "nothing");
}

struct issues {
        int n;
        char text[4][512];
};

static void issue_cb(const struct moat_images_verify_issue *i, void *userdata)
{
        struct issues *x = userdata;
        if (x->n < 4)
                snprintf(x->text[x->n], sizeof(x->text[0]), "%s|%s|%s", i->subject, i->problem,
                         i->referenced_by ? i->referenced_by : "");
        x->n++;
}

static void test_verify(struct moat_store *s)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_images_verify_result res;
        struct issues is = {};
        struct layer lc;
        struct image id;
        const char *ids[1];
        int sfd = moat_store_dir_fd(s);
        char path[300];

        ok(put_layer(s, "c", "layer c\n", &lc), "layer c");
        ids[0] = lc.diff_id;
        ok(put_image_x(s, "amd64", "\"author\":\"d\",", &lc, ids, 1, &id), "image D");
        is_int(tag(s, "localhost/d:1", OCI_MT_MANIFEST, id.manifest, id.manifest_size), 0, "D named");
        {
                _cleanup_image_ struct moat_image *img = NULL;
                _cleanup_strv_free_ char **chain = NULL;
                ok(moat_images_resolve(s, "localhost/d:1", NULL, &img, NULL) == 0 &&
                           moat_images_unpack(s, img, NULL, &chain, NULL) == 0,
                   "D unpacked");
        }
        is_int(moat_images_verify(s, issue_cb, &is, &res, &err), 0, "a clean store verifies");
        ok(res.blobs == 3 && res.layer_trees == 1 && res.problems == 0 &&
                   res.bytes == (uint64_t) (id.manifest_size + id.config_size + (int64_t) lc.size),
           "three blobs, their bytes and one tree checked");

        /* flip a byte of the config on disk */
        snprintf(path, sizeof(path), "blobs/sha256/%s", id.config + 7);
        {
                int fd = openat(sfd, path, O_RDWR | O_CLOEXEC);
                char c = 0;
                ok(fd >= 0 && pread(fd, &c, 1, 3) == 1, "read the config's 4th byte");
                c ^= 0x20;
                ok(fd >= 0 && pwrite(fd, &c, 1, 3) == 1, "flip it");
                if (fd >= 0)
                        close(fd);
        }
        snprintf(path, sizeof(path), "layers/sha256:%064d", 7);
        ok(mkdirat(sfd, path, 0700) == 0, "a stray layer tree");
        ok(mkdirat(sfd, "layers/.tmp-busy", 0700) == 0, "an unpacker's temp tree");
        is = (struct issues) {};
        is_int(moat_images_verify(s, issue_cb, &is, &res, &err), 2, "two problems");
        ok(is.n == 2 && startswith(is.text[0], id.config) && strstr(is.text[0], "content hashes to sha256:") &&
                   strstr(is.text[0], "localhost/d:1 (config of manifest "),
           "the corrupt config, what it hashes to and who uses it: %s", is.text[0]);
        ok(is.n == 2 && startswith(is.text[1], "layers/sha256:0000") && strstr(is.text[1], "stray layer tree"),
           "the stray tree: %s", is.text[1]);
        ok(unlinkat(sfd, path, AT_REMOVEDIR) == 0 && unlinkat(sfd, "layers/.tmp-busy", AT_REMOVEDIR) == 0,
           "trees removed");
        snprintf(path, sizeof(path), "blobs/sha256/%s", id.config + 7);
        {
                int fd = openat(sfd, path, O_RDWR | O_CLOEXEC);
                char c = 0;
                ok(fd >= 0 && pread(fd, &c, 1, 3) == 1 && (c ^= 0x20, pwrite(fd, &c, 1, 3) == 1), "flip it back");
                if (fd >= 0)
                        close(fd);
        }
        char lpath[300];
        snprintf(lpath, sizeof(lpath), "blobs/sha256/%s", lc.digest + 7);
        ok(unlinkat(sfd, lpath, 0) == 0, "layer blob removed");
        is = (struct issues) {};
        is_int(moat_images_verify(s, issue_cb, &is, &res, &err), 1, "a missing blob");
        ok(is.n == 1 && startswith(is.text[0], lc.digest) && strstr(is.text[0], "missing") &&
                   strstr(is.text[0], "localhost/d:1 (layer 1 of manifest "),
           "missing, with what references it: %s", is.text[0]);
        ok(unlinkat(sfd, path, 0) == 0, "config removed too");
        is = (struct issues) {};
        is_int(moat_images_verify(s, issue_cb, &is, &res, &err), 3, "two missing blobs and a tree no config explains");
        ok(is.n == 3 && strstr(is.text[0], "missing") && strstr(is.text[1], "missing") &&
                   strstr(is.text[2], "stray layer tree"),
           "%s / %s / %s", is.text[0], is.text[1], is.text[2]);
        is_int(res.layer_trees, 1, "one tree counted");
        is_int(moat_images_untag(s, "localhost/d:1", NULL), 0, "untag D");
        struct moat_images_gc_result g;
        is_int(moat_images_gc(s, &g, NULL), 0, "collect D");
}

/* ---- the caches of resolution ---- */

#define CACHE_IMAGES 40   /* 80 documents: more than the document cache keeps */

struct lookup_worker {
        struct moat_store *s;
        const struct image *imgs;
        unsigned seed;
        int failures;
};

static void *lookup_run(void *arg)
{
        struct lookup_worker *w = arg;

        for (int i = 0; i < 300; i++) {
                unsigned k = (w->seed + (unsigned) i * 7u) % CACHE_IMAGES;
                _cleanup_image_ struct moat_image *img = NULL;
                char ref[64];

                snprintf(ref, sizeof(ref), "localhost/cache-%u:1", k);
                if (moat_images_lookup(w->s, ref, NULL, &img, NULL) < 0 || !streq(img->config_digest, w->imgs[k].config) ||
                    !streq(img->config->author, ref))
                        w->failures++;
        }
        return NULL;
}

static bool lookup_is(struct moat_store *s, const char *text, const char *config, struct moat_error **e)
{
        _cleanup_image_ struct moat_image *img = NULL;

        moat_error_freep(e);
        return moat_images_lookup(s, text, NULL, &img, e) == 0 && streq(img->config_digest, config);
}

/*
 * Lookups go through a cache of index.json and of parsed documents: what
 * they answer must follow index.json as it changes (here, by the library,
 * by another writer's rename, by a rewrite in place) and blobs as they go,
 * and documents pushed out of the cache stay valid for the images holding
 * them.
 */
static void test_caches(struct moat_store *s)
{
        _cleanup_error_ struct moat_error *err = NULL;
        static struct image imgs[CACHE_IMAGES];
        struct layer l;
        const char *ids[1];
        char ref[64], extra[128], path[8192];
        int sfd = moat_store_dir_fd(s);
        bool good = true;

        ok(put_layer(s, "cache", "cached\n", &l), "a layer for the cache's images");
        ids[0] = l.diff_id;
        for (unsigned k = 0; k < CACHE_IMAGES && good; k++) {
                snprintf(ref, sizeof(ref), "localhost/cache-%u:1", k);
                snprintf(extra, sizeof(extra), "\"author\":\"%s\",", ref);
                good = put_image_x(s, "amd64", extra, &l, ids, 1, &imgs[k]) &&
                       tag(s, ref, OCI_MT_MANIFEST, imgs[k].manifest, imgs[k].manifest_size) == 0;
        }
        ok(good, "%d images stored and tagged", CACHE_IMAGES);

        /* an image holds its documents after the cache let them go */
        _cleanup_image_ struct moat_image *held = NULL;
        is_int(moat_images_lookup(s, "localhost/cache-0:1", NULL, &held, &err), 0, "lookup of image 0, held");
        for (int round = 0; round < 2 && good; round++)
                for (unsigned k = 0; k < CACHE_IMAGES && good; k++) {
                        snprintf(ref, sizeof(ref), "localhost/cache-%u:1", k);
                        good = lookup_is(s, ref, imgs[k].config, &err) && lookup_is(s, imgs[k].config, imgs[k].config, &err);
                }
        ok(good, "every image by reference and by ID, twice: %s", err ? err->msg : "");
        ok(held && streq(held->config->author, "localhost/cache-0:1") && held->manifest->n_layers == 1 &&
                   streq(held->manifest->config.digest, imgs[0].config),
           "the held image's documents are intact");

        /* index.json changed by the library: a re-tag is seen at once */
        is_int(tag(s, "localhost/cache-moving:1", OCI_MT_MANIFEST, imgs[1].manifest, imgs[1].manifest_size), 0,
               "tag cache-moving to image 1");
        ok(lookup_is(s, "localhost/cache-moving:1", imgs[1].config, &err), "it is image 1");
        is_int(tag(s, "localhost/cache-moving:1", OCI_MT_MANIFEST, imgs[2].manifest, imgs[2].manifest_size), 0,
               "re-tag it to image 2");
        ok(lookup_is(s, "localhost/cache-moving:1", imgs[2].config, &err), "it is image 2 now");

        /* index.json replaced by another writer (rename: a new inode, same size) */
        {
                _cleanup_free_ char *text = NULL;
                size_t n;
                ok(read_full_file_at(sfd, "index.json", 1 << 24, &text, &n) == 0, "read index.json");
                char *at = text ? strstr(text, imgs[2].manifest) : NULL;
                ok(at != NULL, "image 2's manifest is in it");
                if (at) {
                        for (char *q = strstr(at + 1, imgs[2].manifest); q; q = strstr(q + 1, imgs[2].manifest))
                                at = q; /* the last entry: cache-moving's */
                        memcpy(at, imgs[3].manifest, strlen(imgs[3].manifest));
                        ok(write_file_atomic_at(sfd, "index.json", text, n, 0644) == 0,
                           "another writer points cache-moving at image 3 (same size)");
                        ok(lookup_is(s, "localhost/cache-moving:1", imgs[3].config, &err), "it is image 3: %s",
                           err ? err->msg : "");
                }
        }
        /* ... and rewritten in place, with another size */
        is_int(tag(s, "localhost/cache-moving:1", OCI_MT_MANIFEST, imgs[4].manifest, imgs[4].manifest_size), 0,
               "re-tag it to image 4");
        {
                _cleanup_free_ char *text = NULL, *shorter = NULL;
                size_t n;
                ok(read_full_file_at(sfd, "index.json", 1 << 24, &text, &n) == 0, "read index.json");
                /* drop the tag-time annotation of cache-moving: the file shrinks */
                char *name = text ? strstr(text, "\"localhost/cache-moving:1\"") : NULL;
                char *ann = name ? strstr(text, "\"" MOAT_IMAGES_TAG_TIME_ANNOTATION "\"") : NULL;
                for (char *q = ann; q && q < name; q = strstr(q + 1, "\"" MOAT_IMAGES_TAG_TIME_ANNOTATION "\""))
                        ann = q;
                ok(ann != NULL, "found an annotation to drop");
                char *at = name ? strstr(text, imgs[4].manifest) : NULL;
                for (char *q = at; q; q = strstr(q + 1, imgs[4].manifest))
                        at = q; /* the last entry: cache-moving's */
                ok(at != NULL, "image 4's manifest is in it");
                if (at)
                        memcpy(at, imgs[7].manifest, strlen(imgs[7].manifest));
                if (ann && at) {
                        /* ,"io.moat.image.tag-time":"<time>" or "io.moat.image.tag-time":"<time>", */
                        char *end = strchr(strchr(strchr(ann + 1, '"') + 1, '"') + 1, '"') + 1;
                        if (*end == ',')
                                end++;
                        else if (ann[-1] == ',')
                                ann--;
                        shorter = strndup(text, (size_t) (ann - text));
                        char *joined = NULL;
                        ok(asprintf(&joined, "%s%s", shorter, end) > 0, "joined");
                        free(shorter);
                        shorter = joined;
                        int fd = openat(sfd, "index.json", O_WRONLY | O_TRUNC | O_CLOEXEC);
                        ok(fd >= 0 && write(fd, shorter, strlen(shorter)) == (ssize_t) strlen(shorter),
                           "rewritten in place to image 7 (same inode, %zu bytes instead of %zu)", strlen(shorter),
                           n);
                        if (fd >= 0)
                                close(fd);
                        ok(lookup_is(s, "localhost/cache-moving:1", imgs[7].config, &err), "it is image 7: %s",
                           err ? err->msg : "");
                        is_int(tag(s, "localhost/cache-moving:1", OCI_MT_MANIFEST, imgs[5].manifest,
                                   imgs[5].manifest_size),
                               0, "the library reads the rewritten file and re-tags to image 5");
                        ok(lookup_is(s, "localhost/cache-moving:1", imgs[5].config, &err), "image 5");
                }
        }

        /* a blob that goes is not served from the cache */
        {
                _cleanup_free_ char *text = NULL;
                size_t n;
                _cleanup_image_ struct moat_image *img = NULL;
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_free_ char *d = NULL;

                snprintf(path, sizeof(path), "blobs/sha256/%.64s", imgs[6].config + 7);
                ok(lookup_is(s, "localhost/cache-6:1", imgs[6].config, &err), "image 6 is cached");
                ok(read_full_file_at(sfd, path, 1 << 20, &text, &n) == 0 && unlinkat(sfd, path, 0) == 0,
                   "its config blob removed");
                ok(moat_images_resolve(s, "localhost/cache-6:1", NULL, &img, &e) == -ENOENT && e &&
                           strstr(e->msg, imgs[6].config),
                   "resolve fails, naming the config: %s", e ? e->msg : "");
                ok(text && moat_store_put(s, text, n, imgs[6].config, &d, NULL) >= 0, "the blob put back");
                ok(lookup_is(s, "localhost/cache-6:1", imgs[6].config, &err), "image 6 resolves again");
        }

        /* threads looking up while index.json is rewritten */
        {
                struct lookup_worker w[4];
                pthread_t t[4];
                for (int i = 0; i < 4; i++) {
                        w[i] = (struct lookup_worker) { .s = s, .imgs = imgs, .seed = (unsigned) i * 11u };
                        pthread_create(&t[i], NULL, lookup_run, &w[i]);
                }
                good = true;
                for (unsigned k = 0; k < 60; k++)
                        good = good && tag(s, "localhost/cache-moving:1", OCI_MT_MANIFEST, imgs[k % CACHE_IMAGES].manifest,
                                           imgs[k % CACHE_IMAGES].manifest_size) == 0;
                for (int i = 0; i < 4; i++)
                        pthread_join(t[i], NULL);
                ok(good, "60 re-tags meanwhile");
                ok(w[0].failures + w[1].failures + w[2].failures + w[3].failures == 0,
                   "4 threads x 300 lookups, each the image asked for (%d %d %d %d failed)", w[0].failures,
                   w[1].failures, w[2].failures, w[3].failures);
        }

        for (unsigned k = 0; k < CACHE_IMAGES; k++) {
                snprintf(ref, sizeof(ref), "localhost/cache-%u:1", k);
                (void) !moat_images_untag(s, ref, NULL);
        }
        (void) !moat_images_untag(s, "localhost/cache-moving:1", NULL);
        struct moat_images_gc_result g;
        is_int(moat_images_gc(s, &g, NULL), 0, "the cache's images collected");
}

int main(void)
{
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        struct layer l1, l2, l3;
        struct image amd, arm, bad;
        char index_digest[80], path[4200];
        int64_t index_size;
        int r;

        if (!mkdtemp(tmpdir))
                return 1;
        snprintf(path, sizeof(path), "%s/store", tmpdir);
        r = moat_store_open(path, true, &s, &err);
        is_int(r, 0, "store opened");
        if (r < 0)
                return tap_done();
        int sfd = moat_store_dir_fd(s);

        ok(put_layer(s, "hello", "hi\n", &l1) && put_layer(s, "two", "second\n", &l2) &&
                   put_layer(s, "three", "third\n", &l3),
           "layers written and stored");
        const char *ids[] = { l1.diff_id, l2.diff_id };
        struct layer both[] = { l1, l2 };
        ok(put_image(s, "amd64", both, ids, 2, &amd), "amd64 image stored");
        ok(put_image(s, "arm64", both, ids, 2, &arm), "arm64 image stored");

        /* tag, list */
        is_int(tag(s, "localhost/test:1", OCI_MT_MANIFEST, amd.manifest, amd.manifest_size), 0, "tag localhost/test:1");
        is_int(tag(s, "localhost/test:1", OCI_MT_MANIFEST, amd.manifest, amd.manifest_size), 0, "tag again replaces");
        ok(tag(s, "localhost/none:1", OCI_MT_MANIFEST,
               "sha256:0000000000000000000000000000000000000000000000000000000000000000", 10) == -ENOENT,
           "tagging a missing blob is refused");
        ok(tag(s, "localhost/test:2", OCI_MT_MANIFEST, amd.manifest, amd.manifest_size + 1) < 0,
           "tagging with a wrong size is refused");
        ok(tag(s, "localhost/test:3", OCI_MT_CONFIG, amd.config, amd.config_size) == -EMEDIUMTYPE,
           "tagging a config is refused");
        {
                _cleanup_free_ char *idx = NULL;
                size_t n;
                ok(read_full_file_at(sfd, "index.json", 1 << 20, &idx, &n) >= 0 &&
                           strstr(idx, "\"org.opencontainers.image.ref.name\":\"localhost/test:1\""),
                   "index.json carries the full reference as ref.name");
        }
        struct moat_image_ref *refs = NULL;
        size_t nrefs = 0;
        r = moat_images_list(s, &refs, &nrefs, &err);
        is_int(r, 0, "list");
        is_int(nrefs, 1, "one reference (the re-tag replaced the first)");
        if (nrefs == 1) {
                is_str(refs[0].reference, "localhost/test:1", "listed reference");
                is_str(refs[0].digest, amd.manifest, "listed digest");
                is_str(refs[0].media_type, OCI_MT_MANIFEST, "listed media type");
        }
        moat_image_refs_free(refs, nrefs);

        /* resolve a manifest */
        _cleanup_image_ struct moat_image *img = NULL;
        r = moat_images_resolve(s, "localhost/test:1", NULL, &img, &err);
        is_int(r, 0, "resolve localhost/test:1");
        if (r < 0) {
                printf("# %s\n", err->msg);
                return tap_done();
        }
        is_str(img->manifest_digest, amd.manifest, "resolved manifest digest");
        is_str(img->config_digest, amd.config, "resolved config digest");
        is_int(img->config->n_diff_ids, 2, "config has two diff_ids");
        is_str(img->config->architecture, "amd64", "config architecture");
        {
                _cleanup_image_ struct moat_image *none = NULL;
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_images_resolve(s, "localhost/nothere:1", NULL, &none, &e), -ENOENT, "unknown reference");
                ok(e && strstr(e->msg, "localhost/nothere:1"), "the error names it: %s", e ? e->msg : "");
        }
        {
                _cleanup_image_ struct moat_image *bydigest = NULL;
                char ref[200];
                snprintf(ref, sizeof(ref), "localhost/whatever@%s", amd.manifest);
                is_int(moat_images_resolve(s, ref, NULL, &bydigest, NULL), 0, "resolve by digest");
                ok(bydigest && streq(bydigest->manifest_digest, amd.manifest), "by digest: the manifest");
        }

        /* an index of two platforms */
        {
                char text[2048];
                snprintf(text, sizeof(text),
                         "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_INDEX "\",\"manifests\":["
                         "{\"mediaType\":\"" OCI_MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%lld,"
                         "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
                         "{\"mediaType\":\"" OCI_MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%lld,"
                         "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}",
                         arm.manifest, (long long) arm.manifest_size, amd.manifest, (long long) amd.manifest_size);
                ok(put_doc(s, text, index_digest, &index_size), "index stored");
        }
        is_int(tag(s, "localhost/test:multi", OCI_MT_INDEX, index_digest, index_size), 0, "tag the index");
        {
                _cleanup_image_ struct moat_image *a = NULL, *b = NULL;
                struct oci_platform p = { .os = (char *) "linux", .architecture = (char *) "arm64" };
                is_int(moat_images_resolve(s, "localhost/test:multi", NULL, &a, NULL), 0, "resolve index, default");
                ok(a && streq(a->manifest_digest, amd.manifest) && streq(a->target_digest, index_digest),
                   "default platform picks linux/amd64");
                is_int(moat_images_resolve(s, "localhost/test:multi", &p, &b, NULL), 0, "resolve index, arm64");
                ok(b && streq(b->manifest_digest, arm.manifest) && streq(b->config->architecture, "arm64"),
                   "linux/arm64 picks the arm64 manifest");
                struct oci_platform q = { .os = (char *) "linux", .architecture = (char *) "s390x" };
                _cleanup_image_ struct moat_image *c = NULL;
                ok(moat_images_resolve(s, "localhost/test:multi", &q, &c, NULL) == -ENOENT, "no s390x in the index");
        }

        /* unpack */
        _cleanup_strv_free_ char **chain = NULL;
        r = moat_images_unpack(s, img, NULL, &chain, &err);
        is_int(r, 0, "unpack");
        if (r < 0) {
                printf("# %s\n", err->msg);
                return tap_done();
        }
        ok(chain && chain[0] && chain[1] && !chain[2], "two chain ids");
        is_str(chain[0], l1.diff_id, "the first ChainID is the first DiffID");
        ok(layer_file_is(sfd, chain[0], "hello", "hi\n"), "layer 1 tree has etc/hello");
        ok(layer_file_is(sfd, chain[1], "two", "second\n"), "layer 2 tree has etc/two");
        struct stat st1, st2;
        snprintf(path, sizeof(path), "layers/%s", chain[1]);
        ok(fstatat(sfd, path, &st1, 0) == 0 && (st1.st_mode & 07777) == 0755, "layer tree root is 0755");
        {
                _cleanup_strv_free_ char **again = NULL;
                is_int(moat_images_unpack(s, img, NULL, &again, NULL), 0, "second unpack");
                ok(again && streq(again[1], chain[1]), "same chain ids");
                ok(fstatat(sfd, path, &st2, 0) == 0 && st1.st_ino == st2.st_ino, "the tree was reused, not redone");
        }
        is_int(count_layer_dirs(sfd, false), 2, "two layer trees");

        /* a config whose diff_id does not match the layer */
        const char *bad_ids[] = { l2.diff_id }; /* l3's blob, l2's diff id */
        ok(put_image(s, "amd64", &l3, bad_ids, 1, &bad), "bad image stored");
        is_int(tag(s, "localhost/bad:1", OCI_MT_MANIFEST, bad.manifest, bad.manifest_size), 0, "tag the bad image");
        {
                _cleanup_image_ struct moat_image *b = NULL;
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_strv_free_ char **c = NULL;
                is_int(moat_images_resolve(s, "localhost/bad:1", NULL, &b, NULL), 0, "resolve the bad image");
                /* l2's tree exists as ChainID l2.diff_id? no: chain ids of layer 0 is its diff id,
                 * which is l2.diff_id, not yet unpacked as a lowest layer. */
                snprintf(path, sizeof(path), "layers/%s", l2.diff_id);
                ok(faccessat(sfd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0, "no tree under the claimed ChainID before");
                is_int(b ? moat_images_unpack(s, b, NULL, &c, &e) : 0, -EBADMSG, "DiffID mismatch refused");
                ok(e && strstr(e->msg, l3.diff_id) && strstr(e->msg, l2.diff_id), "the error names both: %s",
                   e ? e->msg : "");
                ok(faccessat(sfd, path, F_OK, AT_SYMLINK_NOFOLLOW) < 0, "no tree under the claimed ChainID after");
                is_int(count_layer_dirs(sfd, true), 0, "no temp tree left");
        }

        /* gc */
        struct moat_images_gc_result res;
        r = moat_images_gc(s, &res, &err);
        is_int(r, 0, "gc with everything tagged");
        is_int(res.blobs_removed, 0, "nothing removed");
        is_int(res.layers_removed, 0, "no layer tree removed");
        is_int(moat_images_untag(s, "localhost/bad:1", NULL), 0, "untag the bad image");
        is_int(moat_images_untag(s, "localhost/bad:1", NULL), -ENOENT, "untag again: not there");
        r = moat_images_gc(s, &res, &err);
        is_int(r, 0, "gc");
        is_int(res.blobs_removed, 3, "the bad image's manifest, config and layer went");
        ok(moat_store_has_blob(s, bad.manifest) == 0 && moat_store_has_blob(s, l3.digest) == 0, "they are gone");
        ok(moat_store_has_blob(s, l2.digest) == 1, "the shared layer blob stays");

        {
                struct moat_images_delete_report rep = {};
                r = moat_images_remove(s, "localhost/test:1", NULL, &rep, &err);
                is_int(r, 0, "remove localhost/test:1");
                ok(rep.n == 1 && rep.items[0].untagged && streq(rep.items[0].untagged, "localhost/test:1") &&
                           !rep.items[0].deleted,
                   "only untagged: the index names the same image (same ID)");
                moat_images_delete_report_clear(&rep);
        }
        ok(moat_store_has_blob(s, amd.manifest) == 1 && moat_store_has_blob(s, amd.config) == 1,
           "manifest and config kept");
        is_int(count_layer_dirs(sfd, false), 2, "both trees kept");

        {
                struct moat_images_delete_report rep = {};
                r = moat_images_remove(s, "localhost/test:multi", NULL, &rep, &err);
                is_int(r, 0, "remove localhost/test:multi");
                ok(rep.n == 4 && streq(rep.items[0].untagged, "localhost/test:multi") &&
                           streq(rep.items[1].deleted, amd.config) && streq(rep.items[2].deleted, chain[1]) &&
                           streq(rep.items[3].deleted, chain[0]),
                   "Untagged, Deleted: the ID, then the ChainIDs top first");
                is_int(rep.reclaimed,
                       (int64_t) (amd.manifest_size + arm.manifest_size + amd.config_size + arm.config_size + index_size +
                                  (int64_t) l1.size + (int64_t) l2.size),
                       "reclaimed: the bytes of the seven blobs");
                moat_images_delete_report_clear(&rep);
        }
        is_int(count_layer_dirs(sfd, false), 0, "layers/ is empty");
        r = moat_images_list(s, &refs, &nrefs, NULL);
        ok(r == 0 && nrefs == 0, "no references left");
        moat_image_refs_free(refs, nrefs);

        ok(mkdirat(sfd, "layers/.tmp-leftover", 0700) == 0, "a crashed unpacker's temp tree");
        r = moat_images_gc(s, &res, &err);
        ok(r == 0 && res.layers_removed == 1 && count_layer_dirs(sfd, false) == 0, "gc removes leftover temp trees");

        test_ids_and_dangling(s);
        test_remove_rules(s);
        test_prune(s);
        test_verify(s);
        test_caches(s);

        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0) {
        }
        return tap_done();
}
