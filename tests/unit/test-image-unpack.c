/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit test of the parallel layer unpacking (src/image/unpack.c): images
 * of six layers made here with libarchive (plain, gzip and zstd tars, each
 * a few hundred files) are unpacked into fresh stores and the trees are
 * checked file by file; a wrong DiffID in layer 3 and a layer escaping its
 * tree in layer 5 must fail naming that layer and leave neither temp trees
 * nor ChainID trees; two processes unpacking the same image at once must
 * both succeed with one tree per layer.
 */

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/images.h"
#include "image/images-internal.h"
#include "image/store.h"
#include "tap.h"

#define N_LAYERS 6
#define FILES_PER_LAYER 300
#define FILE_SIZE 3000

static char tmpdir[] = "/tmp/moat-test-unpack-XXXXXX";
/* Threads of this process before any unpacking (a sanitizer may run one). */
static int base_threads;

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

/* The content of file j of layer i: text that compresses somewhat. */
static void file_content(int layer, int j, char out[FILE_SIZE + 1])
{
        uint32_t x = (uint32_t) (layer * 7919 + j * 104729 + 1);
        for (size_t k = 0; k < FILE_SIZE; k++) {
                x = x * 1103515245u + 12345u;
                out[k] = (char) ('a' + (x >> 16) % 16);
        }
        out[FILE_SIZE] = '\0';
}

static bool add_entry(struct archive *a, const char *path, mode_t type, const char *content)
{
        struct archive_entry *e = archive_entry_new();
        size_t size = content && type == AE_IFREG ? strlen(content) : 0;

        archive_entry_set_pathname(e, path);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
        archive_entry_set_size(e, (la_int64_t) size);
        archive_entry_set_mtime(e, 1600000000, 0);
        if (type == AE_IFLNK)
                archive_entry_set_symlink(e, content);
        int r = archive_write_header(a, e);
        if (r == ARCHIVE_OK && size && archive_write_data(a, content, size) != (la_ssize_t) size)
                r = ARCHIVE_FATAL;
        archive_entry_free(e);
        return r == ARCHIVE_OK;
}

/* Layer i: "etc/shared" saying which layer it is, a symlink, and the
 * directory "l<i>" of FILES_PER_LAYER files. With evil, one more entry
 * "../escape" that must be refused. */
static bool make_tar(int layer, bool evil, struct buf *out)
{
        struct archive *a = archive_write_new();
        char path[64], text[FILE_SIZE + 1];
        bool good = false;

        *out = (struct buf) {};
        if (archive_write_set_format_pax(a) != ARCHIVE_OK || archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_open2(a, out, NULL, buf_write, NULL, NULL) != ARCHIVE_OK)
                goto out;
        snprintf(text, sizeof(text), "layer %d\n", layer);
        snprintf(path, sizeof(path), "l%d/", layer);
        if (!add_entry(a, "etc/", AE_IFDIR, NULL) || !add_entry(a, "etc/shared", AE_IFREG, text) ||
            !add_entry(a, "etc/link", AE_IFLNK, "shared") || !add_entry(a, path, AE_IFDIR, NULL))
                goto out;
        for (int j = 0; j < FILES_PER_LAYER; j++) {
                snprintf(path, sizeof(path), "l%d/f%d", layer, j);
                file_content(layer, j, text);
                if (!add_entry(a, path, AE_IFREG, text))
                        goto out;
                if (evil && j == FILES_PER_LAYER / 2 && !add_entry(a, "../escape", AE_IFREG, "out\n"))
                        goto out;
        }
        good = archive_write_close(a) == ARCHIVE_OK;
out:
        archive_write_free(a);
        return good;
}

enum comp { COMP_NONE, COMP_GZIP, COMP_ZSTD };

