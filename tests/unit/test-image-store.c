/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of image/store.c: the layout it creates, verified ingest
 * (known digests, mismatch and size overrun leave nothing behind), blob
 * verification, crash leftovers removed on reopen, concurrent ingest of the
 * same blob from two processes, and digest validation.
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/store.h"
#include "tap.h"

#define EMPTY_DIGEST "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_DIGEST "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static char tmpdir[] = "/tmp/moat-test-store-XXXXXX";
static char root[256];

static int count_entries(const char *sub)
{
        char p[512];
        int n = 0;
        DIR *d;
        struct dirent *de;

        snprintf(p, sizeof(p), "%s/%s", root, sub);
        d = opendir(p);
        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static int file_equals(const char *sub, const char *content)
{
        _cleanup_free_ char *buf = NULL;
        char p[512];
        size_t n;

        snprintf(p, sizeof(p), "%s/%s", root, sub);
        if (read_full_file_at(AT_FDCWD, p, 4096, &buf, &n) < 0)
                return 0;
        return streq(buf, content);
}

struct report_ctx {
        int n;
        char last[128];
};

static void report_cb(const char *digest, const char *problem, void *userdata)
{
        struct report_ctx *c = userdata;
        c->n++;
        snprintf(c->last, sizeof(c->last), "%s", digest);
        printf("# verify: %s: %s\n", digest, problem);
}

static void test_layout_and_roundtrip(void)
{
        _cleanup_store_ struct moat_store *s = NULL;
        struct moat_error *err = NULL;
        _cleanup_free_ char *d1 = NULL, *d2 = NULL, *buf = NULL;
        size_t size = 99;
        int fd = -EBADF;

        is_int(moat_store_open(root, false, &s, NULL), -ENOENT, "opening a missing store without create fails");
        is_int(moat_store_open(root, true, &s, &err), 0, "store created");
        moat_error_free(err);
        err = NULL;
        ok(file_equals("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"), "oci-layout written");
        ok(file_equals("index.json", "{\"schemaVersion\":2,\"manifests\":[]}"), "index.json written");
        is_int(count_entries("blobs/sha256"), 0, "blobs/sha256 exists and is empty");
        is_int(count_entries("ingest"), 0, "ingest exists and is empty");

        is_int(moat_store_put(s, "", 0, NULL, &d1, NULL), 0, "put empty blob");
        is_str(d1, EMPTY_DIGEST, "digest of the empty blob");
        is_int(moat_store_put(s, "abc", 3, ABC_DIGEST, &d2, NULL), 0, "put \"abc\" with its expected digest");
        is_str(d2, ABC_DIGEST, "digest of \"abc\"");
        is_int(moat_store_has_blob(s, ABC_DIGEST), 1, "has abc");
        is_int(moat_store_read_blob(s, ABC_DIGEST, 100, &buf, &size, NULL), 0, "read abc back");
        ok(buf && size == 3 && memcmp(buf, "abc", 3) == 0, "content round trip");
        is_int(moat_store_open_blob(s, ABC_DIGEST, true, &fd, NULL), 0, "open abc with verify");
        {
                char c[4] = {};
                ok(fd >= 0 && read(fd, c, sizeof(c)) == 3 && streq(c, "abc"), "verified fd reads from the start");
                ok((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "blob fd is O_CLOEXEC");
        }
        fd = safe_close(fd);
        is_int(moat_store_put(s, "abc", 3, NULL, NULL, NULL), 0, "putting an existing blob again is fine");
        is_int(count_entries("blobs/sha256"), 2, "two blobs");
        is_int(moat_store_read_blob(s, ABC_DIGEST, 2, &buf, &size, NULL), -EFBIG, "read bounded by max");

        /* Streaming ingest in chunks. */
        {
                struct moat_ingest *in = NULL;
                _cleanup_free_ char *d = NULL;
                is_int(moat_store_ingest_begin(s, ABC_DIGEST, -1, &in, NULL), 0, "ingest begin, size unknown");
                ok(moat_ingest_write(in, "a", 1, NULL) == 0 && moat_ingest_write(in, "bc", 2, NULL) == 0,
                   "two chunks written");
                is_int(moat_ingest_commit(in, &d, NULL), 0, "chunked commit");
                is_str(d, ABC_DIGEST, "chunked digest");
        }
        {
                struct moat_ingest *in = NULL;
                is_int(moat_store_ingest_begin(s, NULL, -1, &in, NULL), 0, "ingest begin for abort");
                is_int(count_entries("ingest"), 1, "temp file present while ingesting");
                moat_ingest_abort(in);
                is_int(count_entries("ingest"), 0, "abort removes the temp file");
        }

        is_int(moat_store_remove_blob(s, EMPTY_DIGEST, NULL), 0, "remove blob");
        is_int(moat_store_has_blob(s, EMPTY_DIGEST), 0, "removed blob is gone");
        is_int(moat_store_open_blob(s, EMPTY_DIGEST, false, &fd, NULL), -ENOENT, "open of a missing blob is ENOENT");
        is_int(moat_store_remove_blob(s, EMPTY_DIGEST, NULL), -ENOENT, "removing it again is ENOENT");
}

static void test_mismatch(void)
{
        _cleanup_store_ struct moat_store *s = NULL;
        struct moat_error *err = NULL;
        _cleanup_free_ char *d = NULL;
        int r;

        is_int(moat_store_open(root, false, &s, NULL), 0, "reopen existing store without create");
        r = moat_store_put(s, "abd", 3, ABC_DIGEST, &d, &err);
        is_int(r, -EBADMSG, "digest mismatch rejected");
        ok(err && strstr(err->msg, "blob digest mismatch: expected " ABC_DIGEST ", got sha256:"),
           "mismatch message names both digests: %s", err ? err->msg : "(none)");
        moat_error_free(err);
        err = NULL;
        ok(d == NULL, "no digest returned on mismatch");
        is_int(count_entries("ingest"), 0, "nothing left in ingest after mismatch");
        is_int(count_entries("blobs/sha256"), 1, "nothing added to blobs after mismatch");

        {
                struct moat_ingest *in = NULL;
                is_int(moat_store_ingest_begin(s, NULL, 2, &in, NULL), 0, "ingest with expected size 2");
                is_int(moat_ingest_write(in, "ab", 2, NULL), 0, "2 bytes fit");
                is_int(moat_ingest_write(in, "c", 1, &err), -EFBIG, "third byte overruns the size");
                ok(err && strstr(err->msg, "expected size"), "overrun message: %s", err ? err->msg : "(none)");
                moat_error_free(err);
                err = NULL;
                is_int(moat_ingest_commit(in, NULL, NULL), -EINVAL, "a failed ingest cannot be committed");
        }
        {
                struct moat_ingest *in = NULL;
                is_int(moat_store_ingest_begin(s, NULL, 5, &in, NULL), 0, "ingest with expected size 5");
                is_int(moat_ingest_write(in, "abc", 3, NULL), 0, "3 bytes written");
                is_int(moat_ingest_commit(in, NULL, &err), -EBADMSG, "short blob rejected at commit");
                ok(err && strstr(err->msg, "size mismatch"), "short message: %s", err ? err->msg : "(none)");
                moat_error_free(err);
                err = NULL;
        }
        is_int(count_entries("ingest"), 0, "nothing left in ingest after size errors");
        is_int(count_entries("blobs/sha256"), 1, "nothing added to blobs after size errors");
}

static void test_verify(void)
{
        _cleanup_store_ struct moat_store *s = NULL;
        struct report_ctx c = {};
        char p[512];
        int fd, r;

        is_int(moat_store_open(root, false, &s, NULL), 0, "open for verify");
        struct moat_store_verify_result vr = {};
        is_int(moat_store_verify(s, report_cb, &c, &vr, NULL), 0, "clean store verifies");
        is_int(c.n, 0, "no reports on a clean store");
        {
                /* what was checked: every file of blobs/sha256 and its bytes */
                char bp[600];
                _cleanup_closedir_ DIR *d = NULL;
                struct dirent *de;
                size_t files = 0;
                uint64_t bytes = 0;
                snprintf(bp, sizeof(bp), "%s/blobs/sha256", root);
                d = opendir(bp);
                while (d && (de = readdir(d))) {
                        struct stat st;
                        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) < 0)
                                continue;
                        files++;
                        bytes += (uint64_t) st.st_size;
                }
                ok(vr.blobs == files && vr.bytes == bytes && files > 0, "result: %zu blobs, %llu bytes", vr.blobs,
                   (unsigned long long) vr.bytes);
        }

        /* Flip a byte of the abc blob. */
        snprintf(p, sizeof(p), "%s/blobs/sha256/%s", root, &ABC_DIGEST[7]);
        fd = open(p, O_RDWR | O_CLOEXEC);
        ok(fd >= 0 && pwrite(fd, "X", 1, 1) == 1, "corrupted a byte of the blob");
        safe_close(fd);
        r = moat_store_verify(s, report_cb, &c, NULL, NULL);
        is_int(r, 1, "verify counts one corrupt blob");
        is_str(c.last, ABC_DIGEST, "verify names the corrupt blob");
        {
                int bfd = -EBADF;
                _cleanup_free_ char *buf = NULL;
                is_int(moat_store_open_blob(s, ABC_DIGEST, true, &bfd, NULL), -EBADMSG, "open with verify refuses it");
                is_int(moat_store_open_blob(s, ABC_DIGEST, false, &bfd, NULL), 0, "open without verify works");
                safe_close(bfd);
                is_int(moat_store_read_blob(s, ABC_DIGEST, 100, &buf, NULL, NULL), -EBADMSG, "read_blob refuses it");
        }

        /* A stray file whose name is not a digest. */
        snprintf(p, sizeof(p), "%s/blobs/sha256/not-a-digest", root);
        fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        safe_close(fd);
        c = (struct report_ctx) {};
        is_int(moat_store_verify(s, report_cb, &c, NULL, NULL), 2, "verify also reports a badly named file");
        unlink(p);
        is_int(moat_store_remove_blob(s, ABC_DIGEST, NULL), 0, "remove the corrupt blob");
        is_int(moat_store_verify(s, NULL, NULL, NULL, NULL), 0, "clean again");
}

