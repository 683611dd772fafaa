/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Container filesystems (container-fs.h). The overlay comes from
 * snapshot.c; this file decides where it goes and writes the small files
 * docker bind-mounts over /etc. resolv.conf for a container without a
 * network namespace of the host's keeps the host's search and options
 * lines but no loopback name servers (they would point at the container
 * itself), as docker does; with no server left it names none.
 */

#include "engine/container-fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/images-internal.h"
#include "image/snapshot.h"

#define ETC_FILE_MAX (256u * 1024u)

static int unpack_layers(struct moat_store *s, const struct moat_image *img, char ***ret_chain,
                         struct moat_error **reterr)
{
        const struct moat_layer_options opts = { .allow_devices = true, .keep_ownership = true };
        return moat_images_unpack(s, img, &opts, ret_chain, reterr);
}

int moat_container_fs_prepare(struct moat_store *s, const struct moat_image *img, int dir_fd,
                              struct moat_error **reterr)
{
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_close_ int layers_fd = -EBADF;
        int r;

        r = unpack_layers(s, img, &chain, reterr);
        if (r < 0)
                return r;
        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;
        return moat_snapshot_prepare(layers_fd, (const char *const *) chain, img->manifest->n_layers, dir_fd, false,
                                     reterr);
}

static int is_mount_point(int dir_fd, const char *name)
{
        struct statx parent, child;

        if (statx(dir_fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &parent) < 0)
                return -errno;
        if (statx(dir_fd, name, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &child) < 0)
                return -errno;
        return parent.stx_mnt_id != child.stx_mnt_id;
}

/* ---- the mount points' layer ------------------------------------------------ */

/*
 * docker bind-mounts hostname, hosts and resolv.conf over /etc. For an
 * image that lacks them, each container's init would create the mount
 * points in its writable layer: a copy-up of /etc and three new files, 0.6-
 * 0.8 ms of every start on this kind of machine and four more inodes per
 * container. Instead one read-only tree per image, layers/<top chain
 * id>.init, holds the missing ones on top of the image's layers. It is made
 * once, by the first start, and removed by the store's gc with its layer.
 * An image that has them all, or whose /etc is not a directory, gets an
 * empty tree, which is not mounted. What the image has is found with
 * overlayfs's own rules (whiteouts, opaque directories; redirect_dir and
 * metacopy are off) over the unpacked layers, so nothing is mounted for it.
 */
static const char *const etc_mount_points[] = { "hostname", "hosts", "resolv.conf" };