static bool compress_buf(const struct buf *tar, enum comp comp, struct buf *out)
{
        struct archive *a = archive_write_new();
        bool good = false;
        int fr;

        *out = (struct buf) {};
        fr = comp == COMP_GZIP ? archive_write_add_filter_gzip(a) : archive_write_add_filter_zstd(a);
        if (archive_write_set_format_raw(a) != ARCHIVE_OK || fr != ARCHIVE_OK ||
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
        char digest[80];
        char diff_id[80];
        const char *media_type;
        size_t size;
        struct buf blob;
};

static const enum comp layer_comp[N_LAYERS] = { COMP_GZIP, COMP_ZSTD, COMP_NONE, COMP_GZIP, COMP_ZSTD, COMP_NONE };

static bool make_layer(int i, bool evil, struct layer *l)
{
        struct buf tar;

        if (!make_tar(i, evil, &tar))
                return false;
        sha256_hex(tar.data, tar.size, l->diff_id);
        if (layer_comp[i] == COMP_NONE) {
                l->blob = tar;
                l->media_type = OCI_MT_LAYER_TAR;
        } else {
                bool good = compress_buf(&tar, layer_comp[i], &l->blob);
                free(tar.data);
                if (!good)
                        return false;
                l->media_type = layer_comp[i] == COMP_GZIP ? OCI_MT_LAYER_TAR_GZIP : OCI_MT_LAYER_TAR_ZSTD;
        }
        sha256_hex(l->blob.data, l->blob.size, l->digest);
        l->size = l->blob.size;
        return true;
}

static bool put_doc(struct moat_store *s, const char *text, char digest[80], int64_t *size)
{
        _cleanup_free_ char *d = NULL;

        sha256_hex(text, strlen(text), digest);
        *size = (int64_t) strlen(text);
        return moat_store_put(s, text, strlen(text), digest, &d, NULL) >= 0;
}

/* Put the layers and an image of them (diff_ids as given) and tag it. */
static bool put_image(struct moat_store *s, const char *ref, struct layer *layers, const char *const *diff_ids,
                      size_t n)
{
        char text[8192], config[80], manifest[80];
        int64_t config_size, manifest_size;
        int o;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *d = NULL;
                if (moat_store_put(s, layers[i].blob.data, layers[i].blob.size, layers[i].digest, &d, NULL) < 0)
                        return false;
        }
        o = snprintf(text, sizeof(text),
                     "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[");
        for (size_t i = 0; i < n; i++)
                o += snprintf(text + o, sizeof(text) - (size_t) o, "%s\"%s\"", i ? "," : "", diff_ids[i]);
        snprintf(text + o, sizeof(text) - (size_t) o, "]}}");
        if (!put_doc(s, text, config, &config_size))
                return false;
        o = snprintf(text, sizeof(text),
                     "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MT_MANIFEST "\",\"config\":{\"mediaType\":\"" OCI_MT_CONFIG
                     "\",\"digest\":\"%s\",\"size\":%lld},\"layers\":[",
                     config, (long long) config_size);
        for (size_t i = 0; i < n; i++)
                o += snprintf(text + o, sizeof(text) - (size_t) o,
                              "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}", i ? "," : "",
                              layers[i].media_type, layers[i].digest, layers[i].size);
        snprintf(text + o, sizeof(text) - (size_t) o, "]}");
        if (!put_doc(s, text, manifest, &manifest_size))
                return false;

        struct oci_descriptor d = { .media_type = (char *) OCI_MT_MANIFEST, .digest = manifest, .size = manifest_size };
        _cleanup_error_ struct moat_error *err = NULL;
        if (moat_images_tag(s, ref, &d, &err) < 0) {
                printf("# tag %s: %s\n", ref, err->msg);
                return false;
        }
        return true;
}

static struct moat_store *open_store(const char *name)
{
        char path[512];
        struct moat_store *s = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        if (moat_store_open(path, true, &s, &err) < 0) {
                printf("# store %s: %s\n", path, err->msg);
                return NULL;
        }
        return s;
}

static struct moat_image *resolve(struct moat_store *s, const char *ref)
{
        struct moat_image *img = NULL;
        _cleanup_error_ struct moat_error *err = NULL;

        if (moat_images_resolve(s, ref, NULL, &img, &err) < 0) {
                printf("# resolve %s: %s\n", ref, err->msg);
                return NULL;
        }
        return img;
}

/* Entries of <store>/layers other than . and .. (only temp trees with tmp_only). */
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
                    (!tmp_only || startswith(de->d_name, LAYER_TMP_PREFIX)))
                        n++;
        return n;
}

