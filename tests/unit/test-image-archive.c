/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of image/archive.c: archives built here with libarchive's
 * writer: a legacy docker-archive (manifest synthesised, parseable, blobs
 * verified, a symlinked layer), an OCI layout tarball (gzip outer filter,
 * gzip layer), a corrupted blob member, ".." and absolute member names,
 * an OCI layout directory, and save -> load round trips.
 */

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/fileio.h"
#include "image/image-archive.h"
#include "image/store.h"
#include "oci/image-spec.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-archive-XXXXXX";

struct member {
        const char *name;
        const char *data; /* NULL: directory */
        size_t len;
        const char *symlink;
};

static void digest_of(const void *buf, size_t len, char out[OCI_DIGEST_STRING_SIZE])
{
        struct sha256_ctx ctx;
        uint8_t d[SHA256_DIGEST_SIZE];

        sha256_init(&ctx);
        sha256_update(&ctx, len, buf);
        sha256_digest(&ctx, sizeof(d), d);
        strcpy(out, "sha256:");
        for (size_t i = 0; i < sizeof(d); i++)
                sprintf(out + 7 + 2 * i, "%02x", d[i]);
}

/* A tar (optionally gzip) of the members, into a memfd positioned at 0. */
static int make_tar(const struct member *m, size_t n, bool gzip)
{
        struct archive *a = archive_write_new();
        int fd = memfd_create("tar", MFD_CLOEXEC);

        archive_write_set_format_pax_restricted(a);
        if (gzip)
                archive_write_add_filter_gzip(a);
        archive_write_open_fd(a, fd);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, m[i].name);
                if (m[i].symlink) {
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, m[i].symlink);
                        archive_entry_set_perm(e, 0777);
                } else if (!m[i].data) {
                        archive_entry_set_filetype(e, AE_IFDIR);
                        archive_entry_set_perm(e, 0755);
                } else {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_perm(e, 0644);
                        archive_entry_set_size(e, (la_int64_t) m[i].len);
                }
                archive_write_header(a, e);
                if (m[i].data && m[i].len)
                        archive_write_data(a, m[i].data, m[i].len);
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
        lseek(fd, 0, SEEK_SET);
        return fd;
}

/* A one-file layer tar (gzip when asked) in memory. */
static char *make_layer(const char *file, const char *content, bool gzip, size_t *ret_len)
{
        struct member m = { file, content, strlen(content), NULL };
        _cleanup_close_ int fd = make_tar(&m, 1, gzip);
        char *buf = NULL;

        if (read_full_fd(fd, 1 << 20, &buf, ret_len) < 0)
                return NULL;
        return buf;
}

static struct moat_store *new_store(const char *name)
{
        struct moat_store *s = NULL;
        char p[512];

        snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
        if (moat_store_open(p, true, &s, NULL) < 0)
                return NULL;
        return s;
}

/* ---- legacy docker-archive ---- */

static char legacy_manifest_digest[OCI_DIGEST_STRING_SIZE];

