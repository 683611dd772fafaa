/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit test of layer unpacking (src/image/layer.c). Every layer is crafted
 * here with libarchive's writer (pax tar, then gzip / zstd / nothing
 * through the raw writer so the uncompressed tar bytes are known exactly),
 * fed through a memfd and unpacked into a fresh tree under a temp dir that
 * also holds a sentinel file next to the tree. Hostile layers (image.md §4)
 * check that nothing is created or changed outside the tree.
 */

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "image/layer.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-layer-XXXXXX";
static int tree_counter;

struct ent {
        char type;  /* f file, d dir, l symlink, h hardlink, p fifo, c chardev */
        const char *path;
        const char *arg;  /* file content, symlink or hardlink target */
        mode_t mode;
        unsigned major, minor;
        const char *xname;
        const void *xval;
        size_t xlen;
        int64_t uid;
};

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

#define MTIME 1600000000

static bool make_tar(const struct ent *ents, size_t n, struct buf *out)
{
        struct archive *a = archive_write_new();
        bool good = false;

        *out = (struct buf) {};
        if (archive_write_set_format_pax(a) != ARCHIVE_OK || archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_open2(a, out, NULL, buf_write, NULL, NULL) != ARCHIVE_OK)
                goto out;
        for (size_t i = 0; i < n; i++) {
                const struct ent *x = &ents[i];
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, x->path);
                archive_entry_set_mtime(e, MTIME, 123);
                archive_entry_set_uid(e, x->uid);
                archive_entry_set_gid(e, x->uid);
                size_t size = 0;
                switch (x->type) {
                case 'f':
                        archive_entry_set_filetype(e, AE_IFREG);
                        size = strlen(x->arg);
                        break;
                case 'd':
                        archive_entry_set_filetype(e, AE_IFDIR);
                        break;
                case 'l':
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, x->arg);
                        break;
                case 'h':
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_hardlink(e, x->arg);
                        break;
                case 'p':
                        archive_entry_set_filetype(e, AE_IFIFO);
                        break;
                case 'c':
                        archive_entry_set_filetype(e, AE_IFCHR);
                        archive_entry_set_rdevmajor(e, x->major);
                        archive_entry_set_rdevminor(e, x->minor);
                        break;
                }
                archive_entry_set_perm(e, x->mode ? x->mode : (x->type == 'd' ? 0755 : 0644));
                archive_entry_set_size(e, (la_int64_t) size);
                if (x->xname)
                        archive_entry_xattr_add_entry(e, x->xname, x->xval, x->xlen);
                int r = archive_write_header(a, e);
                if (r == ARCHIVE_OK && size > 0 && archive_write_data(a, x->arg, size) != (la_ssize_t) size)
                        r = ARCHIVE_FATAL;
                archive_entry_free(e);
                if (r != ARCHIVE_OK) {
                        printf("# writing %s: %s\n", x->path, archive_error_string(a));
                        goto out;
                }
        }
        good = archive_write_close(a) == ARCHIVE_OK;
out:
        archive_write_free(a);
        return good;
}

