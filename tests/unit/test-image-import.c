/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of image/import.c: tarballs built here with libarchive's
 * writer (plain, gzip, zstd, xz, bzip2) imported into a temp store, the
 * manifest and config read back through src/oci's parser; every --change
 * instruction (JSON and shell forms, ENV's two forms and expansion,
 * EXPOSE ranges, WORKDIR joining, STOPSIGNAL names), refused instructions,
 * platforms, and bad tarballs (not a tar, empty, truncated, too many
 * entries, too large) leaving nothing behind.
 */

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "image/import.h"
#include "image/store.h"
#include "oci/image-spec.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-import-XXXXXX";
static struct moat_store *store;

enum filter { F_NONE, F_GZIP, F_ZSTD, F_XZ, F_BZIP2 };

/* A tar of n files "f<i>" holding "data<i>" plus a dir and a symlink,
 * through the filter, in a memfd at offset 0. */
static int make_tar(unsigned n, enum filter filter)
{
        struct archive *a = archive_write_new();
        int fd = memfd_create("tar", MFD_CLOEXEC);

        archive_write_set_format_pax_restricted(a);
        switch (filter) {
        case F_GZIP:
                archive_write_add_filter_gzip(a);
                break;
        case F_ZSTD:
                archive_write_add_filter_zstd(a);
                break;
        case F_XZ:
                archive_write_add_filter_xz(a);
                break;
        case F_BZIP2:
                archive_write_add_filter_bzip2(a);
                break;
        case F_NONE:
                break;
        }
        archive_write_open_fd(a, fd);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, "bin/");
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
        archive_write_header(a, e);
        archive_entry_clear(e);
        archive_entry_set_pathname(e, "bin/sh");
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, "busybox");
        archive_entry_set_perm(e, 0777);
        archive_write_header(a, e);
        for (unsigned i = 0; i < n; i++) {
                char name[32], data[32];
                snprintf(name, sizeof(name), "f%u", i);
                snprintf(data, sizeof(data), "data%u", i);
                archive_entry_clear(e);
                archive_entry_set_pathname(e, name);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, 0644);
                archive_entry_set_size(e, (la_int64_t) strlen(data));
                archive_write_header(a, e);
                archive_write_data(a, data, strlen(data));
        }
        archive_entry_free(e);
        archive_write_close(a);
        archive_write_free(a);
        lseek(fd, 0, SEEK_SET);
        return fd;
}

static int memfd_of(const void *buf, size_t len)
{
        int fd = memfd_create("in", MFD_CLOEXEC);
        if (len && write(fd, buf, len) != (ssize_t) len)
                abort();
        lseek(fd, 0, SEEK_SET);
        return fd;
}

static void digest_fd(int fd, char out[OCI_DIGEST_STRING_SIZE])
{
        struct sha256_ctx ctx;
        uint8_t d[SHA256_DIGEST_SIZE];
        char buf[4096];
        ssize_t k;

        sha256_init(&ctx);
        lseek(fd, 0, SEEK_SET);
        while ((k = read(fd, buf, sizeof(buf))) > 0)
                sha256_update(&ctx, (size_t) k, (const uint8_t *) buf);
        sha256_digest(&ctx, sizeof(d), d);
        strcpy(out, "sha256:");
        for (size_t i = 0; i < sizeof(d); i++)
                sprintf(out + 7 + 2 * i, "%02x", d[i]);
        lseek(fd, 0, SEEK_SET);
}