static void test_legacy(void)
{
        _cleanup_store_ struct moat_store *s = new_store("legacy");
        _cleanup_(moat_archive_result_freep) struct moat_archive_result *res = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *l1 = NULL, *l2 = NULL, *cfg = NULL, *mj = NULL, *cname = NULL, *mbuf = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        char d1[OCI_DIGEST_STRING_SIZE], d2[OCI_DIGEST_STRING_SIZE], dc[OCI_DIGEST_STRING_SIZE];
        size_t n1, n2, mlen;
        int fd, r;

        l1 = make_layer("etc/one", "first layer\n", false, &n1);
        l2 = make_layer("etc/two", "second layer\n", false, &n2);
        digest_of(l1, n1, d1);
        digest_of(l2, n2, d2);
        if (asprintf(&cfg, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},"
                           "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\",\"%s\",\"%s\"]}}",
                     d1, d2, d1) < 0)
                return;
        digest_of(cfg, strlen(cfg), dc);
        if (asprintf(&cname, "%s.json", dc + 7) < 0 ||
            asprintf(&mj, "[{\"Config\":\"%s\",\"RepoTags\":[\"busybox:latest\",\"busybox:1\"],"
                          "\"Layers\":[\"aaa/layer.tar\",\"bbb/layer.tar\",\"ccc/layer.tar\"]}]",
                     cname) < 0)
                return;
        {
                /* manifest.json first: members come in any order */
                struct member m[] = {
                        { "manifest.json", mj, strlen(mj), NULL },
                        { "aaa/", NULL, 0, NULL },
                        { "aaa/VERSION", "1.0", 3, NULL },
                        { "aaa/json", "{}", 2, NULL },
                        { "./aaa/layer.tar", l1, n1, NULL },
                        { "bbb/layer.tar", l2, n2, NULL },
                        { "ccc/layer.tar", NULL, 0, "../aaa/layer.tar" },
                        { cname, cfg, strlen(cfg), NULL },
                        { "repositories", "{\"busybox\":{\"latest\":\"x\"}}", sizeof("{\"busybox\":{\"latest\":\"x\"}}") - 1, NULL },
                };
                fd = make_tar(m, ELEMENTSOF(m), false);
        }
        r = moat_archive_load(s, fd, NULL, &res, &err);
        close(fd);
        is_int(r, 0, "legacy docker-archive loads%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        is_int(res->n_images, 2, "one image per RepoTag");
        is_str(res->images[0].ref, "busybox:latest", "first RepoTag");
        is_str(res->images[1].ref, "busybox:1", "second RepoTag");
        is_str(res->images[0].media_type, OCI_MT_MANIFEST, "synthesised manifest media type");
        is_str(res->images[0].digest, res->images[1].digest, "both tags name one manifest");
        r = moat_store_read_blob(s, res->images[0].digest, 1 << 20, &mbuf, &mlen, &err);
        is_int(r, 0, "synthesised manifest is in the store");
        if (r < 0)
                return;
        is_int((int64_t) mlen, res->images[0].size, "descriptor size is the manifest's");
        r = oci_image_doc_parse(mbuf, mlen, res->images[0].media_type, &doc, &err);
        is_int(r, 0, "synthesised manifest parses%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        const struct oci_manifest *m = oci_image_doc_manifest(doc);
        ok(m && m->n_layers == 3, "manifest has three layers");
        if (!m || m->n_layers != 3)
                return;
        is_str(m->config.digest, dc, "config digest");
        is_int(m->config.size, (int64_t) strlen(cfg), "config size");
        is_str(m->layers[0].digest, d1, "layer 0 digest is its DiffID");
        is_str(m->layers[1].digest, d2, "layer 1 digest is its DiffID");
        is_str(m->layers[2].digest, d1, "symlinked layer resolves to its target");
        is_int(m->layers[1].size, (int64_t) n2, "layer 1 size");
        is_str(m->layers[0].media_type, OCI_MT_LAYER_TAR, "uncompressed layer media type");
        {
                int bfd = -EBADF;
                r = moat_store_open_blob(s, d2, true, &bfd, NULL);
                is_int(r, 0, "layer blob present and verified");
                safe_close(bfd);
                r = moat_store_open_blob(s, dc, true, &bfd, NULL);
                is_int(r, 0, "config blob present and verified");
                safe_close(bfd);
        }
        strcpy(legacy_manifest_digest, res->images[0].digest);

        /* Round trip: save (docker format) and load into another store. */
        {
                _cleanup_store_ struct moat_store *s2 = new_store("legacy-rt");
                _cleanup_(moat_archive_result_freep) struct moat_archive_result *res2 = NULL;
                _cleanup_close_ int out = memfd_create("out", MFD_CLOEXEC);
                struct moat_archive_save_image img = { "busybox:latest", legacy_manifest_digest };
                struct archive *a;
                struct archive_entry *e;
                bool has_mj = false, has_layout = false;

                r = moat_archive_save(s, &img, 1, out, MOAT_ARCHIVE_DOCKER, &err);
                is_int(r, 0, "save docker format%s%s", err ? ": " : "", err ? err->msg : "");
                a = archive_read_new();
                archive_read_support_format_tar(a);
                lseek(out, 0, SEEK_SET);
                archive_read_open_fd(a, out, 4096);
                while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
                        has_mj |= streq(archive_entry_pathname(e), "manifest.json");
                        has_layout |= streq(archive_entry_pathname(e), "oci-layout");
                }
                archive_read_free(a);
                ok(has_mj && has_layout, "saved archive has oci-layout and manifest.json");
                lseek(out, 0, SEEK_SET);
                r = moat_archive_load(s2, out, NULL, &res2, &err);
                is_int(r, 0, "saved archive loads%s%s", err ? ": " : "", err ? err->msg : "");
                if (r < 0)
                        return;
                ok(res2->n_images == 1, "one image back");
                is_str(res2->images[0].digest, legacy_manifest_digest, "round trip keeps the manifest digest");
                is_str(res2->images[0].ref, "busybox:latest", "round trip keeps the reference (RepoTags)");
                is_int(moat_store_has_blob(s2, d2), 1, "round trip brought the layers");
        }
}

/* ---- OCI layout tarball ---- */

