/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit test of container snapshots (src/image/snapshot.c), as root. Every
 * case runs in a forked child with its own mount namespace (unshare
 * CLONE_NEWNS, "/" made private) and a tmpfs on the temp dir, so mounts
 * and files vanish with the child; the parent only removes the empty temp
 * dir. Children print TAP lines numbered after the parent's count and send
 * back how many checks they ran and how many failed.
 *
 * Layers are hand-made in overlayfs form: whiteouts with mknodat(0/0), the
 * opaque mark with setxattr(trusted.overlay.opaque=y).
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <sched.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "image/snapshot.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-snapshot-XXXXXX";
static int tmp_fd = -EBADF;

/* ---- building layers ---------------------------------------------------- */

static bool put_file(int dir, const char *path, const char *content)
{
        _cleanup_close_ int fd = openat(dir, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return false;
        size_t l = strlen(content);
        return write(fd, content, l) == (ssize_t) l;
}

static bool put_dir(int dir, const char *path)
{
        return mkdirat(dir, path, 0755) == 0 || errno == EEXIST;
}

static bool put_whiteout(int dir, const char *path)
{
        return mknodat(dir, path, S_IFCHR | 0, makedev(0, 0)) == 0;
}

static bool put_opaque(int dir, const char *path)
{
        _cleanup_close_ int fd = openat(dir, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd >= 0 && fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) == 0;
}

/* Three layers in layers/:
 *   l0: a="a0" b="b0" d/{x,y} keep/k gone/sub/f sym->/etc/passwd fifo
 *   l1: a="a1" b=whiteout c="c1" d opaque with d/z, gone=whiteout
 *   l2: c="c2" e="e2" keep/k2 */
static const char *const ids3[] = { "l0", "l1", "l2" };

static bool make_layers(int layers)
{
        bool good = true;
        good &= mkdirat(layers, "l0", 0755) == 0 && mkdirat(layers, "l1", 0755) == 0 &&
                mkdirat(layers, "l2", 0755) == 0;
        _cleanup_close_ int l0 = openat(layers, "l0", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int l1 = openat(layers, "l1", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int l2 = openat(layers, "l2", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l0 < 0 || l1 < 0 || l2 < 0)
                return false;
        good &= put_file(l0, "a", "a0") && put_file(l0, "b", "b0") && put_dir(l0, "d") &&
                put_file(l0, "d/x", "x0") && put_file(l0, "d/y", "y0") && put_dir(l0, "keep") &&
                put_file(l0, "keep/k", "k0") && put_dir(l0, "gone") && put_dir(l0, "gone/sub") &&
                put_file(l0, "gone/sub/f", "f0") && symlinkat("/etc/passwd", l0, "sym") == 0 &&
                mknodat(l0, "fifo", S_IFIFO | 0640, 0) == 0;
        good &= fchownat(l0, "keep/k", 1234, 5678, 0) == 0 && fchmodat(l0, "b", 0600, 0) == 0;
        good &= put_file(l1, "a", "a1") && put_whiteout(l1, "b") && put_file(l1, "c", "c1") &&
                put_dir(l1, "d") && put_file(l1, "d/z", "z1") && put_opaque(l1, "d") &&
                put_whiteout(l1, "gone");
        good &= put_file(l2, "c", "c2") && put_file(l2, "e", "e2") && put_dir(l2, "keep") &&
                put_file(l2, "keep/k2", "k2");
        return good;
}

static char *read_at(int dir, const char *path)
{
        static char buf[256];
        _cleanup_close_ int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        ssize_t k = read(fd, buf, sizeof(buf) - 1);
        if (k < 0)
                return NULL;
        buf[k] = '\0';
        return buf;
}

static bool absent(int dir, const char *path)
{
        struct stat st;
        return fstatat(dir, path, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
}

static size_t count_entries(int dir, const char *path)
{
        int fd = openat(dir, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return (size_t) -1;
        DIR *d = fdopendir(fd);
        size_t n = 0;
        for (struct dirent *de; d && (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        if (d)
                closedir(d);
        else
                close(fd);
        return n;
}

/* One line per entry: path, type, mode, owner, size/rdev, content or
 * symlink target, sorted by path (scandir alphasort, depth first). */
static bool describe(int dir, const char *prefix, char **out, size_t *len, size_t *cap, int depth)
{
        if (depth > 32)
                return false;
        int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return false;
        char self[64];
        snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
        struct dirent **names = NULL;
        int n = scandir(self, &names, NULL, alphasort);
        bool good = n >= 0;
        for (int i = 0; good && i < n; i++) {
                const char *name = names[i]->d_name;
                if (streq(name, ".") || streq(name, ".."))
                        continue;
                struct stat st;
                if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        good = false;
                        break;
                }
                char path[512], extra[300] = "";
                snprintf(path, sizeof(path), "%s/%s", prefix, name);
                if (S_ISREG(st.st_mode)) {
                        const char *c = read_at(fd, name);
                        snprintf(extra, sizeof(extra), "%s", c ? c : "?");
                } else if (S_ISLNK(st.st_mode)) {
                        ssize_t k = readlinkat(fd, name, extra, sizeof(extra) - 1);
                        extra[k > 0 ? k : 0] = '\0';
                }
                char line[1024];
                int l = snprintf(line, sizeof(line), "%s %o %u:%u %lld %s\n", path, (unsigned) st.st_mode,
                                 (unsigned) st.st_uid, (unsigned) st.st_gid,
                                 S_ISDIR(st.st_mode) ? 0LL : (long long) st.st_size, extra);
                if (*len + (size_t) l + 1 > *cap) {
                        *cap = (*len + (size_t) l + 1) * 2;
                        char *p = realloc(*out, *cap);
                        if (!p) {
                                good = false;
                                break;
                        }
                        *out = p;
                }
                memcpy(*out + *len, line, (size_t) l + 1);
                *len += (size_t) l;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        good = sub >= 0 && describe(sub, path, out, len, cap, depth + 1);
                }
        }
        for (int i = 0; i < n; i++)
                free(names[i]);
        free(names);
        close(fd);
        return good;
}

static char *describe_tree(int dir)
{
        char *out = NULL;
        size_t len = 0, cap = 0;
        if (!describe(dir, "", &out, &len, &cap, 0)) {
                free(out);
                return NULL;
        }
        return out ? out : strdup("");
}

/* Open a fresh directory in the (tmpfs) temp dir. */
static int new_dir(const char *name)
{
        if (mkdirat(tmp_fd, name, 0755) < 0)
                return -errno;
        return openat(tmp_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* ---- cases ---------------------------------------------------------------- */

static void check_merged(int m, const char *what)
{
        is_str(read_at(m, "a"), "a1", "%s: a file replaced in l1 shows l1's content", what);
        ok(absent(m, "b"), "%s: a file whited out in l1 is absent", what);
        is_str(read_at(m, "c"), "c2", "%s: the topmost layer wins", what);
        is_str(read_at(m, "d/z"), "z1", "%s: the opaque dir shows its own entry", what);
        ok(absent(m, "d/x") && absent(m, "d/y"), "%s: the opaque dir hides l0's entries", what);
        is_int(count_entries(m, "d"), 1, "%s: the opaque dir lists one entry", what);
        ok(absent(m, "gone"), "%s: a directory whited out is absent", what);
        is_str(read_at(m, "keep/k"), "k0", "%s: a file from the lowest layer is visible", what);
        is_str(read_at(m, "keep/k2"), "k2", "%s: directories merge", what);
        char target[64] = "";
        ssize_t k = readlinkat(m, "sym", target, sizeof(target) - 1);
        target[k > 0 ? k : 0] = '\0';
        is_str(target, "/etc/passwd", "%s: the symlink is kept as is", what);
}

static void case_overlay(bool legacy)
{
        const char *what = legacy ? "legacy overlay" : "overlay";
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int layers = new_dir("layers");
        _cleanup_close_ int ctr = new_dir("ctr");
        _cleanup_close_ int merged = new_dir("merged");
        ok(layers >= 0 && ctr >= 0 && merged >= 0 && make_layers(layers), "%s: layers built", what);

        int r = moat_snapshot_prepare(layers, ids3, 3, ctr, false, &err);
        is_int(r, 0, "%s: prepare: %s", what, err ? err->msg : "ok");
        struct stat st;
        ok(fstatat(ctr, "upper", &st, 0) == 0 && S_ISDIR(st.st_mode) && fstatat(ctr, "work", &st, 0) == 0,
           "%s: prepare made upper/ and work/", what);

        _cleanup_close_ int target = openat(tmp_fd, "merged", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = legacy ? moat_snapshot_mount_legacy(layers, ids3, 3, ctr, false, target, &err)
                   : moat_snapshot_mount(layers, ids3, 3, ctr, false, target, &err);
        is_int(r, 0, "%s: mount: %s", what, err ? err->msg : "ok");
        _cleanup_close_ int m = openat(tmp_fd, "merged", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        check_merged(m, what);

        ok(put_file(m, "new", "n"), "%s: a new file can be written", what);
        is_str(read_at(ctr, "upper/new"), "n", "%s: the write landed in upper/", what);
        ok(unlinkat(m, "a", 0) == 0 && absent(m, "a"), "%s: a lower file can be deleted", what);
        ok(fstatat(ctr, "upper/a", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0,
           "%s: the deletion is a whiteout in upper/", what);
        is_str(read_at(layers, "l1/a"), "a1", "%s: the layer itself is untouched", what);
}

static void run_overlay(void) { case_overlay(false); }
static void run_overlay_legacy(void) { case_overlay(true); }

static void run_readonly(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int layers = new_dir("layers");
        _cleanup_close_ int ro3 = new_dir("ro3");
        _cleanup_close_ int ro1 = new_dir("ro1");
        ok(layers >= 0 && ro3 >= 0 && ro1 >= 0 && make_layers(layers), "readonly: layers built");

        int r = moat_snapshot_prepare(layers, ids3, 3, -EBADF, true, &err);
        is_int(r, 0, "readonly: prepare: %s", err ? err->msg : "ok");
        ok(absent(tmp_fd, "upper") && absent(tmp_fd, "work"), "readonly: prepare made nothing");

        _cleanup_close_ int t3 = openat(tmp_fd, "ro3", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_snapshot_mount(layers, ids3, 3, -EBADF, true, t3, &err);
        is_int(r, 0, "readonly: mount of 3 layers: %s", err ? err->msg : "ok");
        _cleanup_close_ int m3 = openat(tmp_fd, "ro3", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        check_merged(m3, "readonly");
        int fd = openat(m3, "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        is_int(fd < 0 ? errno : 0, EROFS, "readonly: creating a file gives EROFS");
        safe_close(fd);
        is_int(unlinkat(m3, "a", 0) < 0 ? errno : 0, EROFS, "readonly: deleting gives EROFS");

        _cleanup_close_ int t1 = openat(tmp_fd, "ro1", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_snapshot_mount(layers, ids3, 1, -EBADF, true, t1, &err);
        is_int(r, 0, "readonly: mount of 1 layer: %s", err ? err->msg : "ok");
        _cleanup_close_ int m1 = openat(tmp_fd, "ro1", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        is_str(read_at(m1, "b"), "b0", "readonly: the single layer is visible");
        fd = openat(m1, "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        is_int(fd < 0 ? errno : 0, EROFS, "readonly: creating a file in the single layer gives EROFS");
        safe_close(fd);
        is_int(unlinkat(m1, "a", 0) < 0 ? errno : 0, EROFS, "readonly: deleting in the single layer gives EROFS");
}

/* n layers named "sha256:<64 hex>" (71 bytes each); layer i holds f<i>,
 * layer 0 also "base"; the topmost whites out f0. */
static char **make_deep(int layers, size_t n)
{
        char **ids = calloc(n + 1, sizeof(char *));
        if (!ids)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (asprintf(&ids[i], "sha256:%064llx", (unsigned long long) i * 0x9e3779b97f4a7c15ULL) < 0)
                        return NULL;
                if (mkdirat(layers, ids[i], 0755) < 0)
                        return NULL;
                _cleanup_close_ int l = openat(layers, ids[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                char name[32];
                snprintf(name, sizeof(name), "f%zu", i);
                if (l < 0 || !put_file(l, name, name))
                        return NULL;
                if (i == 0 && !put_file(l, "base", "base"))
                        return NULL;
                if (i == n - 1 && !put_whiteout(l, "f0"))
                        return NULL;
        }
        return ids;
}

static void run_deep(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int layers = new_dir("layers");
        _cleanup_close_ int ctr = new_dir("ctr");
        safe_close(new_dir("merged"));
        _cleanup_strv_free_ char **ids = make_deep(layers, 600);
        ok(ids != NULL, "deep: 600 layers built");
        if (!ids)
                return;
        const char *const *cids = (const char *const *) ids;
        size_t n = MOAT_SNAPSHOT_OVL_MAX_STACK;
        /* Layers 100..599: 500 lowers (overlayfs's maximum) of 71-byte
         * names, about 36 KiB of lowerdir, far beyond the one-page option
         * string. */
        const char *const *top = cids + 600 - n;
        int r = moat_snapshot_prepare(layers, top, n, ctr, false, &err);
        is_int(r, 0, "deep: prepare: %s", err ? err->msg : "ok");
        _cleanup_close_ int target = openat(tmp_fd, "merged", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_snapshot_mount(layers, top, n, ctr, false, target, &err);
        is_int(r, 0, "deep: mount of %zu long-named layers: %s", n, err ? err->msg : "ok");
        _cleanup_close_ int m = openat(tmp_fd, "merged", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        is_str(read_at(m, "f100"), "f100", "deep: the lowest layer's file is visible");
        is_str(read_at(m, "f598"), "f598", "deep: a high layer's file is visible");
        is_int(count_entries(m, "."), n, "deep: one file per layer");
        ok(put_file(m, "w", "w") && read_at(ctr, "upper/w"), "deep: writes land in upper/");

        /* Beyond overlayfs's 500 lowers: all 600, the lowest 101 nested in
         * a second overlay; the topmost layer's whiteout of f0 must still
         * hide layer 0's file across the nesting. */
        moat_error_freep(&err);
        _cleanup_close_ int ctr600 = new_dir("ctr600");
        safe_close(new_dir("merged600"));
        r = moat_snapshot_prepare(layers, cids, 600, ctr600, false, &err);
        is_int(r, 0, "deep: prepare 600: %s", err ? err->msg : "ok");
        _cleanup_close_ int t600 = openat(tmp_fd, "merged600", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_snapshot_mount(layers, cids, 600, ctr600, false, t600, &err);
        is_int(r, 0, "deep: mount of 600 long-named layers: %s", err ? err->msg : "ok");
        _cleanup_close_ int m600 = openat(tmp_fd, "merged600", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        is_str(read_at(m600, "base"), "base", "deep: 600: the lowest layer's file is visible");
        is_str(read_at(m600, "f100"), "f100", "deep: 600: a nested layer's file is visible");
        is_str(read_at(m600, "f599"), "f599", "deep: 600: the topmost layer's file is visible");
        ok(absent(m600, "f0"), "deep: 600: the topmost whiteout hides a nested layer's file");
        is_int(count_entries(m600, "."), 600, "deep: 600: base and f1..f599");
        ok(put_file(m600, "w", "w") && read_at(ctr600, "upper/w"), "deep: 600: writes land in upper/");
        moat_error_freep(&err);
        r = moat_snapshot_mount(layers, cids, 1000, ctr600, false, t600, &err);
        ok(r == -E2BIG && err && strstr(err->msg, "1000 layers") && strstr(err->msg, "999"),
           "deep: 1000 layers are refused, naming the limit: %s", err ? err->msg : "(none)");
        moat_error_freep(&err);

        /* The legacy path fits ~200 /proc/self/fd names in a page... */
        safe_close(new_dir("merged2"));
        _cleanup_close_ int t2 = openat(tmp_fd, "merged2", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_snapshot_mount_legacy(layers, cids, 150, -EBADF, true, t2, &err);
        is_int(r, 0, "deep: legacy mount of 150 long-named layers: %s", err ? err->msg : "ok");
        _cleanup_close_ int m2 = openat(tmp_fd, "merged2", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        is_str(read_at(m2, "base"), "base", "deep: legacy: the lowest layer is visible");
        is_int(count_entries(m2, "."), 151, "deep: legacy: one file per layer and base");
        moat_error_freep(&err);
        /* ...and says so clearly beyond. */
        r = moat_snapshot_mount_legacy(layers, cids, 400, -EBADF, true, t2, &err);
        ok(r == -E2BIG && err && strstr(err->msg, "do not fit"),
           "deep: legacy: 400 layers give a clear error: %s", err ? err->msg : "(none)");
}

static void run_copy(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int layers = new_dir("layers");
        _cleanup_close_ int copy = new_dir("copy");
        _cleanup_close_ int ro = new_dir("ro");
        ok(layers >= 0 && copy >= 0 && ro >= 0 && make_layers(layers), "copy: layers built");
        /* Something below to be deleted by a later layer, where the path
         * in a lower layer is a symlink pointing out: the copy must not
         * follow it. */
        _cleanup_close_ int outside = new_dir("outside");
        ok(outside >= 0 && put_file(outside, "victim", "v"), "copy: a file outside");

        int r = moat_snapshot_copy(layers, ids3, 3, copy, &err);
        is_int(r, 0, "copy: %s", err ? err->msg : "ok");
        check_merged(copy, "copy");
        struct stat st;
        ok(fstatat(copy, "keep/k", &st, 0) == 0 && st.st_uid == 1234 && st.st_gid == 5678,
           "copy: ownership kept");
        ok(fstatat(copy, "fifo", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO(st.st_mode) &&
           (st.st_mode & 07777) == 0640, "copy: fifo and its mode kept");
        char v[4];
        _cleanup_close_ int d = openat(copy, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok(d >= 0 && fgetxattr(d, "trusted.overlay.opaque", v, sizeof(v)) < 0,
           "copy: the opaque mark is not copied");

        _cleanup_close_ int t = openat(tmp_fd, "ro", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_snapshot_mount(layers, ids3, 3, -EBADF, true, t, &err);
        is_int(r, 0, "copy: readonly overlay for comparison: %s", err ? err->msg : "ok");
        _cleanup_close_ int m = openat(tmp_fd, "ro", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *want = describe_tree(m);
        _cleanup_free_ char *got = describe_tree(copy);
        ok(want && got && strstr(want, "/keep/k2 "), "copy: both trees described");
        is_str(got, want, "copy: the copy equals the overlay's merged view");

        /* A layer whose directory "esc" is, in the copy so far, a symlink
         * to the outside: applying "esc/victim" must replace the symlink,
         * never write through it. */
        _cleanup_close_ int l3 = new_dir("layers/l3");
        _cleanup_close_ int l4 = new_dir("layers/l4");
        char out_path[128];
        snprintf(out_path, sizeof(out_path), "%s/outside", tmpdir);
        ok(l3 >= 0 && l4 >= 0 && symlinkat(out_path, l3, "esc") == 0 && put_dir(l4, "esc") &&
           put_file(l4, "esc/victim", "pwned") && put_whiteout(l4, "sym"),
           "copy: escaping layers built");
        static const char *const ids5[] = { "l0", "l1", "l2", "l3", "l4" };
        _cleanup_close_ int copy2 = new_dir("copy2");
        r = moat_snapshot_copy(layers, ids5, 5, copy2, &err);
        is_int(r, 0, "copy: escaping layers: %s", err ? err->msg : "ok");
        is_str(read_at(outside, "victim"), "v", "copy: the file outside is untouched");
        is_str(read_at(copy2, "esc/victim"), "pwned", "copy: the write stayed inside");
        ok(fstatat(copy2, "esc", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode),
           "copy: the symlink was replaced by the directory");
        ok(absent(copy2, "sym"), "copy: the whiteout removed the symlink itself");
        ok(fstatat(tmp_fd, "outside", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode),
           "copy: the outside directory still exists");
}

static void run_remove(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int layers = new_dir("layers");
        _cleanup_close_ int ctr = new_dir("ctr");
        _cleanup_close_ int merged = new_dir("merged");
        ok(layers >= 0 && ctr >= 0 && merged >= 0 && make_layers(layers), "remove: layers built");
        ok(put_file(ctr, "config.json", "{}"), "remove: a file of the container");
        int r = moat_snapshot_prepare(layers, ids3, 3, ctr, false, &err);
        is_int(r, 0, "remove: prepare: %s", err ? err->msg : "ok");
        _cleanup_close_ int target = openat(tmp_fd, "merged", O_PATH | O_DIRECTORY | O_CLOEXEC);
        r = moat_snapshot_mount(layers, ids3, 3, ctr, false, target, &err);
        is_int(r, 0, "remove: mount: %s", err ? err->msg : "ok");
        _cleanup_close_ int m = openat(tmp_fd, "merged", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok(put_dir(m, "deep") && put_dir(m, "deep/er") && put_file(m, "deep/er/f", "f") &&
           unlinkat(m, "b", 0) < 0 && unlinkat(m, "c", 0) == 0 && renameat(m, "e", m, "e2") == 0,
           "remove: the container wrote, deleted and renamed");
        m = safe_close(m);
        char mp[128];
        snprintf(mp, sizeof(mp), "%s/merged", tmpdir);
        ok(umount2(mp, 0) == 0, "remove: the caller unmounts");
        r = moat_snapshot_remove(ctr, &err);
        is_int(r, 0, "remove: %s", err ? err->msg : "ok");
        ok(absent(ctr, "upper") && absent(ctr, "work"), "remove: upper/ and work/ are gone");
        is_str(read_at(ctr, "config.json"), "{}", "remove: the rest of the container dir stays");
        is_str(read_at(layers, "l2/e"), "e2", "remove: the layers are untouched");
        r = moat_snapshot_remove(ctr, &err);
        is_int(r, 0, "remove: removing again is fine");
}

static void run_invalid(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_close_ int layers = new_dir("layers");
        _cleanup_close_ int ctr = new_dir("ctr");
        ok(layers >= 0 && ctr >= 0 && make_layers(layers) && symlinkat("l0", layers, "link") == 0,
           "invalid: layers built");
        static const char *const dotdot[] = { "l0", ".." };
        int r = moat_snapshot_prepare(layers, dotdot, 2, ctr, false, &err);
        ok(r == -EINVAL && err && strstr(err->msg, "\"..\""), "invalid: \"..\" refused: %s",
           err ? err->msg : "(none)");
        moat_error_freep(&err);
        static const char *const slash[] = { "l0/../l1" };
        r = moat_snapshot_copy(layers, slash, 1, ctr, &err);
        ok(r == -EINVAL && err, "invalid: a path refused: %s", err ? err->msg : "(none)");
        moat_error_freep(&err);
        static const char *const missing[] = { "l0", "nope" };
        r = moat_snapshot_prepare(layers, missing, 2, ctr, false, &err);
        ok(r == -ENOENT && err && strstr(err->msg, "\"nope\""), "invalid: a missing layer is named: %s",
           err ? err->msg : "(none)");
        moat_error_freep(&err);
        static const char *const link[] = { "link" };
        r = moat_snapshot_prepare(layers, link, 1, ctr, false, &err);
        ok(r < 0 && err, "invalid: a symlinked layer is refused: %s", err ? err->msg : "(none)");
        moat_error_freep(&err);
        ok(absent(ctr, "upper"), "invalid: nothing was created");
        r = moat_snapshot_prepare(layers, ids3, 0, ctr, false, &err);
        is_int(r, -EINVAL, "invalid: no layers refused");
}

/* ---- running each case in its own mount namespace -------------------------- */

static void run_case(const char *name, void (*fn)(void))
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
                ok(false, "%s: pipe", name);
                return;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
                ok(false, "%s: fork", name);
                return;
        }
        if (pid == 0) {
                close(p[0]);
                bool setup = unshare(CLONE_NEWNS) == 0 &&
                             mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
                             mount("tmpfs", tmpdir, "tmpfs", 0, "mode=0755") == 0;
                tmp_fd = setup ? open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
                ok(setup && tmp_fd >= 0, "%s: private mount namespace with a tmpfs", name);
                if (setup && tmp_fd >= 0)
                        fn();
                fflush(stdout);
                int counts[2] = { tap_count, tap_failed };
                if (write(p[1], counts, sizeof(counts)) != sizeof(counts)) {}
                _exit(0);
        }
        close(p[1]);
        int counts[2] = { 0, 0 };
        ssize_t k = read(p[0], counts, sizeof(counts));
        close(p[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (k == sizeof(counts)) {
                tap_count = counts[0];
                tap_failed = counts[1];
        }
        ok(k == sizeof(counts) && WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child finished", name);
}

int main(void)
{
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root\n");
                return 0;
        }
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        run_case("overlay", run_overlay);
        run_case("overlay-legacy", run_overlay_legacy);
        run_case("readonly", run_readonly);
        run_case("deep", run_deep);
        run_case("copy", run_copy);
        run_case("remove", run_remove);
        run_case("invalid", run_invalid);

        struct stat st;
        ok(rmdir(tmpdir) == 0 && stat(tmpdir, &st) < 0, "the temp dir is removed");
        return tap_done();
}
