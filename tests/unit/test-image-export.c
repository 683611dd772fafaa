/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of image/export.c: a tree made here (directories, a setuid
 * file, hard links, symlinks to /etc/passwd and "../../", a fifo, a char
 * device, an overlay whiteout, a socket, xattrs among them
 * security.capability and trusted.overlay.*, fixed owners and mtimes) is
 * exported, read back with libarchive and every header checked: names,
 * order, types, modes, owners, mtimes, sizes, link targets, device
 * numbers, xattrs and contents. Also the depth bound and an exported tree
 * unpacked again by the layer code.
 */

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "image/export.h"
#include "image/layer.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-export-XXXXXX";
static char tree[64];

/* security.capability v2 with cap_net_raw permitted+effective. */
static const unsigned char capability[20] = {
        0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

#define MTIME 1000000000

static void must(int r, const char *what)
{
        if (r < 0) {
                printf("Bail out! %s: %s\n", what, strerror(errno));
                exit(1);
        }
}

static void file_at(int dfd, const char *name, const char *data, mode_t mode)
{
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        must(fd, name);
        must((int) write(fd, data, strlen(data)), name);
        must(fchmod(fd, mode), name);
        close(fd);
}

static void times_at(int dfd, const char *name)
{
        struct timespec ts[2] = { { MTIME, 500000000 }, { MTIME, 500000000 } };
        must(utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW), name);
}

static void make_tree(void)
{
        int root, fd;

        snprintf(tree, sizeof(tree), "%s/tree", tmpdir);
        must(mkdir(tree, 0755), tree);
        root = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        must(root, tree);
        must(mkdirat(root, "bin", 0755), "bin");
        must(mkdirat(root, "etc", 0750), "etc");
        must(mkdirat(root, "opaque", 0700), "opaque");
        file_at(root, "bin/busybox", "#!busybox\n", 0755);
        must(linkat(root, "bin/busybox", root, "bin/sh", 0), "bin/sh");
        must(linkat(root, "bin/busybox", root, "bin/ash", 0), "bin/ash");
        must(symlinkat("/etc/passwd", root, "etc/passwd-link"), "passwd-link");
        must(symlinkat("../../", root, "etc/up"), "up");
        file_at(root, "etc/shadow", "root:*:1:0:99999:7:::\n", 0640);
        must(fchownat(root, "etc/shadow", 0, 42, 0), "chown shadow");
        file_at(root, "suid", "x", 04755);
        file_at(root, "ping", "ping\n", 0755);
        must(fchownat(root, "ping", 1234, 5678, 0), "chown ping");
        fd = openat(root, "ping", O_RDONLY | O_CLOEXEC);
        must(fsetxattr(fd, "security.capability", capability, sizeof(capability), 0), "security.capability");
        must(fsetxattr(fd, "user.note", "hello", 5, 0), "user.note");
        close(fd);
        fd = openat(root, "opaque", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        must(fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0), "trusted.overlay.opaque");
        must(fsetxattr(fd, "trusted.moat", "kept", 4, 0), "trusted.moat");
        close(fd);
        file_at(root, "opaque/file", "", 0600);
        must(mkfifoat(root, "fifo", 0644), "fifo");
        must(mknodat(root, "null", S_IFCHR | 0666, makedev(1, 3)), "null");
        must(mknodat(root, "loop9", S_IFBLK | 0660, makedev(7, 9)), "loop9");
        must(fchmodat(root, "null", 0666, 0), "chmod null");
        must(fchmodat(root, "loop9", 0660, 0), "chmod loop9");
        must(fchmodat(root, "fifo", 0644, 0), "chmod fifo");
        must(mknodat(root, "whiteout", S_IFCHR | 0000, makedev(0, 0)), "whiteout");
        /* A socket, bound in the tree. */
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", tree);
        must(bind(s, (struct sockaddr *) &sa, sizeof(sa)), "bind");
        close(s);
        static const char *const stamped[] = { "bin/busybox", "etc/passwd-link", "etc/up", "etc/shadow", "suid",
                                               "ping", "opaque/file", "fifo", "null", "loop9", "opaque",
                                               "etc", "bin" };
        for (size_t i = 0; i < ELEMENTSOF(stamped); i++)
                times_at(root, stamped[i]);
        close(root);
}

struct want {
        const char *path;
        mode_t type;
        mode_t perm;
        uid_t uid;
        gid_t gid;
        const char *data;     /* regular files */
        const char *symlink;
        const char *hardlink;
        unsigned maj, min;
};