struct oci_image {
        char *layer, *cfg, *manifest, *index;
        size_t layer_len;
        char dl[OCI_DIGEST_STRING_SIZE], dc[OCI_DIGEST_STRING_SIZE], dm[OCI_DIGEST_STRING_SIZE];
        char nl[80], nc[80], nm[80];
};

static void oci_image_done(struct oci_image *o)
{
        free(o->layer);
        free(o->cfg);
        free(o->manifest);
        free(o->index);
}

static int oci_image_make(struct oci_image *o)
{
        _cleanup_free_ char *raw = NULL;
        char diffid[OCI_DIGEST_STRING_SIZE];
        size_t rawlen;

        raw = make_layer("hello", "hello from a gzip layer\n", false, &rawlen);
        o->layer = make_layer("hello", "hello from a gzip layer\n", true, &o->layer_len);
        if (!raw || !o->layer)
                return -1;
        digest_of(raw, rawlen, diffid);
        digest_of(o->layer, o->layer_len, o->dl);
        if (asprintf(&o->cfg, "{\"architecture\":\"arm64\",\"os\":\"linux\","
                              "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}", diffid) < 0)
                return -1;
        digest_of(o->cfg, strlen(o->cfg), o->dc);
        if (asprintf(&o->manifest, "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
                                   "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\","
                                   "\"digest\":\"%s\",\"size\":%zu}]}",
                     OCI_MT_MANIFEST, OCI_MT_CONFIG, o->dc, strlen(o->cfg), OCI_MT_LAYER_TAR_GZIP, o->dl,
                     o->layer_len) < 0)
                return -1;
        digest_of(o->manifest, strlen(o->manifest), o->dm);
        if (asprintf(&o->index, "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
                                "\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":"
                                "\"example.com/x:1\"}}]}",
                     OCI_MT_MANIFEST, o->dm, strlen(o->manifest)) < 0)
                return -1;
        snprintf(o->nl, sizeof(o->nl), "blobs/sha256/%s", o->dl + 7);
        snprintf(o->nc, sizeof(o->nc), "blobs/sha256/%s", o->dc + 7);
        snprintf(o->nm, sizeof(o->nm), "blobs/sha256/%s", o->dm + 7);
        return 0;
}

