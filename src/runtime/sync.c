/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* The runtime's message channel to processes it sets up (see sync.h). */

#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "runtime/sync.h"

int moat_sync_send(int fd, uint32_t type, int errnum, const char *payload, int pass_fd)
{
        struct moat_sync_header h = { .type = type, .errnum = errnum };
        size_t plen = payload ? strnlen(payload, MOAT_SYNC_MSG_MAX) : 0;
        struct iovec iov[2] = {
                { .iov_base = &h, .iov_len = sizeof(h) },
                { .iov_base = (void *) (payload ? payload : ""), .iov_len = plen },
        };
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control = {};
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

        if (pass_fd >= 0) {
                msg.msg_control = control.buf;
                msg.msg_controllen = sizeof(control.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        for (;;) {
                if (sendmsg(fd, &msg, MSG_NOSIGNAL) >= 0)
                        return 0;
                if (errno != EINTR)
                        return -errno;
        }
}

int moat_sync_recv(int fd, struct moat_sync_header *ret_h, char **ret_payload, int *ret_fd)
{
        _cleanup_free_ char *buf = malloc(sizeof(struct moat_sync_header) + MOAT_SYNC_MSG_MAX + 1);
        union {
                char buf[CMSG_SPACE(sizeof(int))];
                struct cmsghdr align;
        } control;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(struct moat_sync_header) + MOAT_SYNC_MSG_MAX };
        struct msghdr msg = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        int passed_fd = -EBADF;
        ssize_t n;

        if (ret_fd)
                *ret_fd = -EBADF;
        if (!buf)
                return -ENOMEM;
        do
                n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        safe_close(passed_fd);
                        memcpy(&passed_fd, CMSG_DATA(c), sizeof(int));
                }
        if (n == 0) {
                safe_close(passed_fd);
                return -EPIPE;
        }
        if ((size_t) n < sizeof(struct moat_sync_header) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
                safe_close(passed_fd);
                return -EBADMSG;
        }
        memcpy(ret_h, buf, sizeof(*ret_h));
        if (ret_payload) {
                size_t plen = (size_t) n - sizeof(struct moat_sync_header);
                char *p = malloc(plen + 1);
                if (!p) {
                        safe_close(passed_fd);
                        return -ENOMEM;
                }
                memcpy(p, buf + sizeof(struct moat_sync_header), plen);
                p[plen] = '\0';
                *ret_payload = p;
        }
        if (ret_fd)
                *ret_fd = passed_fd;
        else
                safe_close(passed_fd);
        return 0;
}