static bool is_whiteout(const struct stat *st)
{
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(int layer_fd, const char *name)
{
        _cleanup_close_ int fd = openat(layer_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char v[2];
        return fd >= 0 && fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

struct image_etc {
        bool is_dir, non_dir;
        struct stat st; /* of the topmost /etc, when is_dir */
        bool present[ELEMENTSOF(etc_mount_points)];
};

static int image_etc_lookup(int layers_fd, const char *const *chain, size_t n, struct image_etc *ret,
                            struct moat_error **reterr)
{
        *ret = (struct image_etc) {};
        bool decided[ELEMENTSOF(etc_mount_points)] = {};

        for (size_t i = n; i-- > 0;) {
                _cleanup_close_ int layer_fd = openat(layers_fd, chain[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;

                if (layer_fd < 0)
                        return moat_error_set(reterr, errno, "opening layers/%s", chain[i]);
                if (fstatat(layer_fd, "etc", &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return moat_error_set(reterr, errno, "layers/%s/etc", chain[i]);
                }
                /* A whiteout, or a non-directory under a directory above,
                 * hides everything below. */
                if (is_whiteout(&st) || (!S_ISDIR(st.st_mode) && ret->is_dir))
                        break;
                if (!S_ISDIR(st.st_mode)) {
                        ret->non_dir = true;
                        break;
                }
                if (!ret->is_dir) {
                        ret->is_dir = true;
                        ret->st = st;
                }
                for (size_t k = 0; k < ELEMENTSOF(etc_mount_points); k++) {
                        char path[32];
                        struct stat fst;
                        if (decided[k])
                                continue;
                        snprintf(path, sizeof(path), "etc/%s", etc_mount_points[k]);
                        if (fstatat(layer_fd, path, &fst, AT_SYMLINK_NOFOLLOW) < 0) {
                                if (errno == ENOENT)
                                        continue;
                                return moat_error_set(reterr, errno, "layers/%s/%s", chain[i], path);
                        }
                        decided[k] = true;
                        ret->present[k] = !is_whiteout(&fst);
                }
                if (is_opaque(layer_fd, "etc"))
                        break;
        }
        return 0;
}

static int fill_init_layer(int tree_fd, const struct image_etc *etc, struct moat_error **reterr)
{
        _cleanup_close_ int etc_fd = -EBADF;
        mode_t mode = etc->is_dir ? etc->st.st_mode & 07777 : 0755;

        if (mkdirat(tree_fd, "etc", mode) < 0)
                return moat_error_set(reterr, errno, "creating etc/");
        etc_fd = openat(tree_fd, "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (etc_fd < 0)
                return moat_error_set(reterr, errno, "opening etc/");
        for (size_t k = 0; k < ELEMENTSOF(etc_mount_points); k++) {
                if (etc->present[k])
                        continue;
                _cleanup_close_ int fd = openat(etc_fd, etc_mount_points[k],
                                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "creating etc/%s", etc_mount_points[k]);
        }
        /* The directory stands for the image's /etc in the merged view:
         * its owner, mode and times. */
        if (etc->is_dir) {
                struct timespec times[2] = { etc->st.st_atim, etc->st.st_mtim };
                if (fchown(etc_fd, etc->st.st_uid, etc->st.st_gid) < 0 || fchmod(etc_fd, mode) < 0 ||
                    futimens(etc_fd, times) < 0)
                        return moat_error_set(reterr, errno, "etc/: owner, mode and times of the image's");
        }
        return 0;
}

/* The name of the image's mount points' tree in layers/, made if it is
 * not there yet; NULL when it is empty. */
static int init_layer(int layers_fd, const char *const *chain, size_t n, char **ret_name,
                      struct moat_error **reterr)
{
        _cleanup_free_ char *name = NULL;
        struct image_etc etc;
        char tmp[32];
        int r;

        *ret_name = NULL;
        if (asprintf(&name, "%s" MOAT_SNAPSHOT_INIT_SUFFIX, chain[n - 1]) < 0)
                return moat_error_set(reterr, -ENOMEM, "init layer name");
        if (faccessat(layers_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT)
                        return moat_error_set(reterr, errno, "layers/%s", name);
                r = image_etc_lookup(layers_fd, chain, n, &etc, reterr);
                if (r < 0)
                        return r;
                r = moat_images_layer_tmp_create(layers_fd, tmp, reterr);
                if (r < 0)
                        return r;
                bool needed = !etc.non_dir && (!etc.present[0] || !etc.present[1] || !etc.present[2]);
                if (needed) {
                        _cleanup_close_ int tree_fd = openat(layers_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        struct stat root;
                        /* Its root stands for the image's (under no upper/). */
                        if (tree_fd < 0 || fstatat(layers_fd, chain[n - 1], &root, AT_SYMLINK_NOFOLLOW) < 0 ||
                            fchown(tree_fd, root.st_uid, root.st_gid) < 0 || fchmod(tree_fd, root.st_mode & 07777) < 0)
                                r = moat_error_set(reterr, errno, "layers/%s", tmp);
                        else
                                r = fill_init_layer(tree_fd, &etc, reterr);
                }
                /* A start of the same image may have made it meanwhile. */
                if (r >= 0 && renameat(layers_fd, tmp, layers_fd, name) < 0 && errno != EEXIST && errno != ENOTEMPTY)
                        r = moat_error_set(reterr, errno, "layers/%s", name);
                if (faccessat(layers_fd, tmp, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                        (void) moat_images_rm_rf_at(layers_fd, tmp, 0);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "the mount points' layer of layer %s", chain[n - 1]);
        }
        char etc_path[MOAT_SNAPSHOT_ID_MAX + 8];
        snprintf(etc_path, sizeof(etc_path), "%s/etc", name);
        if (faccessat(layers_fd, etc_path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                *ret_name = TAKE_PTR(name);
        return 0;
}

int moat_container_fs_mount(struct moat_store *s, const struct moat_image *img, int dir_fd, unsigned flags,
                            struct moat_error **reterr)
{
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_close_ int layers_fd = -EBADF, target_fd = -EBADF;
        int r;

        if (mkdirat(dir_fd, MOAT_CONTAINER_ROOTFS, 0755) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "creating %s/", MOAT_CONTAINER_ROOTFS);
        r = is_mount_point(dir_fd, MOAT_CONTAINER_ROOTFS);
        if (r < 0)
                return moat_error_set(reterr, r, "statx %s/", MOAT_CONTAINER_ROOTFS);
        if (r > 0)
                return 0;
        r = unpack_layers(s, img, &chain, reterr);
        if (r < 0)
                return r;
        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;
        target_fd = openat(dir_fd, MOAT_CONTAINER_ROOTFS, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (target_fd < 0)
                return moat_error_set(reterr, errno, "opening %s/", MOAT_CONTAINER_ROOTFS);
        size_t n = img->manifest->n_layers;
        _cleanup_free_ char *init = NULL;
        if (!(flags & MOAT_SNAPSHOT_READONLY) && n > 0 && n < MOAT_SNAPSHOT_MAX_LAYERS) {
                r = init_layer(layers_fd, (const char *const *) chain, n, &init, reterr);
                if (r < 0)
                        return r;
        }
        if (!init)
                return moat_snapshot_mount(layers_fd, (const char *const *) chain, n, dir_fd, flags, target_fd,
                                           reterr);
        _cleanup_free_ const char **with_init = calloc(n + 1, sizeof(char *));
        if (!with_init)
                return moat_error_set(reterr, -ENOMEM, "layer list");
        memcpy(with_init, chain, n * sizeof(char *));
        with_init[n] = init;
        return moat_snapshot_mount(layers_fd, with_init, n + 1, dir_fd, flags, target_fd, reterr);
}

/* The pinned subpaths: each unmounted (detached) and its mount point removed. */
static int unmount_pins(int dir_fd, struct moat_error **reterr)
{
        _cleanup_close_ int fd = openat(dir_fd, MOAT_SUBPATH_PINS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct dirent *de;
        char path[96];

        if (fd < 0)
                return errno == ENOENT ? 0 : moat_error_set(reterr, errno, "opening %s/", MOAT_SUBPATH_PINS);
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d)
                return moat_error_set(reterr, errno, "reading %s/", MOAT_SUBPATH_PINS);
        int dfd = TAKE_FD(fd);
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/fd/%d/%.40s", dfd, de->d_name);
                if (umount2(path, UMOUNT_NOFOLLOW | MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
                        return moat_error_set(reterr, errno, "unmounting %s/%s", MOAT_SUBPATH_PINS, de->d_name);
                if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0 && errno == ENOTDIR)
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        }
        return 0;
}

/* Unmount dir/name (and whatever is stacked on it) if it is a mount point. */
static int unmount_all(int dir_fd, const char *name, struct moat_error **reterr)
{
        char path[64];

        for (unsigned i = 0; i < 8; i++) {
                int r = is_mount_point(dir_fd, name);
                if (r == -ENOENT || r == 0)
                        return 0;
                if (r < 0)
                        return moat_error_set(reterr, r, "statx %s/", name);
                /* umount2 takes a path: the directory fd's /proc path pins it. */
                snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dir_fd, name);
                if (umount2(path, UMOUNT_NOFOLLOW | MNT_DETACH) < 0)
                        return moat_error_set(reterr, errno, "unmounting %s/", name);
        }
        return moat_error_setx(reterr, -EBUSY, "%s/ is still mounted after 8 unmounts", name);
}

int moat_container_fs_unmount(int dir_fd, struct moat_error **reterr)
{
        int p = unmount_pins(dir_fd, reterr);
        if (p < 0)
                return p;
        int r = unmount_all(dir_fd, MOAT_CONTAINER_ROOTFS, reterr);
        if (r < 0)
                return r;
        return unmount_all(dir_fd, MOAT_CONTAINER_SHM, reterr);
}

int moat_container_fs_shm_mounted(int dir_fd)
{
        int r = is_mount_point(dir_fd, MOAT_CONTAINER_SHM);
        return r == -ENOENT ? 0 : r;
}

int moat_container_fs_mount_shm(int dir_fd, uint64_t size, struct moat_error **reterr)
{
        char path[64], options[64];

        if (mkdirat(dir_fd, MOAT_CONTAINER_SHM, 0700) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "making %s/", MOAT_CONTAINER_SHM);
        int r = is_mount_point(dir_fd, MOAT_CONTAINER_SHM);
        if (r < 0)
                return moat_error_set(reterr, r, "statx %s/", MOAT_CONTAINER_SHM);
        if (r > 0)
                return 0;
        snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dir_fd, MOAT_CONTAINER_SHM);
        snprintf(options, sizeof(options), "mode=1777,size=%" PRIu64 "k", size / 1024 + (size % 1024 != 0));
        if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) < 0)
                return moat_error_set(reterr, errno, "mounting the shareable /dev/shm (tmpfs, %s) on %s/", options,
                                      MOAT_CONTAINER_SHM);
        return 0;
}

/* The host's file, or NULL when it is absent. */
static int read_host_file(const char *path, char **ret, struct moat_error **reterr)
{
        size_t len;
        int r = read_full_file_at(AT_FDCWD, path, ETC_FILE_MAX, ret, &len);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return moat_error_set(reterr, r, "reading %s", path);
        return 0;
}

static int resolv_conf_without_loopback(const char *host, char **ret)
{
        _cleanup_free_ char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        if (!f)
                return -ENOMEM;
        for (const char *line = host; line && *line;) {
                const char *end = strchrnul(line, '\n');
                int n = (int) (end - line);
                char server[64] = "";

                if (sscanf(line, " nameserver %63s", server) == 1 &&
                    (startswith(server, "127.") || streq(server, "::1") || startswith(server, "0.")))
                        ; /* a loopback server means the host's own resolver: unreachable from here */
                else
                        fprintf(f, "%.*s\n", n, line);
                line = *end ? end + 1 : end;
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

/* HostConfig.ExtraHosts ("name:ip", create normalised them) as hosts lines. */
static int append_extra_hosts(char **hosts, const json_t *extra)
{
        size_t i;
        json_t *e;
        json_array_foreach(extra, i, e) {
                const char *v = json_string_value(e);
                const char *colon = v ? strchr(v, ':') : NULL;
                char *n = NULL;
                if (!colon)
                        continue;
                size_t len = strlen(*hosts);
                const char *sep = len > 0 && (*hosts)[len - 1] != '\n' ? "\n" : "";
                if (asprintf(&n, "%s%s%s\t%.*s\n", *hosts, sep, colon + 1, (int) (colon - v), v) < 0)
                        return -ENOMEM;
                free(*hosts);
                *hosts = n;
        }
        return 0;
}

static bool is_resolv_keyword(const char *line, const char *word)
{
        line += strspn(line, " \t");
        size_t n = strlen(word);
        return strncmp(line, word, n) == 0 && (line[n] == ' ' || line[n] == '\t');
}

/* resolv.conf with what the container asked for (docker's --dns,
 * --dns-search, --dns-option): each given kind replaces the base's lines
 * of that kind ("search" and "domain" for the search list). */
static int resolv_conf_with(const char *base, const json_t *dns, const json_t *search, const json_t *options,
                            char **ret)
{
        _cleanup_free_ char *out = NULL;
        size_t size = 0, i;
        json_t *v;
        FILE *f = open_memstream(&out, &size);
        if (!f)
                return -ENOMEM;
        bool has_dns = json_array_size(dns) > 0, has_search = json_array_size(search) > 0,
             has_options = json_array_size(options) > 0;
        for (const char *line = base; line && *line;) {
                const char *end = strchrnul(line, '\n');
                if (!(has_dns && is_resolv_keyword(line, "nameserver")) &&
                    !(has_search && (is_resolv_keyword(line, "search") || is_resolv_keyword(line, "domain"))) &&
                    !(has_options && is_resolv_keyword(line, "options")))
                        fprintf(f, "%.*s\n", (int) (end - line), line);
                line = *end ? end + 1 : end;
        }
        json_array_foreach(dns, i, v)
                fprintf(f, "nameserver %s\n", json_string_value(v));
        /* docker's "." is no search list at all */
        if (has_search && !(json_array_size(search) == 1 && streq(json_string_value(json_array_get(search, 0)), "."))) {
                fputs("search", f);
                json_array_foreach(search, i, v)
                        fprintf(f, " %s", json_string_value(v));
                fputs("\n", f);
        }
        if (has_options) {
                fputs("options", f);
                json_array_foreach(options, i, v)
                        fprintf(f, " %s", json_string_value(v));
                fputs("\n", f);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

int moat_container_fs_write_etc(int dir_fd, const char *hostname, const char *domainname, bool host_network,
                                const json_t *host_config, struct moat_error **reterr)
{
        _cleanup_free_ char *hosts = NULL, *resolv = NULL, *host_resolv = NULL, *hn = NULL;
        int r;

        if (asprintf(&hn, "%s\n", hostname) < 0)
                return moat_error_set(reterr, -ENOMEM, "hostname");
        r = write_file_replace_at(dir_fd, "hostname", hn, strlen(hn), 0644);
        if (r < 0)
                return moat_error_set(reterr, r, "writing hostname");
        if (host_network) {
                r = read_host_file("/etc/hosts", &hosts, reterr);
                if (r < 0)
                        return r;
        }
        if (!hosts && asprintf(&hosts,
                               "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                               "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
                               "ff02::2\tip6-allrouters\n127.0.1.1\t%s%s%s %s\n",
                               hostname, domainname && *domainname ? "." : "", domainname ? domainname : "",
                               hostname) < 0)
                return moat_error_set(reterr, -ENOMEM, "hosts");
        if (append_extra_hosts(&hosts, json_object_get(host_config, "ExtraHosts")) < 0)
                return moat_error_set(reterr, -ENOMEM, "hosts");
        r = write_file_replace_at(dir_fd, "hosts", hosts, strlen(hosts), 0644);
        if (r < 0)
                return moat_error_set(reterr, r, "writing hosts");
        r = read_host_file("/etc/resolv.conf", &host_resolv, reterr);
        if (r < 0)
                return r;
        if (host_network)
                resolv = TAKE_PTR(host_resolv);
        else if (host_resolv) {
                r = resolv_conf_without_loopback(host_resolv, &resolv);
                if (r < 0)
                        return moat_error_set(reterr, r, "resolv.conf");
        }
        if (!resolv && !(resolv = strdup("")))
                return moat_error_set(reterr, -ENOMEM, "resolv.conf");
        const json_t *dns = json_object_get(host_config, "Dns"), *search = json_object_get(host_config, "DnsSearch"),
                     *options = json_object_get(host_config, "DnsOptions");
        if (json_array_size(dns) + json_array_size(search) + json_array_size(options) > 0) {
                char *given = NULL;
                if (resolv_conf_with(resolv, dns, search, options, &given) < 0)
                        return moat_error_set(reterr, -ENOMEM, "resolv.conf");
                free(resolv);
                resolv = given;
        }
        r = write_file_replace_at(dir_fd, "resolv.conf", resolv, strlen(resolv), 0644);
        if (r < 0)
                return moat_error_set(reterr, r, "writing resolv.conf");
        return 0;
}

int moat_container_fs_remove(int containers_dir_fd, const char *id, struct moat_error **reterr)
{
        int r = moat_images_rm_rf_at(containers_dir_fd, id, 0);
        if (r < 0 && r != -ENOENT)
                return moat_error_set(reterr, r, "removing containers/%s", id);
        return 0;
}

/* ---- recycling --------------------------------------------------------------- */

/* overlayfs stores the persistent uuid of a mount whose upper directory
 * was empty there; the next mount of an empty one makes a new one. */
#define OVERLAY_UUID_XATTR "trusted.overlay.uuid"

/* A directory of mode mode owned by root, empty but for an entry named
 * only (if not NULL), with no extended attribute but overlayfs's uuid,
 * which is removed. */
static int pristine_dir(int parent_fd, const char *name, mode_t mode, const char *only, int *ret_fd)
{
        _cleanup_close_ int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        char xattrs[sizeof(OVERLAY_UUID_XATTR) + 1];

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if ((st.st_mode & 07777) != mode || st.st_uid != 0 || st.st_gid != 0)
                return -EPERM;
        ssize_t n = flistxattr(fd, xattrs, sizeof(xattrs));
        if (n < 0 && errno != ENOTSUP)
                return errno == ERANGE ? -EPERM : -errno;
        if (n > 0 && (n != (ssize_t) sizeof(OVERLAY_UUID_XATTR) || !streq(xattrs, OVERLAY_UUID_XATTR)))
                return -EPERM;
        _cleanup_close_ int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        _cleanup_closedir_ DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
        if (!d)
                return -errno;
        dup_fd = -EBADF; /* owned by d */
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") && !(only && streq(de->d_name, only)))
                        return -ENOTEMPTY;
        if (n > 0 && fremovexattr(fd, OVERLAY_UUID_XATTR) < 0)
                return -errno;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

int moat_container_fs_recycle(int containers_dir_fd, const char *name, const char *to)
{
        _cleanup_close_ int dir_fd = -EBADF, work_fd = -EBADF;
        int r;

        dir_fd = openat(containers_dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        /* Nothing but the skeleton and the logs, nothing mounted. */
        {
                _cleanup_close_ int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
                _cleanup_closedir_ DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
                struct dirent *de;
                if (!d)
                        return -errno;
                dup_fd = -EBADF; /* owned by d */
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, "..") || streq(de->d_name, "upper") ||
                            streq(de->d_name, "work") || streq(de->d_name, MOAT_CONTAINER_ROOTFS))
                                continue;
                        if (!strstr(de->d_name, "-json.log") || de->d_type != DT_REG)
                                return -ENOTEMPTY;
                        if (unlinkat(dir_fd, de->d_name, 0) < 0)
                                return -errno;
                }
        }
        r = is_mount_point(dir_fd, MOAT_CONTAINER_ROOTFS);
        if (r != 0)
                return r < 0 ? r : -EBUSY;
        /* What the container wrote (upper/ and the attributes of its root,
         * which are upper/'s) must be gone: only an untouched one is kept. */
        r = pristine_dir(dir_fd, "upper", 0755, NULL, NULL);
        if (r >= 0)
                r = pristine_dir(dir_fd, MOAT_CONTAINER_ROOTFS, 0755, NULL, NULL);
        if (r >= 0)
                r = pristine_dir(dir_fd, "work", 0700, "work", &work_fd);
        if (r < 0)
                return r;
        /* overlayfs's own scratch space, which a volatile mount marks so
         * that a later mount refuses it: the next mount makes it afresh. */
        r = moat_images_rm_rf_at(work_fd, "work", 0);
        if (r < 0 && r != -ENOENT)
                return r;
        if (renameat(containers_dir_fd, name, containers_dir_fd, to) < 0)
                return -errno;
        return 0;
}