/* filter: 'n' none, 'g' gzip, 'z' zstd */
static bool compress(const struct buf *tar, char filter, struct buf *out)
{
        if (filter == 'n') {
                *out = (struct buf) { .data = malloc(tar->size), .size = tar->size, .cap = tar->size };
                if (!out->data)
                        return false;
                memcpy(out->data, tar->data, tar->size);
                return true;
        }
        struct archive *a = archive_write_new();
        bool good = false;
        *out = (struct buf) {};
        if (archive_write_set_format_raw(a) != ARCHIVE_OK ||
            (filter == 'g' ? archive_write_add_filter_gzip(a) : archive_write_add_filter_zstd(a)) != ARCHIVE_OK ||
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
        if (!good)
                printf("# compress: %s\n", archive_error_string(a));
        archive_write_free(a);
        return good;
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

struct run {
        int r;
        struct moat_layer_result res;
        char tree[256];
        int tree_fd;
        char msg[512];
        char want_compressed[80], want_diff[80];
};

/* Build, compress, unpack into a new tree. */
static void run_layer(const struct ent *ents, size_t n, char filter, const struct moat_layer_options *opts,
                      struct run *out)
{
        struct buf tar, comp;
        _cleanup_error_ struct moat_error *err = NULL;

        *out = (struct run) { .r = -EINVAL, .tree_fd = -EBADF };
        snprintf(out->tree, sizeof(out->tree), "%s/tree%d", tmpdir, ++tree_counter);
        if (mkdir(out->tree, 0755) < 0 || !make_tar(ents, n, &tar))
                return;
        if (!compress(&tar, filter, &comp)) {
                free(tar.data);
                return;
        }
        sha256_hex(tar.data, tar.size, out->want_diff);
        sha256_hex(comp.data, comp.size, out->want_compressed);

        int in = memfd_create("layer", MFD_CLOEXEC);
        if (in < 0 || write(in, comp.data, comp.size) != (ssize_t) comp.size || lseek(in, 0, SEEK_SET) != 0) {
                free(tar.data);
                free(comp.data);
                return;
        }
        free(tar.data);
        free(comp.data);
        out->tree_fd = open(out->tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        out->r = moat_layer_unpack(in, out->tree_fd, opts, &out->res, &err);
        close(in);
        if (err)
                snprintf(out->msg, sizeof(out->msg), "%s", err->msg);
        if (out->r < 0)
                printf("# unpack: %s\n", out->msg);
}

static void run_close(struct run *r)
{
        r->tree_fd = safe_close(r->tree_fd);
}

static bool exists_at(const char *dir, const char *name)
{
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        return lstat(p, &st) == 0;
}

static bool stat_in(const struct run *r, const char *name, struct stat *st)
{
        return fstatat(r->tree_fd, name, st, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool content_is(const struct run *r, const char *name, const char *want)
{
        char buf[256] = {};
        int fd = openat(r->tree_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return false;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        return n >= 0 && streq(buf, want);
}

/* ---- a normal layer, each compression ---------------------------------- */

static const uint8_t cap_value[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00 }; /* v2, NET_BIND_SERVICE */

static void test_normal(char filter)
{
        const struct ent ents[] = {
                { 'd', "./", NULL, 0755, 0, 0, NULL, NULL, 0, 0 },
                { 'd', "./usr/", NULL, 0750, 0, 0, NULL, NULL, 0, 0 },
                { 'd', "usr/bin", NULL, 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "usr/bin/tool", "#!/bin/sh\necho tool\n", 04755, 0, 0, NULL, NULL, 0, 1000 },
                { 'f', "usr/bin/ping", "ping", 0755, 0, 0, "security.capability", cap_value, sizeof(cap_value), 0 },
                { 'l', "usr/bin/link", "tool", 0777, 0, 0, NULL, NULL, 0, 0 },
                { 'l', "usr/abs", "/etc/passwd", 0777, 0, 0, NULL, NULL, 0, 0 },
                { 'h', "usr/bin/tool2", "usr/bin/tool", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'h', "usr/bin/tool3", "/usr/bin/tool", 0, 0, 0, NULL, NULL, 0, 0 },  /* absolute: root-relative */
                { 'p', "run/fifo", NULL, 0620, 0, 0, NULL, NULL, 0, 0 },  /* parent created */
                { 'f', "sticky/x", "x", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'd', "sticky", NULL, 01777, 0, 0, NULL, NULL, 0, 0 },  /* merged, mode set */
        };
        struct moat_layer_options opts = { .keep_ownership = true };
        struct run r;
        struct stat st, st2;
        char buf[256];

        run_layer(ents, ELEMENTSOF(ents), filter, &opts, &r);
        is_int(r.r, 0, "[%c] normal layer unpacks", filter);
        is_str(r.res.compressed_digest, r.want_compressed, "[%c] compressed digest is sha256 of the blob", filter);
        is_str(r.res.diff_id, r.want_diff, "[%c] DiffID is sha256 of the uncompressed tar", filter);
        is_int(r.res.entries, ELEMENTSOF(ents), "[%c] entry count", filter);
        ok(r.res.uncompressed_size > 0 && r.res.uncompressed_size % 512 == 0, "[%c] uncompressed size %llu", filter,
           (unsigned long long) r.res.uncompressed_size);

        ok(stat_in(&r, "usr", &st) && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750, "[%c] dir mode 0750",
           filter);
        ok(stat_in(&r, "usr", &st) && st.st_mtim.tv_sec == MTIME, "[%c] dir mtime kept after its contents", filter);
        ok(stat_in(&r, "usr/bin/tool", &st) && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 04755,
           "[%c] setuid mode 04755 kept", filter);
        ok(st.st_uid == 1000 && st.st_gid == 1000, "[%c] ownership kept", filter);
        ok(st.st_mtim.tv_sec == MTIME && st.st_mtim.tv_nsec == 123, "[%c] file mtime kept", filter);
        ok(content_is(&r, "usr/bin/tool", "#!/bin/sh\necho tool\n"), "[%c] file content", filter);
        ok(stat_in(&r, "usr/bin/tool2", &st2) && st2.st_ino == st.st_ino && st.st_nlink == 3,
           "[%c] hardlinks share the inode (nlink %lu)", filter, (unsigned long) st.st_nlink);

        char pp[512];
        snprintf(pp, sizeof(pp), "%s/usr/bin/ping", r.tree);
        ssize_t n = getxattr(pp, "security.capability", buf, sizeof(buf));
        ok(n == sizeof(cap_value) && memcmp(buf, cap_value, sizeof(cap_value)) == 0,
           "[%c] security.capability xattr kept", filter);

        n = readlinkat(r.tree_fd, "usr/bin/link", buf, sizeof(buf) - 1);
        ok(n == 4 && memcmp(buf, "tool", 4) == 0, "[%c] symlink target kept", filter);
        n = readlinkat(r.tree_fd, "usr/abs", buf, sizeof(buf) - 1);
        ok(n == 11 && memcmp(buf, "/etc/passwd", 11) == 0, "[%c] absolute symlink target kept as is", filter);
        ok(stat_in(&r, "run/fifo", &st) && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0620, "[%c] fifo", filter);
        ok(stat_in(&r, "sticky", &st) && (st.st_mode & 07777) == 01777 && exists_at(r.tree, "sticky/x"),
           "[%c] directory entry after its content merges, sticky mode", filter);
        run_close(&r);
}

/* ---- whiteouts ------------------------------------------------------------ */

static void test_whiteouts(void)
{
        const struct ent ents[] = {
                { 'd', "d", NULL, 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "d/.wh..wh..opq", "", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "d/.wh.gone", "", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "e/keep", "k", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "e/.wh.keep", "", 0, 0, 0, NULL, NULL, 0, 0 },  /* replaces the file */
                /* a layer must not forge overlay xattrs */
                { 'f', "forged", "", 0, 0, 0, "trusted.overlay.redirect", "/etc", 4, 0 },
        };
        struct run r;
        struct stat st;
        char buf[16] = {};
        char p[512];

        run_layer(ents, ELEMENTSOF(ents), 'g', NULL, &r);
        is_int(r.r, 0, "whiteout layer unpacks");
        snprintf(p, sizeof(p), "%s/d", r.tree);
        ok(getxattr(p, "trusted.overlay.opaque", buf, sizeof(buf)) == 1 && buf[0] == 'y',
           ".wh..wh..opq makes its directory opaque");
        ok(!exists_at(r.tree, "d/.wh..wh..opq"), "opaque marker itself not created");
        ok(stat_in(&r, "d/.wh.gone", &st) == false && stat_in(&r, "d/gone", &st) && S_ISCHR(st.st_mode) &&
           st.st_rdev == makedev(0, 0), ".wh.gone becomes a 0/0 char device \"gone\"");
        ok(stat_in(&r, "e/keep", &st) && S_ISCHR(st.st_mode), "whiteout replaces an earlier file of the layer");
        snprintf(p, sizeof(p), "%s/forged", r.tree);
        ok(getxattr(p, "trusted.overlay.redirect", buf, sizeof(buf)) < 0 && errno == ENODATA,
           "trusted.overlay.* xattr from the archive dropped");
        run_close(&r);
}

/* ---- hostile layers -------------------------------------------------------- */

static bool sentinel_intact(void)
{
        char p[512];
        struct stat st;
        snprintf(p, sizeof(p), "%s/sentinel", tmpdir);
        return stat(p, &st) == 0 && st.st_size == 8 && (st.st_mode & 07777) == 0600;
}

static void expect_refused(const struct ent *ents, size_t n, const char *name, const char *msg_part)
{
        struct run r;
        run_layer(ents, n, 'n', NULL, &r);
        ok(r.r < 0 && strstr(r.msg, msg_part), "%s: refused (%s)", name, r.msg);
        ok(sentinel_intact() && !exists_at(tmpdir, "escape") && !exists_at("/", "moat-layer-escape") &&
           !exists_at("/tmp", "moat-layer-escape"),
           "%s: nothing created outside the tree", name);
        run_close(&r);
}

static void test_dotdot(void)
{
        const struct ent e1[] = { { 'f', "../escape", "x", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e1, 1, "../escape", "leaves the layer");
        const struct ent e2[] = { { 'f', "/abs/../../escape", "x", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e2, 1, "/abs/../../escape", "leaves the layer");
        const struct ent e3[] = { { 'f', "a/../../../moat-layer-escape", "x", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e3, 1, "a/../../../moat-layer-escape", "leaves the layer");

        /* contained: ".." inside the tree and absolute names are root-relative */
        const struct ent e4[] = {
                { 'f', "/abs/../inside", "x", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "/etc/moat-abs", "x", 0, 0, 0, NULL, NULL, 0, 0 },
        };
        struct run r;
        run_layer(e4, 2, 'n', NULL, &r);
        ok(r.r == 0 && exists_at(r.tree, "inside") && exists_at(r.tree, "etc/moat-abs") &&
           !exists_at("/etc", "moat-abs"), "\"/abs/../inside\" and \"/etc/moat-abs\" land inside the tree");
        run_close(&r);
}

/* CVE-2018-15664 / CVE-2021-29136 class: writing through a symlink to "/" */
static void test_symlink_to_root(void)
{
        struct stat before, after;
        ok(stat("/etc/passwd", &before) == 0, "host /etc/passwd stat before");

        const struct ent ents[] = {
                { 'l', "link", "/", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "link/etc/passwd", "pwned\n", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "link/moat-layer-escape", "pwned\n", 0, 0, 0, NULL, NULL, 0, 0 },
        };
        struct run r;
        run_layer(ents, ELEMENTSOF(ents), 'z', NULL, &r);
        ok(stat("/etc/passwd", &after) == 0 && after.st_size == before.st_size &&
           after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec &&
           after.st_ino == before.st_ino, "CVE-2018-15664 class: host /etc/passwd untouched");
        ok(r.r == 0 && content_is(&r, "etc/passwd", "pwned\n") && !exists_at("/", "moat-layer-escape"),
           "\"link/etc/passwd\" through link -> / lands inside the tree");
        run_close(&r);

        /* CVE-2021-29136: an entry for "." must not change the root's type */
        const struct ent dot[] = { { 'l', ".", "/", 0, 0, 0, NULL, NULL, 0, 0 },
                                   { 'f', "moat-layer-escape", "x", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(dot, 2, "CVE-2021-29136 symlink \".\" -> /", "would replace the layer root");
}

/* CVE-2020-27833: chains of relative symlinks */
static void test_symlink_chains(void)
{
        const struct ent ents[] = {
                { 'l', "a", "../../..", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "a/moat-x", "x", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'd', "sub", NULL, 0, 0, 0, NULL, NULL, 0, 0 },
                { 'l', "sub/parent", "..", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'l', "sub/parent/escape", "..", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "sub/parent/escape/moat-y", "y", 0, 0, 0, NULL, NULL, 0, 0 },
        };
        struct run r;
        run_layer(ents, ELEMENTSOF(ents), 'g', NULL, &r);
        is_int(r.r, 0, "symlink chain layer unpacks contained");
        ok(exists_at(r.tree, "moat-x") && !exists_at(tmpdir, "moat-x") && !exists_at("/", "moat-x") &&
           !exists_at("/tmp", "moat-x"), "a -> ../../.. then a/moat-x lands at the tree root");
        ok(exists_at(r.tree, "moat-y") && !exists_at(tmpdir, "moat-y") && !exists_at("/", "moat-y") &&
           !exists_at("/tmp", "moat-y"), "CVE-2020-27833: sub/parent -> .., parent/escape -> .. stays inside");
        ok(sentinel_intact(), "sentinel intact after symlink chains");
        run_close(&r);
}

/* CVE-2021-32760: chmod/chown must not follow a symlink */
static void test_chmod_symlink(void)
{
        struct stat before, after;
        ok(stat("/etc/passwd", &before) == 0, "host /etc/passwd stat before");
        const struct ent ents[] = {
                { 'l', "p", "/etc/passwd", 0777, 0, 0, NULL, NULL, 0, 4242 },
                { 'l', "q", "../../../../../../etc/passwd", 0777, 0, 0, NULL, NULL, 0, 4242 },
        };
        struct moat_layer_options opts = { .keep_ownership = true };
        struct run r;
        run_layer(ents, ELEMENTSOF(ents), 'n', &opts, &r);
        struct stat st;
        ok(r.r == 0 && stat_in(&r, "p", &st) && S_ISLNK(st.st_mode) && st.st_uid == 4242, "symlink owned (lchown)");
        ok(stat("/etc/passwd", &after) == 0 && after.st_mode == before.st_mode && after.st_uid == before.st_uid &&
           after.st_mtim.tv_sec == before.st_mtim.tv_sec,
           "CVE-2021-32760: host /etc/passwd mode, owner and mtime unchanged");
        run_close(&r);
}

static void test_hardlinks_out(void)
{
        struct stat before, after;
        ok(stat("/etc/passwd", &before) == 0, "host /etc/passwd stat before");
        const struct ent e1[] = { { 'h', "pw", "/etc/passwd", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e1, 1, "hardlink to /etc/passwd", "is not in the layer");
        ok(stat("/etc/passwd", &after) == 0 && after.st_nlink == before.st_nlink, "host /etc/passwd nlink unchanged");

        const struct ent e2[] = { { 'h', "out", "../sentinel", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e2, 1, "hardlink to ../sentinel", "leaves the layer");

        /* through a symlink to the host: resolved in the tree */
        const struct ent e3[] = { { 'l', "etc", "/etc", 0, 0, 0, NULL, NULL, 0, 0 },
                                  { 'h', "pw", "etc/passwd", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e3, 2, "hardlink through symlink etc -> /etc", "is not in the layer");

        const struct ent e4[] = { { 'd', "dir", NULL, 0, 0, 0, NULL, NULL, 0, 0 },
                                  { 'h', "dl", "dir", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e4, 2, "hardlink to a directory", "is a directory");
}

static void test_bad_whiteouts(void)
{
        const struct ent e1[] = { { 'f', ".wh.../x", "", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e1, 1, "whiteout \".wh.../x\"", "whiteout");
        const struct ent e2[] = { { 'f', "d/.wh...", "", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e2, 1, "whiteout \"d/.wh...\"", "invalid whiteout name");
        const struct ent e3[] = { { 'f', ".wh.", "", 0, 0, 0, NULL, NULL, 0, 0 } };
        expect_refused(e3, 1, "whiteout \".wh.\"", "invalid whiteout name");
}

static void test_bounds(void)
{
        const struct ent ents[] = {
                { 'f', "a", "a", 0, 0, 0, NULL, NULL, 0, 0 }, { 'f', "b", "b", 0, 0, 0, NULL, NULL, 0, 0 },
                { 'f', "c", "c", 0, 0, 0, NULL, NULL, 0, 0 }, { 'f', "d", "d", 0, 0, 0, NULL, NULL, 0, 0 },
        };
        struct moat_layer_options opts = { .max_entries = 3 };
        struct run r;
        run_layer(ents, ELEMENTSOF(ents), 'g', &opts, &r);
        ok(r.r == -E2BIG && strstr(r.msg, "more than 3 entries"), "entry count bound (%s)", r.msg);
        ok(!exists_at(r.tree, "d"), "entry past the bound not created");
        run_close(&r);

        opts = (struct moat_layer_options) { .max_entries = 4 };
        run_layer(ents, ELEMENTSOF(ents), 'g', &opts, &r);
        is_int(r.r, 0, "exactly max_entries entries accepted");
        run_close(&r);

        static char big[20001];
        memset(big, 'z', sizeof(big) - 1);
        const struct ent b[] = { { 'f', "big", big, 0, 0, 0, NULL, NULL, 0, 0 } };
        opts = (struct moat_layer_options) { .max_bytes = 10000 };
        run_layer(b, 1, 'z', &opts, &r);
        ok(r.r == -EFBIG && strstr(r.msg, "larger than 10000 bytes"), "uncompressed size bound (%s)", r.msg);
        run_close(&r);

        char longname[4200];
        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        for (size_t i = 200; i < sizeof(longname) - 1; i += 200)
                longname[i] = '/';
        const struct ent l[] = { { 'f', longname, "x", 0, 0, 0, NULL, NULL, 0, 0 } };
        run_layer(l, 1, 'n', NULL, &r);
        ok(r.r == -ENAMETOOLONG, "path longer than 4096 refused");
        run_close(&r);
}

static void test_devices(void)
{
        const struct ent ents[] = {
                { 'c', "dev/null", NULL, 0666, 1, 3, NULL, NULL, 0, 0 },
                { 'f', "after", "x", 0, 0, 0, NULL, NULL, 0, 0 },
        };
        struct run r;
        struct stat st;
        run_layer(ents, ELEMENTSOF(ents), 'n', NULL, &r);
        ok(r.r == 0 && !exists_at(r.tree, "dev/null") && !exists_at(r.tree, "dev") && exists_at(r.tree, "after"),
           "char device skipped without allow_devices, later entries unpacked");
        run_close(&r);

        struct moat_layer_options opts = { .allow_devices = true };
        run_layer(ents, ELEMENTSOF(ents), 'n', &opts, &r);
        ok(r.r == 0 && stat_in(&r, "dev/null", &st) && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) &&
           (st.st_mode & 0777) == 0666, "char device 1:3 created with allow_devices");
        run_close(&r);
}

static void test_garbage(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        int in = memfd_create("garbage", MFD_CLOEXEC);
        char junk[1024];
        memset(junk, 0x5a, sizeof(junk));
        ok(in >= 0 && write(in, junk, sizeof(junk)) == (ssize_t) sizeof(junk) && lseek(in, 0, SEEK_SET) == 0,
           "garbage input prepared");
        int d = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = moat_layer_unpack(in, d, NULL, NULL, &err);
        ok(r < 0 && err && err->msg, "non-tar input refused (%s)", err ? err->msg : "");
        close(d);
        close(in);
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        char p[512];
        snprintf(p, sizeof(p), "%s/sentinel", tmpdir);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, "sentinel", 8) != 8) {
                printf("Bail out! sentinel: %m\n");
                return 1;
        }
        close(fd);

        test_normal('n');
        test_normal('g');
        test_normal('z');
        test_whiteouts();
        test_dotdot();
        test_symlink_to_root();
        test_symlink_chains();
        test_chmod_symlink();
        test_hardlinks_out();
        test_bad_whiteouts();
        test_bounds();
        test_devices();
        test_garbage();

        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system -- '%s'", tmpdir);
        if (system(cmd) != 0) {
        }
        return tap_done();
}