/* Entries of a directory other than . and .. */
static int count_entries(int dfd, const char *path)
{
        int fd = openat(dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        return n;
}

/* The tree of layer i is exactly etc/{shared,link} and l<i>/f0..fN. */
static bool tree_is_layer(int store_fd, const char *chain_id, int layer)
{
        char path[512], want[FILE_SIZE + 1], link[64];
        _cleanup_free_ char *got = NULL;
        size_t n;

        snprintf(path, sizeof(path), "layers/%s", chain_id);
        if (count_entries(store_fd, path) != 2)
                return false;
        snprintf(path, sizeof(path), "layers/%s/etc", chain_id);
        if (count_entries(store_fd, path) != 2)
                return false;
        snprintf(path, sizeof(path), "layers/%s/etc/shared", chain_id);
        snprintf(want, sizeof(want), "layer %d\n", layer);
        if (read_full_file_at(store_fd, path, 4096, &got, &n) < 0 || !streq(got, want))
                return false;
        snprintf(path, sizeof(path), "layers/%s/etc/link", chain_id);
        ssize_t k = readlinkat(store_fd, path, link, sizeof(link) - 1);
        if (k != 6 || memcmp(link, "shared", 6) != 0)
                return false;
        snprintf(path, sizeof(path), "layers/%s/l%d", chain_id, layer);
        if (count_entries(store_fd, path) != FILES_PER_LAYER)
                return false;
        for (int j = 0; j < FILES_PER_LAYER; j++) {
                free(TAKE_PTR(got));
                snprintf(path, sizeof(path), "layers/%s/l%d/f%d", chain_id, layer, j);
                file_content(layer, j, want);
                if (read_full_file_at(store_fd, path, FILE_SIZE + 1, &got, &n) < 0 || n != FILE_SIZE ||
                    !streq(got, want))
                        return false;
        }
        return true;
}

static int threads_of_self(void)
{
        _cleanup_free_ char *status = NULL;
        size_t n;

        if (read_full_file_at(AT_FDCWD, "/proc/self/status", 65536, &status, &n) < 0)
                return -1;
        const char *p = strstr(status, "\nThreads:");
        return p ? atoi(p + strlen("\nThreads:")) : -1;
}

static void test_good(struct layer *layers, const char *const *diff_ids)
{
        _cleanup_store_ struct moat_store *s = open_store("good");
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_strv_free_ char **chain = NULL, **again = NULL;

        ok(s && put_image(s, "localhost/unpack:6", layers, diff_ids, N_LAYERS), "six-layer image stored");
        if (!s || !(img = resolve(s, "localhost/unpack:6")))
                return;
        int sfd = moat_store_dir_fd(s);
        int r = moat_images_unpack(s, img, NULL, &chain, &err);
        is_int(r, 0, "six layers unpacked%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        is_int(threads_of_self(), base_threads, "every worker joined before returning");
        is_int(count_layer_dirs(sfd, false), N_LAYERS, "one tree per layer");
        is_int(count_layer_dirs(sfd, true), 0, "no temp tree left");
        for (int i = 0; i < N_LAYERS; i++)
                ok(chain[i] && tree_is_layer(sfd, chain[i], i), "layer %d (%s) unpacked to its own tree", i,
                   layer_comp[i] == COMP_GZIP ? "gzip" : layer_comp[i] == COMP_ZSTD ? "zstd" : "plain");
        ok(chain[N_LAYERS] == NULL, "chain ids NULL-terminated");

        /* Trees present: nothing to do, same answer. */
        r = moat_images_unpack(s, img, NULL, &again, NULL);
        is_int(r, 0, "second unpack");
        ok(r == 0 && again && streq(again[0], chain[0]) && streq(again[N_LAYERS - 1], chain[N_LAYERS - 1]),
           "second unpack names the same trees");

        /* One missing layer: the path without threads. */
        _cleanup_close_ int lfd = openat(sfd, "layers", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        is_int(moat_images_rm_rf_at(lfd, chain[3], 0), 0, "layer 3's tree removed");
        strv_free(TAKE_PTR(again));
        r = moat_images_unpack(s, img, NULL, &again, NULL);
        is_int(r, 0, "unpack with one layer missing");
        ok(tree_is_layer(sfd, chain[3], 3), "the missing layer alone unpacked");
        is_int(count_layer_dirs(sfd, true), 0, "no temp tree left");
}

/* An image whose unpacking fails at layer bad_index: the error names it,
 * and nothing is left in layers/. */
static void test_failure(const char *name, struct layer *layers, const char *const *diff_ids, int bad_index,
                         int want_r, const char *want_text)
{
        _cleanup_store_ struct moat_store *s = open_store(name);
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        char ref[128], want[128];

        snprintf(ref, sizeof(ref), "localhost/%s:1", name);
        ok(s && put_image(s, ref, layers, diff_ids, N_LAYERS), "%s: image stored", name);
        if (!s || !(img = resolve(s, ref)))
                return;
        int sfd = moat_store_dir_fd(s);
        int r = moat_images_unpack(s, img, NULL, &chain, &err);
        is_int(r, want_r, "%s: unpack fails", name);
        snprintf(want, sizeof(want), "layers[%d] (%s)", bad_index, layers[bad_index].digest);
        ok(err && strstr(err->msg, want), "%s: the error names layers[%d] and its digest", name, bad_index);
        ok(err && strstr(err->msg, want_text), "%s: the error says what is wrong (%s)", name, want_text);
        if (err)
                printf("# %s\n", err->msg);
        ok(chain == NULL, "%s: no chain ids returned", name);
        is_int(count_layer_dirs(sfd, true), 0, "%s: no temp tree left", name);
        is_int(count_layer_dirs(sfd, false), 0, "%s: no ChainID tree installed", name);
        is_int(threads_of_self(), base_threads, "%s: every worker joined", name);
        struct stat st;
        ok(fstatat(sfd, "escape", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
           fstatat(sfd, "layers/escape", &st, AT_SYMLINK_NOFOLLOW) < 0,
           "%s: nothing written outside the trees", name);
}

/* Two processes unpack the same image into one store at the same time. */
static void test_two_processes(struct layer *layers, const char *const *diff_ids)
{
        _cleanup_store_ struct moat_store *s = open_store("shared");
        _cleanup_image_ struct moat_image *img = NULL;
        int go[2];
        pid_t pids[2] = { -1, -1 };

        ok(s && put_image(s, "localhost/shared:1", layers, diff_ids, N_LAYERS), "shared: image stored");
        if (!s || pipe2(go, O_CLOEXEC) < 0)
                return;
        fflush(stdout);
        for (int k = 0; k < 2; k++) {
                pids[k] = fork();
                if (pids[k] == 0) {
                        char c;
                        struct moat_store *cs = open_store("shared");
                        struct moat_image *cimg = cs ? resolve(cs, "localhost/shared:1") : NULL;
                        struct moat_error *err = NULL;
                        char **chain = NULL;

                        close(go[1]);
                        if (!cimg || read(go[0], &c, 1) != 0)
                                _exit(2);
                        if (moat_images_unpack(cs, cimg, NULL, &chain, &err) < 0) {
                                printf("# child %d: %s\n", k, err->msg);
                                fflush(stdout);
                                _exit(1);
                        }
                        _exit(0);
                }
        }
        close(go[0]);
        close(go[1]);  /* both children start unpacking now */
        for (int k = 0; k < 2; k++) {
                int st = -1;
                if (pids[k] > 0 && waitpid(pids[k], &st, 0) != pids[k])
                        st = -1;
                ok(pids[k] > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "shared: process %d unpacked", k);
        }
        img = resolve(s, "localhost/shared:1");
        _cleanup_strv_free_ char **chain = NULL;
        int sfd = moat_store_dir_fd(s);
        ok(img && oci_chain_ids(img->config->diff_ids, img->config->n_diff_ids, &chain, NULL) == 0,
           "shared: chain ids");
        is_int(count_layer_dirs(sfd, false), N_LAYERS, "shared: one tree per layer");
        is_int(count_layer_dirs(sfd, true), 0, "shared: no temp tree left");
        for (int i = 0; chain && i < N_LAYERS; i++)
                ok(tree_is_layer(sfd, chain[i], i), "shared: layer %d tree complete", i);
}

int main(void)
{
        struct layer layers[N_LAYERS] = {}, evil[N_LAYERS] = {};
        const char *diff_ids[N_LAYERS], *bad_diff_ids[N_LAYERS], *evil_diff_ids[N_LAYERS];
        bool made = true;

        if (!mkdtemp(tmpdir))
                return 1;
        base_threads = threads_of_self();
#ifdef __SANITIZE_THREAD__
        base_threads++;  /* TSan starts a background thread with the first pthread_create() */
#endif
        for (int i = 0; i < N_LAYERS; i++) {
                made = made && make_layer(i, false, &layers[i]);
                evil[i] = layers[i];
                diff_ids[i] = bad_diff_ids[i] = evil_diff_ids[i] = layers[i].diff_id;
        }
        ok(made, "six layers made (gzip, zstd, plain)");
        if (!made)
                return tap_done();
        /* layer 3 (index 2) with the DiffID of layer 1 in the config */
        bad_diff_ids[2] = layers[0].diff_id;
        /* layer 5 (index 4) holds "../escape" */
        ok(make_layer(4, true, &evil[4]), "escaping layer made");
        evil_diff_ids[4] = evil[4].diff_id;

        test_good(layers, diff_ids);
        test_failure("baddiff", layers, bad_diff_ids, 2, -EBADMSG, "does not match the config's diff_ids[2]");
        test_failure("escape", evil, evil_diff_ids, 4, -EXDEV, "leaves the layer");
        test_two_processes(layers, diff_ids);

        for (int i = 0; i < N_LAYERS; i++)
                free(layers[i].blob.data);
        free(evil[4].blob.data);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", tmpdir);
        return tap_done();
}