static void test_leftover(void)
{
        _cleanup_store_ struct moat_store *s = NULL;
        struct moat_store *other = NULL;
        char p[512];
        int fd;

        snprintf(p, sizeof(p), "%s/ingest/tmp-1-deadbeef", root);
        fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ok(fd >= 0 && write(fd, "half", 4) == 4, "leftover temp file planted");
        safe_close(fd);
        is_int(moat_store_open(root, false, &s, NULL), 0, "reopen");
        ok(access(p, F_OK) < 0 && errno == ENOENT, "leftover temp removed on open");

        /* A live ingest of another handle survives an open. */
        {
                struct moat_ingest *in = NULL;
                _cleanup_free_ char *d = NULL;
                is_int(moat_store_ingest_begin(s, NULL, -1, &in, NULL), 0, "live ingest");
                is_int(moat_store_open(root, false, &other, NULL), 0, "second open while ingesting");
                is_int(count_entries("ingest"), 1, "live temp file not removed by the second open");
                moat_store_free(other);
                is_int(moat_ingest_write(in, "abc", 3, NULL), 0, "live ingest continues");
                is_int(moat_ingest_commit(in, &d, NULL), 0, "live ingest commits");
                is_str(d, ABC_DIGEST, "live ingest digest");
        }
}

static void test_concurrent(void)
{
        static char big[1 << 20];
        char digest[MOAT_DIGEST_MAX] = {};
        pid_t pids[2];
        int st, okc = 0;

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (char) (i * 7 + i / 251);
        for (int k = 0; k < 2; k++) {
                pids[k] = fork();
                if (pids[k] == 0) {
                        struct moat_store *s = NULL;
                        struct moat_ingest *in = NULL;
                        if (moat_store_open(root, false, &s, NULL) < 0 ||
                            moat_store_ingest_begin(s, NULL, sizeof(big), &in, NULL) < 0)
                                _exit(2);
                        for (size_t off = 0; off < sizeof(big); off += 4096)
                                if (moat_ingest_write(in, big + off, 4096, NULL) < 0)
                                        _exit(3);
                        if (moat_ingest_commit(in, NULL, NULL) < 0)
                                _exit(4);
                        moat_store_free(s);
                        _exit(0);
                }
        }
        for (int k = 0; k < 2; k++)
                if (pids[k] > 0 && waitpid(pids[k], &st, 0) == pids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
                        okc++;
        is_int(okc, 2, "both concurrent ingests of the same content succeed");
        {
                _cleanup_store_ struct moat_store *s = NULL;
                _cleanup_free_ char *d = NULL, *buf = NULL;
                size_t n = 0;
                is_int(moat_store_open(root, false, &s, NULL), 0, "open after concurrent ingest");
                is_int(moat_store_put(s, big, sizeof(big), NULL, &d, NULL), 0, "digest of the content");
                snprintf(digest, sizeof(digest), "%s", d ? d : "");
                is_int(count_entries("blobs/sha256"), 2, "one blob for the content (plus abc)");
                is_int(count_entries("ingest"), 0, "no temp files left");
                is_int(moat_store_read_blob(s, digest, sizeof(big), &buf, &n, NULL), 0, "blob reads and verifies");
                ok(n == sizeof(big) && memcmp(buf, big, n) == 0, "blob content intact");
                is_int(moat_store_verify(s, NULL, NULL, NULL, NULL), 0, "store verifies");
        }
}

static void test_digests(void)
{
        static const char *const bad[] = {
                "sha256:XYZ",
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
                "sha256:../../../../etc/passwd",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "",
        };
        _cleanup_store_ struct moat_store *s = NULL;
        struct moat_error *err = NULL;
        struct moat_ingest *in = NULL;
        int fd = -EBADF;

        is_int(moat_digest_validate(EMPTY_DIGEST, NULL), 0, "valid digest accepted");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                is_int(moat_digest_validate(bad[i], &err), -EINVAL, "digest \"%s\" refused: %s", bad[i],
                       err ? err->msg : "(no message)");
                moat_error_free(err);
                err = NULL;
        }
        is_int(moat_store_open(root, false, &s, NULL), 0, "open for digest checks");
        is_int(moat_store_ingest_begin(s, "sha256:XYZ", -1, &in, NULL), -EINVAL, "ingest with a bad digest refused");
        is_int(moat_store_open_blob(s, "sha256:../../oci-layout", false, &fd, NULL), -EINVAL,
               "open_blob with a path digest refused");
        is_int(moat_store_has_blob(s, "md5:x"), -EINVAL, "has_blob with a bad digest refused");
        is_int(moat_store_remove_blob(s, "sha256:XYZ", NULL), -EINVAL, "remove_blob with a bad digest refused");
}

int main(void)
{
        char cmd[512];

        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        snprintf(root, sizeof(root), "%s/store", tmpdir);

        test_layout_and_roundtrip();
        test_mismatch();
        test_verify();
        test_leftover();
        test_concurrent();
        test_digests();

        snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
        if (system(cmd) != 0) {
        }
        return tap_done();
}