static const struct want wants[] = {
        { .path = "bin/", .type = AE_IFDIR, .perm = 0755 },
        { .path = "bin/ash", .type = AE_IFREG, .perm = 0755, .data = "#!busybox\n" },
        { .path = "bin/busybox", .type = AE_IFREG, .perm = 0755, .hardlink = "bin/ash" },
        { .path = "bin/sh", .type = AE_IFREG, .perm = 0755, .hardlink = "bin/ash" },
        { .path = "etc/", .type = AE_IFDIR, .perm = 0750 },
        { .path = "etc/passwd-link", .type = AE_IFLNK, .perm = 0777, .symlink = "/etc/passwd" },
        { .path = "etc/shadow", .type = AE_IFREG, .perm = 0640, .gid = 42, .data = "root:*:1:0:99999:7:::\n" },
        { .path = "etc/up", .type = AE_IFLNK, .perm = 0777, .symlink = "../../" },
        { .path = "fifo", .type = AE_IFIFO, .perm = 0644 },
        { .path = "loop9", .type = AE_IFBLK, .perm = 0660, .maj = 7, .min = 9 },
        { .path = "null", .type = AE_IFCHR, .perm = 0666, .maj = 1, .min = 3 },
        { .path = "opaque/", .type = AE_IFDIR, .perm = 0700 },
        { .path = "opaque/file", .type = AE_IFREG, .perm = 0600, .data = "" },
        { .path = "ping", .type = AE_IFREG, .perm = 0755, .uid = 1234, .gid = 5678, .data = "ping\n" },
        { .path = "suid", .type = AE_IFREG, .perm = 04755, .data = "x" },
};

static const void *xattr_of(struct archive_entry *e, const char *name, size_t *ret_len)
{
        const char *n;
        const void *v;
        size_t len;

        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &n, &v, &len) == ARCHIVE_OK)
                if (streq(n, name)) {
                        *ret_len = len;
                        return v;
                }
        return NULL;
}

static void test_export_tree(void)
{
        _cleanup_close_ int root = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int out = memfd_create("tar", MFD_CLOEXEC);
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_export_result res = {};
        struct archive_entry *e;
        struct archive *a;
        size_t i = 0;

        int r = moat_export_tree(root, out, NULL, &res, &err);
        is_int(r, 0, "export the tree%s%s", err ? ": " : "", err ? err->msg : "");
        is_int(res.entries, ELEMENTSOF(wants), "%zu entries written", ELEMENTSOF(wants));
        lseek(out, 0, SEEK_SET);
        a = archive_read_new();
        archive_read_support_format_tar(a);
        is_int(archive_read_open_fd(a, out, 10240), ARCHIVE_OK, "read the tar back");
        while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
                const char *p = archive_entry_pathname(e);
                if (i >= ELEMENTSOF(wants)) {
                        ok(false, "unexpected extra entry %s", p);
                        continue;
                }
                const struct want *w = &wants[i++];
                is_str(p, w->path, "entry %zu is %s (sorted, relative)", i, w->path);
                if (!streq(p, w->path))
                        continue;
                if (w->hardlink) {
                        is_str(archive_entry_hardlink(e), w->hardlink, "%s: hard link to %s", p, w->hardlink);
                        is_int(archive_entry_size(e), 0, "%s: hard link has no data", p);
                        continue;
                }
                is_int(archive_entry_filetype(e), w->type, "%s: type", p);
                is_int(archive_entry_perm(e), w->perm, "%s: mode %o", p, w->perm);
                is_int(archive_entry_uid(e), w->uid, "%s: uid", p);
                is_int(archive_entry_gid(e), w->gid, "%s: gid", p);
                ok(strempty(archive_entry_uname(e)) && strempty(archive_entry_gname(e)), "%s: no host user names", p);
                is_int(archive_entry_mtime(e), MTIME, "%s: mtime in seconds", p);
                is_int(archive_entry_mtime_nsec(e), 0, "%s: no sub-second mtime", p);
                ok(!archive_entry_atime_is_set(e) && !archive_entry_ctime_is_set(e), "%s: no atime/ctime", p);
                if (w->symlink) {
                        is_str(archive_entry_symlink(e), w->symlink, "%s: symlink target, not followed", p);
                        is_int(archive_entry_size(e), 0, "%s: no data", p);
                }
                if (w->type == AE_IFCHR || w->type == AE_IFBLK) {
                        is_int(archive_entry_rdevmajor(e), w->maj, "%s: major", p);
                        is_int(archive_entry_rdevminor(e), w->min, "%s: minor", p);
                }
                if (w->data) {
                        char buf[256] = "";
                        is_int(archive_entry_size(e), strlen(w->data), "%s: size", p);
                        la_ssize_t k = archive_read_data(a, buf, sizeof(buf) - 1);
                        is_int(k, strlen(w->data), "%s: data length", p);
                        is_str(buf, w->data, "%s: content", p);
                }
                size_t len = 0;
                const void *v;
                if (streq(p, "ping")) {
                        v = xattr_of(e, "security.capability", &len);
                        ok(v && len == sizeof(capability) && memcmp(v, capability, len) == 0,
                           "ping: security.capability kept");
                        v = xattr_of(e, "user.note", &len);
                        ok(v && len == 5 && memcmp(v, "hello", 5) == 0, "ping: user.note kept");
                } else if (streq(p, "opaque/")) {
                        ok(!xattr_of(e, "trusted.overlay.opaque", &len), "opaque: trusted.overlay.* skipped");
                        v = xattr_of(e, "trusted.moat", &len);
                        ok(v && len == 4 && memcmp(v, "kept", 4) == 0, "opaque: other trusted.* kept");
                } else if (streq(p, "suid"))
                        is_int(archive_entry_mode(e) & 07777, 04755, "suid: setuid bit kept");
        }
        is_int(i, ELEMENTSOF(wants), "every expected entry seen (no whiteout, no socket)");
        archive_read_free(a);

        /* The same tree exports to the same bytes. */
        _cleanup_close_ int out2 = memfd_create("tar2", MFD_CLOEXEC);
        is_int(moat_export_tree(root, out2, NULL, NULL, NULL), 0, "export again");
        struct stat s1, s2;
        fstat(out, &s1);
        fstat(out2, &s2);
        bool same = s1.st_size == s2.st_size;
        if (same) {
                void *m1 = mmap(NULL, (size_t) s1.st_size, PROT_READ, MAP_PRIVATE, out, 0);
                void *m2 = mmap(NULL, (size_t) s2.st_size, PROT_READ, MAP_PRIVATE, out2, 0);
                same = m1 != MAP_FAILED && m2 != MAP_FAILED && memcmp(m1, m2, (size_t) s1.st_size) == 0;
                munmap(m1, (size_t) s1.st_size);
                munmap(m2, (size_t) s2.st_size);
        }
        ok(same, "reproducible output (%lld bytes)", (long long) s1.st_size);
        ok(s1.st_size % 512 == 0 && s1.st_size < 64 * 1024, "no block padding beyond the tar's records");

        /* Unpacked again by the layer code: the links stay links. */
        char dest[300];
        snprintf(dest, sizeof(dest), "%s/unpacked", tmpdir);
        must(mkdir(dest, 0755), dest);
        _cleanup_close_ int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct moat_layer_options lo = { .allow_devices = true, .keep_ownership = true };
        struct moat_layer_result lr;
        _cleanup_error_ struct moat_error *uerr = NULL;
        lseek(out, 0, SEEK_SET);
        r = moat_layer_unpack(out, dfd, &lo, &lr, &uerr);
        is_int(r, 0, "the export unpacks as a layer%s%s", uerr ? ": " : "", uerr ? uerr->msg : "");
        char target[64] = "";
        ssize_t l = readlinkat(dfd, "etc/passwd-link", target, sizeof(target) - 1);
        ok(l > 0 && streq(target, "/etc/passwd"), "unpacked passwd-link is the symlink");
        struct stat a1, a2;
        ok(fstatat(dfd, "bin/sh", &a1, 0) == 0 && fstatat(dfd, "bin/ash", &a2, 0) == 0 && a1.st_ino == a2.st_ino,
           "unpacked bin/sh and bin/ash are one inode");
        ok(fstatat(dfd, "ping", &a1, 0) == 0 && a1.st_uid == 1234 && a1.st_gid == 5678, "unpacked ping's owner");
        ok(fgetxattr(dfd, "security.capability", NULL, 0) < 0, "no stray capability on the root");
        _cleanup_close_ int pfd = openat(dfd, "ping", O_RDONLY | O_CLOEXEC);
        unsigned char cap[64];
        ssize_t cl = fgetxattr(pfd, "security.capability", cap, sizeof(cap));
        ok(cl == sizeof(capability) && memcmp(cap, capability, sizeof(capability)) == 0,
           "unpacked ping keeps security.capability");
}