static size_t count_dir(const char *sub)
{
        char path[256];
        size_t n = 0;
        struct dirent *de;
        snprintf(path, sizeof(path), "%s/store/%s", tmpdir, sub);
        DIR *d = opendir(path);
        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static struct oci_image_doc *read_doc(const char *digest, const char *mt)
{
        _cleanup_free_ char *buf = NULL;
        struct oci_image_doc *doc = NULL;
        size_t len;
        if (moat_store_read_blob(store, digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, NULL) < 0)
                return NULL;
        if (oci_image_doc_parse(buf, len, mt, &doc, NULL) < 0)
                return NULL;
        return doc;
}

static const char *host_arch(void)
{
        static struct utsname u;
        uname(&u);
        if (streq(u.machine, "x86_64"))
                return "amd64";
        if (streq(u.machine, "aarch64"))
                return "arm64";
        return u.machine;
}

static void test_plain_import(void)
{
        _cleanup_close_ int fd = make_tar(3, F_NONE);
        _cleanup_import_result_ struct moat_import_result *res = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *m = NULL, *c = NULL;
        char want[OCI_DIGEST_STRING_SIZE];
        struct stat st;

        digest_fd(fd, want);
        fstat(fd, &st);
        is_int(moat_import_rootfs(store, fd, NULL, &res, NULL), 0, "import a plain tar");
        if (!res)
                return;
        is_str(res->layer_digest, want, "the layer blob is the tar as given");
        is_int(res->layer_size, st.st_size, "layer size is the tar's size");
        is_int(res->entries, 5, "5 entries seen");
        is_str(res->manifest.media_type, OCI_MT_MANIFEST, "an OCI manifest");
        ok(moat_store_has_blob(store, res->manifest.digest) > 0, "manifest in the store");
        m = read_doc(res->manifest.digest, OCI_MT_MANIFEST);
        ok(m && oci_image_doc_manifest(m), "manifest parses");
        if (!m || !oci_image_doc_manifest(m))
                return;
        const struct oci_manifest *man = oci_image_doc_manifest(m);
        is_int(man->n_layers, 1, "one layer");
        is_str(man->layers[0].media_type, OCI_MT_LAYER_TAR, "layer media type is OCI tar");
        is_str(man->layers[0].digest, want, "layer digest in the manifest");
        is_int(man->layers[0].size, st.st_size, "layer size in the manifest");
        is_str(man->config.digest, res->id, "the ID is the config digest");
        c = read_doc(res->id, OCI_MT_CONFIG);
        ok(c && oci_image_doc_config(c), "config parses");
        if (!c)
                return;
        const struct oci_image_config *cfg = oci_image_doc_config(c);
        is_str(cfg->os, "linux", "os linux");
        is_str(cfg->architecture, host_arch(), "host architecture");
        is_int(cfg->n_diff_ids, 1, "one diff id");
        is_str(cfg->diff_ids[0], want, "DiffID == layer digest");
        is_int(cfg->n_history, 1, "one history entry");
        is_str(cfg->history[0].comment, "Imported from -", "docker's default comment");
        ok(cfg->created && cfg->history[0].created && streq(cfg->created, cfg->history[0].created) &&
                   cfg->created[strlen(cfg->created) - 1] == 'Z',
           "created (UTC) in config and history: %s", cfg->created ? cfg->created : "(null)");
        ok(!cfg->config.has_cmd && !cfg->config.env, "no changes: empty config");
        is_int(count_dir("ingest"), 0, "no temp files left");
}

static void test_compressed(void)
{
        _cleanup_close_ int plain = make_tar(2, F_NONE);
        char want[OCI_DIGEST_STRING_SIZE];
        static const struct {
                enum filter f;
                const char *name;
        } filters[] = { { F_GZIP, "gzip" }, { F_ZSTD, "zstd" }, { F_XZ, "xz" }, { F_BZIP2, "bzip2" } };

        digest_fd(plain, want);
        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                _cleanup_close_ int fd = make_tar(2, filters[i].f);
                _cleanup_import_result_ struct moat_import_result *res = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                int r = moat_import_rootfs(store, fd, NULL, &res, &err);
                is_int(r, 0, "import a %s tar%s%s", filters[i].name, err ? ": " : "", err ? err->msg : "");
                if (res)
                        is_str(res->layer_digest, want, "%s: the layer is the uncompressed tar", filters[i].name);
        }
}

