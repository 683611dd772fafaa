/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of src/base: the error contract (set/setx/wrap and who wins),
 * strict number parsing at its edges, and the bounded and atomic file I/O
 * that every state file and config read goes through.
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "tap.h"

static void test_error(void)
{
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_error_set(&e, -ENOENT, "opening %s", "x"), -ENOENT, "set returns -errno");
                is_str(e ? e->msg : NULL, "opening x: No such file or directory", "set appends strerror");
                is_int(e ? e->errnum : 0, ENOENT, "set stores a positive errnum");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_error_setx(&e, EINVAL, "root.path: %s", "required"), -EINVAL, "setx takes a positive errno");
                is_str(e ? e->msg : NULL, "root.path: required", "setx adds nothing");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_error_setx(&e, -EINVAL, "first"), -EINVAL, "first error");
                is_int(moat_error_set(&e, -EPERM, "second"), -EPERM, "a later set still returns its own errno");
                is_str(e ? e->msg : NULL, "first", "the first error is kept");
                is_int(e ? e->errnum : 0, EINVAL, "the first errnum is kept");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_error_setx(&e, -EINVAL, "process.cwd: bad"), -EINVAL, "inner error");
                is_int(moat_error_wrap(&e, -EINVAL, "%s", "config.json"), -EINVAL, "wrap returns -errno");
                is_int(moat_error_wrap(&e, EINVAL, "bundle %s", "b"), -EINVAL, "wrap takes a positive errno");
                is_str(e ? e->msg : NULL, "bundle b: config.json: process.cwd: bad", "wrap prefixes, outermost first");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_error_wrap(&e, -EACCES, "mkdir %s", "/run/x"), -EACCES, "wrap without an error");
                is_str(e ? e->msg : NULL, "mkdir /run/x: Permission denied", "wrap without an error acts like set");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(moat_error_set(&e, 0, "weird"), -EIO, "errno 0 becomes EIO");
                is_int(e ? e->errnum : 0, EIO, "errnum EIO");
        }
        is_int(moat_error_set(NULL, -ENOMEM, "x"), -ENOMEM, "NULL reterr: set only returns");
        is_int(moat_error_setx(NULL, ENOSPC, "x"), -ENOSPC, "NULL reterr: setx only returns");
        is_int(moat_error_wrap(NULL, -EBUSY, "x"), -EBUSY, "NULL reterr: wrap only returns");
        moat_error_free(NULL);
        ok(1, "moat_error_free(NULL) is fine");
}

static void test_parse(void)
{
        uint64_t u = 0;
        int64_t i = 0;
        uint32_t u32 = 0;
        int n = 0;

        ok(safe_atou64("0", &u) == 0 && u == 0, "atou64 0");
        ok(safe_atou64("18446744073709551615", &u) == 0 && u == UINT64_MAX, "atou64 max");
        is_int(safe_atou64("18446744073709551616", &u), -ERANGE, "atou64 max+1");
        is_int(safe_atou64("-1", &u), -EINVAL, "atou64 refuses a minus sign");
        is_int(safe_atou64("+1", &u), -EINVAL, "atou64 refuses a plus sign");
        is_int(safe_atou64(" 1", &u), -EINVAL, "atou64 refuses leading space");
        is_int(safe_atou64("1 ", &u), -EINVAL, "atou64 refuses trailing space");
        is_int(safe_atou64("", &u), -EINVAL, "atou64 refuses empty");
        is_int(safe_atou64(NULL, &u), -EINVAL, "atou64 refuses NULL");
        is_int(safe_atou64("0x10", &u), -EINVAL, "atou64 refuses hex");
        u = 7;
        is_int(safe_atou64("12abc", &u), -EINVAL, "atou64 refuses trailing junk");
        is_int(u, 7, "failed parse leaves the output alone");

        ok(safe_atoi64("-9223372036854775808", &i) == 0 && i == INT64_MIN, "atoi64 min");
        ok(safe_atoi64("9223372036854775807", &i) == 0 && i == INT64_MAX, "atoi64 max");
        is_int(safe_atoi64("9223372036854775808", &i), -ERANGE, "atoi64 max+1");
        is_int(safe_atoi64("-9223372036854775809", &i), -ERANGE, "atoi64 min-1");
        is_int(safe_atoi64(" -1", &i), -EINVAL, "atoi64 refuses leading space");
        is_int(safe_atoi64("-", &i), -EINVAL, "atoi64 refuses a lone sign");
        is_int(safe_atoi64("", &i), -EINVAL, "atoi64 refuses empty");

        ok(safe_atou32("4294967295", &u32) == 0 && u32 == UINT32_MAX, "atou32 max");
        is_int(safe_atou32("4294967296", &u32), -ERANGE, "atou32 max+1");
        is_int(safe_atou32("-1", &u32), -EINVAL, "atou32 refuses negative");

        ok(safe_atoi("2147483647", &n) == 0 && n == INT32_MAX, "atoi max");
        ok(safe_atoi("-2147483648", &n) == 0 && n == INT32_MIN, "atoi min");
        is_int(safe_atoi("2147483648", &n), -ERANGE, "atoi max+1");
        is_int(safe_atoi("-2147483649", &n), -ERANGE, "atoi min-1");
        is_int(safe_atoi("abc", &n), -EINVAL, "atoi refuses letters");
        is_int(safe_atoi("1.5", &n), -EINVAL, "atoi refuses a fraction");
        ok(safe_atoi("-0", &n) == 0 && n == 0, "atoi -0");
}