static void test_oci(void)
{
        _cleanup_(oci_image_done) struct oci_image o = {};
        _cleanup_store_ struct moat_store *s = new_store("oci");
        _cleanup_(moat_archive_result_freep) struct moat_archive_result *res = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int fd, r;

        if (oci_image_make(&o) < 0) {
                ok(false, "build OCI image");
                return;
        }
        {
                struct member m[] = {
                        { "index.json", o.index, strlen(o.index), NULL },
                        { "blobs/", NULL, 0, NULL },
                        { "blobs/sha256/", NULL, 0, NULL },
                        { o.nl, o.layer, o.layer_len, NULL },
                        { o.nm, o.manifest, strlen(o.manifest), NULL },
                        { o.nc, o.cfg, strlen(o.cfg), NULL },
                        { "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30, NULL },
                };
                fd = make_tar(m, ELEMENTSOF(m), true);
        }
        r = moat_archive_load(s, fd, NULL, &res, &err);
        close(fd);
        is_int(r, 0, "gzip OCI layout tarball loads%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        ok(res->n_images == 1, "one image");
        is_str(res->images[0].ref, "example.com/x:1", "ref name annotation returned");
        is_str(res->images[0].digest, o.dm, "manifest digest returned");
        is_int(res->images[0].size, (int64_t) strlen(o.manifest), "manifest size returned");
        is_int(moat_store_has_blob(s, o.dl), 1, "gzip layer blob ingested");

        /* OCI format round trip */
        {
                _cleanup_store_ struct moat_store *s2 = new_store("oci-rt");
                _cleanup_(moat_archive_result_freep) struct moat_archive_result *res2 = NULL;
                _cleanup_close_ int out = memfd_create("out", MFD_CLOEXEC);
                struct moat_archive_save_image img = { "example.com/x:1", o.dm };

                r = moat_archive_save(s, &img, 1, out, MOAT_ARCHIVE_OCI, &err);
                is_int(r, 0, "save OCI format%s%s", err ? ": " : "", err ? err->msg : "");
                lseek(out, 0, SEEK_SET);
                r = moat_archive_load(s2, out, NULL, &res2, &err);
                is_int(r, 0, "saved OCI archive loads%s%s", err ? ": " : "", err ? err->msg : "");
                if (r < 0)
                        return;
                is_str(res2->images[0].digest, o.dm, "OCI round trip keeps the manifest digest");
                is_str(res2->images[0].ref, "example.com/x:1", "OCI round trip keeps the reference");
        }

        /* Saving something that is not in the store fails, naming it. */
        {
                _cleanup_close_ int out = memfd_create("out", MFD_CLOEXEC);
                _cleanup_error_ struct moat_error *e2 = NULL;
                struct moat_archive_save_image img = {
                        "x", "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                };
                r = moat_archive_save(s, &img, 1, out, MOAT_ARCHIVE_OCI, &e2);
                ok(r < 0 && e2 && strstr(e2->msg, "0000000000"), "save of an absent manifest fails naming it");
        }
}

static void test_corrupt(void)
{
        _cleanup_(oci_image_done) struct oci_image o = {};
        _cleanup_store_ struct moat_store *s = new_store("corrupt");
        _cleanup_(moat_archive_result_freep) struct moat_archive_result *res = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *bad = NULL;
        int fd, r;

        if (oci_image_make(&o) < 0)
                return;
        bad = strdup(o.cfg);
        bad[strlen(bad) - 3] = 'X';
        {
                struct member m[] = {
                        { "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30, NULL },
                        { o.nl, o.layer, o.layer_len, NULL },
                        { o.nc, bad, strlen(bad), NULL },
                        { o.nm, o.manifest, strlen(o.manifest), NULL },
                        { "index.json", o.index, strlen(o.index), NULL },
                };
                fd = make_tar(m, ELEMENTSOF(m), false);
        }
        r = moat_archive_load(s, fd, NULL, &res, &err);
        close(fd);
        is_int(r, -EBADMSG, "corrupted blob member fails the load");
        ok(err && strstr(err->msg, o.nc), "error names the member: %s", err ? err->msg : "(none)");
        is_int(moat_store_has_blob(s, o.dc), 0, "the corrupted blob is not in the store");
        is_int(moat_store_has_blob(s, o.dm), 0, "members after it were not ingested");
        is_int(moat_store_has_blob(s, o.dl), 1, "valid blobs before it stay (content-addressed)");
}

static void test_bad_names(void)
{
        _cleanup_store_ struct moat_store *s = new_store("names");
        static const char *names[] = { "../evil", "blobs/../../evil", "/etc/passwd" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_(moat_archive_result_freep) struct moat_archive_result *res = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                struct member m[] = { { names[i], "x", 1, NULL } };
                int fd = make_tar(m, 1, false), r;

                r = moat_archive_load(s, fd, NULL, &res, &err);
                close(fd);
                ok(r == -EINVAL && err && strstr(err->msg, names[i][0] == '/' ? "absolute" : "\"..\""),
                   "member \"%s\" refused: %s", names[i], err ? err->msg : "(none)");
        }
        {
                _cleanup_(moat_archive_result_freep) struct moat_archive_result *res = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                struct member m[] = { { "hello.txt", "x", 1, NULL } };
                int fd = make_tar(m, 1, false), r;

                r = moat_archive_load(s, fd, NULL, &res, &err);
                close(fd);
                ok(r == -EINVAL && err && strstr(err->msg, "neither index.json nor manifest.json"),
                   "a tar that is no image archive is refused");
        }
}

static int put_file(int dfd, const char *name, const char *data, size_t len)
{
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0)
                return -errno;
        return write_all(fd, data, len);
}

static void test_layout_dir(void)
{
        _cleanup_(oci_image_done) struct oci_image o = {};
        _cleanup_store_ struct moat_store *s = new_store("dir");
        _cleanup_(moat_archive_result_freep) struct moat_archive_result *res = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int dfd = -EBADF;
        char p[512];
        int r;

        if (oci_image_make(&o) < 0)
                return;
        snprintf(p, sizeof(p), "%s/layout", tmpdir);
        if (mkdir(p, 0755) < 0)
                return;
        dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mkdirat(dfd, "blobs", 0755) < 0 || mkdirat(dfd, "blobs/sha256", 0755) < 0 ||
            put_file(dfd, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30) < 0 ||
            put_file(dfd, "index.json", o.index, strlen(o.index)) < 0 ||
            put_file(dfd, o.nl, o.layer, o.layer_len) < 0 || put_file(dfd, o.nc, o.cfg, strlen(o.cfg)) < 0 ||
            put_file(dfd, o.nm, o.manifest, strlen(o.manifest)) < 0) {
                ok(false, "write layout dir");
                return;
        }
        r = moat_archive_load_layout_dir(s, dfd, &res, &err);
        is_int(r, 0, "OCI layout directory loads%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        is_str(res->images[0].digest, o.dm, "layout dir manifest digest");
        is_int(moat_store_has_blob(s, o.dl), 1, "layout dir blobs imported");

        /* a blob whose content does not match its name */
        moat_archive_result_free(TAKE_PTR(res));
        r = put_file(dfd, o.nc, "tampered", 8);
        {
                _cleanup_store_ struct moat_store *s2 = new_store("dir2");
                r = moat_archive_load_layout_dir(s2, dfd, &res, &err);
                ok(r == -EBADMSG && err && strstr(err->msg, o.nc), "layout dir with a tampered blob fails naming it");
        }
}

/* ---- load progress ---- */

struct events {
        size_t n, layer_calls, doc_calls, layer_done, doc_done;
        uint64_t last_current;
        bool monotonic, totals_right, named;
        int64_t layer_total;
        char config_digest[OCI_DIGEST_STRING_SIZE];
        bool config_named;
};

static void on_progress(const struct moat_archive_progress *p, void *userdata)
{
        struct events *e = userdata;

        e->n++;
        if (p->kind == MOAT_ARCHIVE_BLOB_LAYER) {
                e->layer_calls++;
                if (p->current < e->last_current)
                        e->monotonic = false;
                e->last_current = p->current;
                if (p->total != e->layer_total)
                        e->totals_right = false;
                if (!streq(p->member, "lay/layer.tar") || p->digest)
                        e->named = false;
                if (p->done) {
                        e->layer_done++;
                        if (p->current != (uint64_t) p->total)
                                e->totals_right = false;
                }
        } else {
                e->doc_calls++;
                if (p->done)
                        e->doc_done++;
                if (p->digest && streq(p->digest, e->config_digest))
                        e->config_named = true;
        }
}

static void test_progress(void)
{
        _cleanup_store_ struct moat_store *s = new_store("progress");
        _cleanup_archive_result_ struct moat_archive_result *res = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *big = malloc(1536 * 1024 + 1), *layer = NULL, *cfg = NULL, *cname = NULL, *mj = NULL;
        char dl[OCI_DIGEST_STRING_SIZE];
        struct events ev = { .monotonic = true, .totals_right = true, .named = true };
        size_t nl;
        int fd, r;

        if (!s || !big)
                return;
        memset(big, 'x', 1536 * 1024);
        big[1536 * 1024] = 0;
        {
                struct member m = { "big", big, 1536 * 1024, NULL };
                _cleanup_close_ int lfd = make_tar(&m, 1, false);
                ok(read_full_fd(lfd, 4 << 20, &layer, &nl) >= 0, "a 1.5 MiB layer");
        }
        digest_of(layer, nl, dl);
        if (asprintf(&cfg, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
                           "\"diff_ids\":[\"%s\"]}}", dl) < 0)
                return;
        digest_of(cfg, strlen(cfg), ev.config_digest);
        if (asprintf(&cname, "%s.json", ev.config_digest + 7) < 0 ||
            asprintf(&mj, "[{\"Config\":\"%s\",\"RepoTags\":[\"p:1\"],\"Layers\":[\"lay/layer.tar\"]}]", cname) < 0)
                return;
        struct member m[] = {
                { "lay/layer.tar", layer, nl, NULL },
                { cname, cfg, strlen(cfg), NULL },
                { "manifest.json", mj, strlen(mj), NULL },
        };
        fd = make_tar(m, ELEMENTSOF(m), true);
        ev.layer_total = (int64_t) nl;
        struct moat_archive_load_options opts = { .progress = on_progress, .userdata = &ev };
        r = moat_archive_load(s, fd, &opts, &res, &err);
        close(fd);
        is_int(r, 0, "load with a progress callback%s%s", err ? ": " : "", err ? err->msg : "");
        is_int(ev.layer_done, 1, "the layer is reported done once");
        ok(ev.layer_calls >= 4 && ev.layer_calls <= nl / (512 * 1024) + 3,
           "the layer's progress comes every 512 KiB at most (%zu calls for %zu bytes)", ev.layer_calls, nl);
        ok(ev.monotonic, "bytes only grow");
        ok(ev.totals_right, "total is the member size, and current reaches it when done");
        ok(ev.named, "the legacy layer is named by its member, no digest");
        is_int(ev.doc_done, 1, "the config is a document, done once");
        ok(ev.config_named, "the config carries the digest of its name");
        ok(ev.last_current == nl, "the last layer call has every byte");
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                ok(false, "mkdtemp");
                return tap_done();
        }
        test_legacy();
        test_oci();
        test_corrupt();
        test_bad_names();
        test_layout_dir();
        test_progress();

        {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
                if (system(cmd) != 0) {
                }
        }
        return tap_done();
}