static void test_message_platform(void)
{
        _cleanup_close_ int fd = make_tar(1, F_NONE);
        _cleanup_import_result_ struct moat_import_result *res = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *c = NULL;
        struct moat_import_options o = { .message = "my rootfs", .platform = "linux/arm64/v8" };

        is_int(moat_import_rootfs(store, fd, &o, &res, NULL), 0, "import with -m and --platform");
        if (!res)
                return;
        c = read_doc(res->id, OCI_MT_CONFIG);
        if (!c)
                return;
        const struct oci_image_config *cfg = oci_image_doc_config(c);
        is_str(cfg->history[0].comment, "my rootfs", "the message is the history comment");
        is_str(cfg->architecture, "arm64", "--platform architecture");
        ok(!cfg->variant, "arm64/v8 normalised to arm64");

        struct oci_platform p = {};
        is_int(moat_import_platform("linux/arm", &p, NULL), 0, "linux/arm");
        is_str(p.variant, "v7", "arm defaults to v7");
        free(p.os);
        free(p.architecture);
        free(p.variant);
        p = (struct oci_platform) {};
        is_int(moat_import_platform("linux/x86_64", &p, NULL), 0, "linux/x86_64");
        is_str(p.architecture, "amd64", "x86_64 is amd64");
        free(p.os);
        free(p.architecture);
        free(p.variant);

        static const char *const bad[] = { "windows/amd64", "linux/bogus", "linux", "linux/amd64/v2/x", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_error_ struct moat_error *err = NULL;
                p = (struct oci_platform) {};
                is_int(moat_import_platform(bad[i], &p, &err), -EINVAL, "platform \"%s\" refused: %s", bad[i],
                       err ? err->msg : "");
        }
}