static int write_n(int dfd, const char *name, size_t n)
{
        _cleanup_free_ char *buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++)
                buf[k] = (char) ('a' + k % 26);
        return write_file_atomic_at(dfd, name, buf, n, 0644);
}

static size_t count_entries(const char *dir)
{
        _cleanup_closedir_ DIR *d = opendir(dir);
        size_t n = 0;

        for (struct dirent *de; d && (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        return n;
}

static void test_fileio(void)
{
        char dir[] = "/tmp/test-base.XXXXXX";
        char *buf = NULL;
        size_t size = 99;
        struct stat st;
        int r;

        if (!mkdtemp(dir)) {
                ok(0, "mkdtemp");
                return;
        }
        _cleanup_close_ int dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        ok(dfd >= 0, "open temp dir");

        /* read bounds */
        is_int(write_n(dfd, "empty", 0), 0, "write empty file");
        r = read_full_file_at(dfd, "empty", 0, &buf, &size);
        ok(r == 0 && size == 0 && buf && buf[0] == '\0', "empty file with max 0: empty, NUL-terminated");
        free(buf);
        buf = NULL;

        is_int(write_n(dfd, "one", 1), 0, "write 1-byte file");
        is_int(read_full_file_at(dfd, "one", 0, &buf, &size), -EFBIG, "1 byte with max 0: EFBIG");
        ok(buf == NULL, "no buffer on failure");

        is_int(write_n(dfd, "page", 4096), 0, "write 4096-byte file");
        r = read_full_file_at(dfd, "page", 4096, &buf, &size);
        ok(r == 0 && size == 4096 && buf[4096] == '\0', "exactly max bytes is fine");
        free(buf);
        buf = NULL;
        is_int(read_full_file_at(dfd, "page", 4095, &buf, &size), -EFBIG, "max-1 is too small");
        is_int(read_full_file_at(dfd, "page", 10, &buf, &size), -EFBIG, "a small max below the first read");

        is_int(write_n(dfd, "big", 100000), 0, "write 100000-byte file");
        r = read_full_file_at(dfd, "big", 100000, &buf, &size);
        ok(r == 0 && size == 100000, "read 100000 bytes with max 100000");
        ok(buf && buf[99999] == (char) ('a' + 99999 % 26) && buf[100000] == '\0', "content and NUL at the end");
        free(buf);
        buf = NULL;
        is_int(read_full_file_at(dfd, "big", 99999, &buf, &size), -EFBIG, "100000 bytes with max 99999: EFBIG");
        is_int(read_full_file_at(dfd, "big", 1u << 30, &buf, NULL), 0, "ret_size may be NULL");
        free(buf);
        buf = NULL;
        is_int(read_full_file_at(dfd, "nope", 10, &buf, &size), -ENOENT, "missing file: ENOENT");

        /* atomic replace */
        is_int(write_file_atomic_at(dfd, "state.json", "{\"a\":1}", 7, 0600), 0, "atomic write");
        is_int(write_file_atomic_at(dfd, "state.json", "{}", 2, 0600), 0, "atomic replace");
        r = read_full_file_at(dfd, "state.json", 100, &buf, &size);
        ok(r == 0 && size == 2 && streq(buf, "{}"), "replaced content, not appended");
        free(buf);
        buf = NULL;
        r = fstatat(dfd, "state.json", &st, 0);
        ok(r == 0 && (st.st_mode & 07777) == 0600, "mode 0600");
        is_int(count_entries(dir), 5, "no temporary files left behind");
        is_int(write_file_atomic_at(-EBADF, "x", "1", 1, 0600), -EBADF, "bad dir fd: EBADF");
        char longname[300];
        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        is_int(write_file_atomic_at(dfd, longname, "1", 1, 0600), -ENAMETOOLONG, "a name too long for a temp name");

        /* write_string_file_at writes into an existing file only */
        is_int(write_string_file_at(dfd, "absent", "1"), -ENOENT, "write_string_file_at does not create");
        is_int(write_string_file_at(dfd, "one", "z"), 0, "write_string_file_at");
        r = read_full_file_at(dfd, "one", 10, &buf, &size);
        ok(r == 0 && streq(buf, "z"), "content written");
        free(buf);
        buf = NULL;

        static const char *const names[] = { "empty", "one", "page", "big", "state.json" };
        bool clean = true;
        for (size_t k = 0; k < ELEMENTSOF(names); k++)
                if (unlinkat(dfd, names[k], 0) < 0)
                        clean = false;
        if (rmdir(dir) < 0)
                clean = false;
        ok(clean, "clean up");
}

int main(void)
{
        test_error();
        test_parse();
        test_fileio();
        return tap_done();
}