static void test_depth(void)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/deep", tmpdir);
        must(mkdir(path, 0755), path);
        _cleanup_close_ int root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        must(mkdirat(root, "a", 0755), "a");
        must(mkdirat(root, "a/b", 0755), "a/b");
        must(mkdirat(root, "a/b/c", 0755), "a/b/c");
        must(mkdirat(root, "a/b/c/d", 0755), "a/b/c/d");

        _cleanup_close_ int out = memfd_create("tar", MFD_CLOEXEC);
        struct moat_export_options o = { .max_depth = 4 };
        is_int(moat_export_tree(root, out, &o, NULL, NULL), 0, "4 levels with max_depth 4");
        _cleanup_error_ struct moat_error *err = NULL;
        o.max_depth = 3;
        is_int(moat_export_tree(root, out, &o, NULL, &err), -ELOOP, "4 levels with max_depth 3 refused");
        ok(err && strstr(err->msg, "a/b/c/d") && strstr(err->msg, "deeper than 3"), "message: %s",
           err ? err->msg : "(none)");

        _cleanup_close_ int reg = memfd_create("notdir", MFD_CLOEXEC);
        _cleanup_error_ struct moat_error *err2 = NULL;
        is_int(moat_export_tree(reg, out, NULL, NULL, &err2), -ENOTDIR, "a file as the root is refused");
}

int main(void)
{
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (device nodes, owners, trusted.* xattrs)\n");
                return 0;
        }
        if (!mkdtemp(tmpdir))
                return 1;
        make_tree();
        test_export_tree();
        test_depth();

        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
                ok(false, "remove %s", tmpdir);
        return tap_done();
}