static void test_bad_tarballs(void)
{
        static const char text[] = "this is not a tarball, just some text that goes on for a while\n";
        size_t blobs = count_dir("blobs/sha256");
        struct {
                const char *what;
                int fd;
                int64_t max_entries, max_bytes;
                int want;
                const char *msg;
        } cases[] = {
                { "plain text", memfd_of(text, sizeof(text)), 0, 0, -EINVAL, "not a tar archive" },
                { "empty input", memfd_of("", 0), 0, 0, -EINVAL, "not a tar archive" },
                { "too many entries", make_tar(10, F_NONE), 5, 0, -E2BIG, "more than 5 entries" },
                { "too large", make_tar(10, F_NONE), 0, 1024, -EFBIG, "larger than 1024 bytes" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_import_result_ struct moat_import_result *res = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                struct moat_import_options o = { .max_entries = cases[i].max_entries,
                                                 .max_bytes = cases[i].max_bytes };
                int r = moat_import_rootfs(store, cases[i].fd, &o, &res, &err);
                is_int(r, cases[i].want, "%s refused", cases[i].what);
                ok(err && strstr(err->msg, cases[i].msg), "%s: message \"%s\"", cases[i].what,
                   err ? err->msg : "(none)");
                close(cases[i].fd);
        }

        /* gzip of text; a tar cut in the middle of a member. */
        {
                struct archive *a = archive_write_new();
                int fd = memfd_create("gz", MFD_CLOEXEC);
                struct archive_entry *e = archive_entry_new();
                _cleanup_error_ struct moat_error *err = NULL;
                _cleanup_import_result_ struct moat_import_result *res = NULL;
                archive_write_set_format_raw(a);
                archive_write_add_filter_gzip(a);
                archive_write_open_fd(a, fd);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_write_header(a, e);
                archive_write_data(a, text, sizeof(text));
                archive_entry_free(e);
                archive_write_close(a);
                archive_write_free(a);
                lseek(fd, 0, SEEK_SET);
                is_int(moat_import_rootfs(store, fd, NULL, &res, &err), -EINVAL, "gzip of text refused");
                ok(err && strstr(err->msg, "not a tar archive"), "message: %s", err ? err->msg : "(none)");
                close(fd);
        }
        {
                _cleanup_close_ int full = make_tar(3, F_NONE);
                _cleanup_error_ struct moat_error *err = NULL;
                _cleanup_import_result_ struct moat_import_result *res = NULL;
                char buf[1800];
                ssize_t k = read(full, buf, sizeof(buf)); /* header + part of f0's block... */
                _cleanup_close_ int cut = memfd_of(buf, (size_t) k);
                int r = moat_import_rootfs(store, cut, NULL, &res, &err);
                is_int(r, -EINVAL, "truncated tar refused");
                ok(err && strstr(err->msg, "invalid tar archive after 3 entries"), "message: %s",
                   err ? err->msg : "(none)");
        }
        is_int(count_dir("blobs/sha256"), blobs, "no blob committed by the refused imports");
        is_int(count_dir("ingest"), 0, "no temp files left behind");
}

/* Apply changes to {} and return the result as compact sorted JSON. */
static char *changes(const char *const *c, size_t n, int *ret_r, char **ret_err)
{
        json_t *cfg = json_object();
        _cleanup_error_ struct moat_error *err = NULL;
        *ret_r = moat_import_apply_changes(cfg, (char *const *) c, n, &err);
        if (ret_err)
                *ret_err = err ? strdup(err->msg) : NULL;
        char *s = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(cfg);
        return s;
}

#define CHANGE_OK(want, ...)                                                                            \
        do {                                                                                            \
                const char *const _ch[] = { __VA_ARGS__ };                                               \
                int _r;                                                                                 \
                char *_e = NULL;                                                                        \
                char *_s = changes(_ch, ELEMENTSOF(_ch), &_r, &_e);                                       \
                is_int(_r, 0, "change %s%s%s", _ch[0], _e ? ": " : "", _e ? _e : "");                    \
                is_str(_s, want, "change %s: config", _ch[0]);                                           \
                free(_s);                                                                               \
                free(_e);                                                                               \
        } while (0)

#define CHANGE_BAD(err, msg, ...)                                                                       \
        do {                                                                                            \
                const char *const _ch[] = { __VA_ARGS__ };                                               \
                int _r;                                                                                 \
                char *_e = NULL;                                                                        \
                char *_s = changes(_ch, ELEMENTSOF(_ch), &_r, &_e);                                       \
                is_int(_r, err, "change %s refused", _ch[ELEMENTSOF(_ch) - 1]);                           \
                ok(_e && strstr(_e, msg), "change %s: message \"%s\" has \"%s\"", _ch[ELEMENTSOF(_ch) - 1], \
                   _e ? _e : "(none)", msg);                                                            \
                is_str(_s, "{}", "change %s: config unchanged", _ch[ELEMENTSOF(_ch) - 1]);                \
                free(_s);                                                                               \
                free(_e);                                                                               \
        } while (0)

static void test_changes(void)
{
        CHANGE_OK("{\"Cmd\":[\"/bin/sh\",\"-c\",\"echo hi\"]}", "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]");
        CHANGE_OK("{\"Cmd\":[\"/bin/sh\",\"-c\",\"echo $HOME  \\\"x\\\"\"]}", "CMD echo $HOME  \"x\"");
        CHANGE_OK("{\"Cmd\":[\"/bin/sh\",\"-c\",\"[not json\"]}", "cmd [not json");
        CHANGE_OK("{\"Entrypoint\":[\"/bin/busybox\"]}", "ENTRYPOINT [\"/bin/busybox\"]");
        CHANGE_OK("{\"Entrypoint\":[\"/bin/sh\",\"-c\",\"exec top -b\"]}", "ENTRYPOINT exec top -b");
        CHANGE_OK("{\"Cmd\":[\"-l\"],\"Entrypoint\":[\"ls\"]}", "CMD [\"-l\"]", "ENTRYPOINT [\"ls\"]");
        CHANGE_OK("{\"Cmd\":[\"-l\"],\"Entrypoint\":[\"ls\"]}", "ENTRYPOINT [\"ls\"]", "CMD [\"-l\"]");
        CHANGE_OK("{\"Entrypoint\":[]}", "ENTRYPOINT []");

        CHANGE_OK("{\"Env\":[\"A=1\",\"B=two words\"]}", "ENV A=1 B=\"two words\"");
        CHANGE_OK("{\"Env\":[\"GREETING=hello big world\"]}", "ENV GREETING hello big world");
        CHANGE_OK("{\"Env\":[\"A=2\",\"B=x\"]}", "ENV A=1", "ENV B=x", "ENV A=2");
        CHANGE_OK("{\"Env\":[\"A=1\",\"B=1:x 1y def alt $A\"]}", "ENV A=1",
                  "ENV B=\"$A:x ${A}y ${C:-def} ${A:+alt} \\$A\"");
        CHANGE_OK("{\"Env\":[\"A=1\",\"B=$A\",\"C=a\\\\b\"]}", "ENV A=1", "ENV B='$A' C=a\\\\b");
        CHANGE_OK("{\"Env\":[\"P=/usr/bin:/bin\",\"Q=/usr/bin:/bin:/x\"]}", "ENV P=/usr/bin:/bin",
                  "ENV Q=${P}:/x");

        CHANGE_OK("{\"ExposedPorts\":{\"443/udp\":{},\"80/tcp\":{},\"8000/tcp\":{},\"8001/tcp\":{},"
                  "\"8002/tcp\":{},\"9/sctp\":{}}}",
                  "EXPOSE 80 443/UDP", "EXPOSE 8000-8002/tcp 9/sctp");
        CHANGE_OK("{\"Labels\":{\"a\":\"b\",\"c d\":\"e f\",\"version\":\"1.0 beta\"}}",
                  "LABEL a=b \"c d\"=\"e f\"", "LABEL version 1.0 beta");
        CHANGE_OK("{\"User\":\"nobody:nogroup\"}", "USER nobody:nogroup");
        CHANGE_OK("{\"Volumes\":{\"/a\":{},\"/b\":{},\"/c\":{},\"/d\":{}}}", "VOLUME [\"/a\", \"/b\"]",
                  "VOLUME /c /d");
        CHANGE_OK("{\"WorkingDir\":\"/tmp/sub\"}", "WORKDIR /tmp", "WORKDIR sub");
        CHANGE_OK("{\"WorkingDir\":\"/x\"}", "WORKDIR /tmp", "WORKDIR ../../x");
        CHANGE_OK("{\"Env\":[\"D=/srv\"],\"WorkingDir\":\"/srv/app\"}", "ENV D=/srv", "WORKDIR $D/app");
        CHANGE_OK("{\"StopSignal\":\"SIGTERM\"}", "STOPSIGNAL SIGTERM");
        CHANGE_OK("{\"StopSignal\":\"9\"}", "STOPSIGNAL 9");
        CHANGE_OK("{\"StopSignal\":\"rtmin+3\"}", "STOPSIGNAL rtmin+3");
        CHANGE_OK("{\"Cmd\":[\"/bin/sh\",\"-c\",\"a b\"],\"Env\":[\"Y=2\",\"X=1\"]}", "ENV Y=2",
                  "# a comment\nENV X=1\n\nCMD a \\\n b");

        CHANGE_BAD(-EOPNOTSUPP, "ONBUILD is not supported", "ONBUILD RUN true");
        CHANGE_BAD(-EOPNOTSUPP, "HEALTHCHECK is not supported", "HEALTHCHECK NONE");
        CHANGE_BAD(-EINVAL, "RUN is not a valid change command", "RUN echo hi");
        CHANGE_BAD(-EINVAL, "FROM is not a valid change command", "FROM busybox");
        CHANGE_BAD(-EINVAL, "unknown instruction: BOGUS", "ENV A=1", "BOGUS x");
        CHANGE_BAD(-EINVAL, "CMD requires at least one argument", "CMD");
        CHANGE_BAD(-EINVAL, "arrays must be comprised of strings only", "CMD [1, 2]");
        CHANGE_BAD(-EINVAL, "ENV must have two arguments", "ENV A");
        CHANGE_BAD(-EINVAL, "can't find = in \"c\"", "ENV a=b c");
        CHANGE_BAD(-EINVAL, "ENV names can not be blank", "ENV =b");
        CHANGE_BAD(-EINVAL, "matching double-quote", "ENV a=\"b");
        CHANGE_BAD(-EINVAL, "matching single-quote", "LABEL a='b");
        CHANGE_BAD(-EINVAL, "LABEL requires at least one argument", "LABEL");
        CHANGE_BAD(-EINVAL, "invalid containerPort: abc", "EXPOSE abc");
        CHANGE_BAD(-EINVAL, "invalid containerPort: 70000", "EXPOSE 70000");
        CHANGE_BAD(-EINVAL, "invalid containerPort: 9-3", "EXPOSE 9-3");
        CHANGE_BAD(-EINVAL, "invalid proto: foo", "EXPOSE 80/foo");
        CHANGE_BAD(-EINVAL, "USER requires exactly one argument", "USER");
        CHANGE_BAD(-EINVAL, "VOLUME specified can not be an empty string", "VOLUME [\"\"]");
        CHANGE_BAD(-EINVAL, "arrays must be comprised of strings only", "VOLUME [\"/a\", {}]");
        CHANGE_BAD(-EINVAL, "WORKDIR requires exactly one argument", "WORKDIR");
        CHANGE_BAD(-EINVAL, "invalid signal: SIGFOO", "STOPSIGNAL SIGFOO");
        CHANGE_BAD(-EINVAL, "invalid signal: 0", "STOPSIGNAL 0");
        CHANGE_BAD(-EINVAL, "unsupported modifier", "ENV A=${B%x}");
        CHANGE_BAD(-EINVAL, "B: must be set", "ENV A=\"${B:?must be set}\"");

        /* Expansion cannot grow without bound. */
        {
                const char *c[40];
                c[0] = "ENV A=0123456789abcdef0123456789abcdef";
                for (size_t i = 1; i < ELEMENTSOF(c); i++)
                        c[i] = "ENV A=$A$A";
                int r;
                char *e = NULL;
                char *s = changes(c, ELEMENTSOF(c), &r, &e);
                is_int(r, -E2BIG, "doubling ENV refused");
                ok(e && strstr(e, "exceed"), "message: %s", e ? e : "(none)");
                free(s);
                free(e);
        }
}

static void test_import_with_changes(void)
{
        _cleanup_close_ int fd = make_tar(1, F_GZIP);
        _cleanup_import_result_ struct moat_import_result *res = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *c = NULL;
        char *ch[] = { "CMD [\"/bin/sh\"]", "ENV MOAT=import", "WORKDIR /tmp", "EXPOSE 80", "LABEL k=v",
                       "USER 1000", "VOLUME /data", "STOPSIGNAL SIGINT", "ENTRYPOINT [\"/bin/env\"]" };
        struct moat_import_options o = { .changes = ch, .n_changes = ELEMENTSOF(ch) };
        size_t blobs = count_dir("blobs/sha256");

        is_int(moat_import_rootfs(store, fd, &o, &res, NULL), 0, "import with changes");
        if (!res)
                return;
        c = read_doc(res->id, OCI_MT_CONFIG);
        ok(c != NULL, "config parses");
        if (!c)
                return;
        const struct oci_image_exec_config *x = &oci_image_doc_config(c)->config;
        ok(x->has_cmd && x->cmd && streq(x->cmd[0], "/bin/sh") && !x->cmd[1], "Cmd");
        ok(x->has_entrypoint && x->entrypoint && streq(x->entrypoint[0], "/bin/env"), "Entrypoint");
        ok(x->env && streq(x->env[0], "MOAT=import") && !x->env[1], "Env");
        is_str(x->working_dir, "/tmp", "WorkingDir");
        ok(x->exposed_ports && streq(x->exposed_ports[0], "80/tcp"), "ExposedPorts");
        ok(x->n_labels == 1 && streq(x->labels[0].key, "k") && streq(x->labels[0].value, "v"), "Labels");
        is_str(x->user, "1000", "User");
        ok(x->volumes && streq(x->volumes[0], "/data"), "Volumes");
        is_str(x->stop_signal, "SIGINT", "StopSignal");

        /* A bad change refuses before anything is read or stored. */
        _cleanup_close_ int fd2 = make_tar(7, F_NONE);
        _cleanup_import_result_ struct moat_import_result *res2 = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        char *bad[] = { "ENV A=1", "MAINTAINER me" };
        struct moat_import_options o2 = { .changes = bad, .n_changes = 2 };
        blobs = count_dir("blobs/sha256");
        is_int(moat_import_rootfs(store, fd2, &o2, &res2, &err), -EINVAL, "bad change refused");
        ok(err && strstr(err->msg, "MAINTAINER"), "the message names it: %s", err ? err->msg : "(none)");
        is_int(lseek(fd2, 0, SEEK_CUR), 0, "the input was not read");
        is_int(count_dir("blobs/sha256"), blobs, "nothing stored");
}

int main(void)
{
        char path[128];

        if (!mkdtemp(tmpdir))
                return 1;
        snprintf(path, sizeof(path), "%s/store", tmpdir);
        if (moat_store_open(path, true, &store, NULL) < 0)
                return 1;

        test_plain_import();
        test_compressed();
        test_message_platform();
        test_bad_tarballs();
        test_changes();
        test_import_with_changes();

        moat_store_free(store);
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
                ok(false, "remove %s", tmpdir);
        return tap_done();
}
