/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"

int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size)
{
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);

        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap > max)
                                return -EFBIG;
                        size_t ncap = cap * 2;
                        if (ncap > max + 1)
                                ncap = max + 1;
                        char *n = realloc(buf, ncap + 1);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        cap = ncap;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = '\0';
        if (ret_size)
                *ret_size = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int read_full_file_at(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_size)
{
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return read_full_fd(fd, max, ret, ret_size);
}

int write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

int write_string_file_at(int dir_fd, const char *path, const char *s)
{
        _cleanup_close_ int fd = openat(dir_fd, path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return write_all(fd, s, strlen(s));
}

static int write_file_via_temp(int dir_fd, const char *name, const void *buf, size_t len, mode_t mode, bool sync)
{
        char tmp[256];
        uint64_t nonce = 0;
        int r;

        /* An unpredictable name, created exclusively and never followed: a
         * writer of the directory cannot pre-plant the temp file (a hard
         * link to something precious would otherwise be truncated). */
        if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
                nonce ^= (uint64_t) getpid() << 32 ^ (uint64_t) (uintptr_t) &nonce;
        if (snprintf(tmp, sizeof(tmp), ".%s.%016llx.tmp", name, (unsigned long long) nonce) >= (int) sizeof(tmp))
                return -ENAMETOOLONG;

        _cleanup_close_ int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = write_all(fd, buf, len);
        if (r >= 0 && sync && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(dir_fd, tmp, 0);
        return r;
}

int write_file_atomic_at(int dir_fd, const char *name, const void *buf, size_t len, mode_t mode)
{
        return write_file_via_temp(dir_fd, name, buf, len, mode, true);
}

int write_file_replace_at(int dir_fd, const char *name, const void *buf, size_t len, mode_t mode)
{
        return write_file_via_temp(dir_fd, name, buf, len, mode, false);
}

int moat_openat2(int dir_fd, const char *path, const struct open_how *how)
{
        for (int attempt = 0; attempt < 32; attempt++) {
                long fd = syscall(SYS_openat2, dir_fd, path, how, sizeof(*how));
                if (fd >= 0)
                        return (int) fd;
                if (errno != EAGAIN)
                        return -errno;
        }
        return -EAGAIN;
}
