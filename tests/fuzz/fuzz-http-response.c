/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * libFuzzer entry point for the CLI's HTTP client (cli/http-conn.c): any
 * bytes, served as the answer to a GET, HEAD or upgrade request over a
 * real unix socket in pieces of a size the input picks, must end in a
 * complete (or upgraded) response or in an error with a message; never a
 * crash, a leak or a hang. The body handed out must add up to what the
 * response says it delivered, and an upgrade's leftover must come from
 * the input.
 */

#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/http-conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[108];
static int listen_fd = -1;

static int count_body(const struct moat_http_response *resp, const char *d, size_t len, void *userdata,
                      struct moat_error **reterr)
{
        *(uint64_t *) userdata += len;
        return 0;
}

static char dir[] = "/tmp/moat-fuzz-http-XXXXXX";

static void cleanup(void)
{
        (void) unlink(path);
        (void) rmdir(dir);
}

static void setup(void)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (!mkdtemp(dir))
                __builtin_trap();
        snprintf(path, sizeof(path), "%s/s", dir);
        memcpy(sa.sun_path, path, strlen(path));
        listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(listen_fd, 4) < 0)
                __builtin_trap();
        atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const methods[] = { "GET", "HEAD", "POST", "POST" };
        struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        uint64_t delivered = 0;
        int sfd, r;

        if (size < 1 || size > 256 * 1024)
                return 0;
        if (listen_fd < 0)
                setup();
        unsigned kind = data[0] & 3;
        size_t step = (data[0] >> 2) ? (size_t) (data[0] >> 2) * (data[0] >> 2) : SIZE_MAX;
        data++;
        size--;

        if (moat_http_conn_new(path, &c, NULL) < 0)
                __builtin_trap();
        struct moat_http_request req = {
                .method = methods[kind],
                .target = "/v1.51/containers/x/attach?stream=1",
                .upgrade = kind == 3 ? "tcp" : NULL,
                .on_body = count_body,
                .userdata = &delivered,
        };
        if (moat_http_conn_request(c, &req, NULL) < 0)
                __builtin_trap();
        sfd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (sfd < 0)
                __builtin_trap();

        size_t off = 0;
        bool shut = false;
        for (;;) {
                if (off < size) {
                        size_t n = size - off < step ? size - off : step;
                        ssize_t k = send(sfd, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (k > 0)
                                off += (size_t) k;
                } else if (!shut) {
                        shutdown(sfd, SHUT_WR);
                        shut = true;
                }
                r = moat_http_conn_feed(c, &err);
                if (r != 0)
                        break;
        }
        const struct moat_http_response *resp = moat_http_conn_response(c);
        if (r < 0) {
                if (!err || !err->msg || moat_http_conn_fd(c) >= 0)
                        __builtin_trap();
                moat_error_free(err);
        } else {
                if (err || !resp->complete || resp->status < 100 || resp->status > 999)
                        __builtin_trap();
                if (resp->upgraded) {
                        int fd = -1;
                        char *left = NULL;
                        size_t left_len = 0;
                        if (kind != 3 || moat_http_conn_take(c, &fd, &left, &left_len, NULL) < 0 || fd < 0 ||
                            (left_len && !memmem(data, size, left, left_len)))
                                __builtin_trap();
                        free(left);
                        close(fd);
                }
        }
        if (delivered != resp->body_len || delivered > size)
                __builtin_trap();
        moat_http_conn_free(c);
        close(sfd);
        return 0;
}
