/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of cli/http-conn.c against canned responses. A server thread
 * on a unix socket in a temp dir reads each request with http-parser and
 * answers from a script (for keep-alive, uploads, upgrades, closes); the
 * split tests serve from the test's own thread so that every byte
 * boundary of a response is a separate read on the client's side.
 */

#include <fcntl.h>
#include <http_parser.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/http-conn.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-http-XXXXXX";
static char sock_path[256];

/* ---- the scripted server ------------------------------------------- */

enum after {
        KEEP,                   /* keep the connection for the next exchange */
        CLOSE,                  /* close it after answering */
};

struct exchange {
        const char *response;
        size_t response_len;            /* 0: strlen */
        bool new_conn;                  /* accept a connection first */
        enum after after;
        bool head_only;                 /* answer once the head is read, close (an early answer) */
        bool close_unanswered;          /* wait for the request, close without reading it */
        bool upgrade_echo;              /* after answering: read until EOF, answer "got:<bytes>", close */
};

#define MAX_EX 8

struct server {
        int listen_fd;
        const struct exchange *ex;
        size_t n_ex;
        int accepted;
        int n_req;
        char head[MAX_EX][2048];        /* each request's head as received */
        uint64_t body_len[MAX_EX];
        uint32_t body_sum[MAX_EX];
        char body[MAX_EX][256];         /* its first bytes */
        char echo[256];
        pthread_t thread;
};

struct req_state {
        struct server *s;
        int i;
        bool head_done, done;
};

static int srv_on_headers_complete(http_parser *p)
{
        struct req_state *st = p->data;
        st->head_done = true;
        if (st->s->ex[st->i].head_only)
                http_parser_pause(p, 1);
        return 0;
}

static int srv_on_body(http_parser *p, const char *at, size_t len)
{
        struct req_state *st = p->data;
        struct server *s = st->s;
        for (size_t k = 0; k < len; k++) {
                if (s->body_len[st->i] < sizeof(s->body[0]) - 1)
                        s->body[st->i][s->body_len[st->i]] = at[k];
                s->body_len[st->i]++;
                s->body_sum[st->i] = s->body_sum[st->i] * 31 + (unsigned char) at[k];
        }
        return 0;
}

static int srv_on_message_complete(http_parser *p)
{
        struct req_state *st = p->data;
        st->done = true;
        http_parser_pause(p, 1);
        return 0;
}

static const http_parser_settings srv_settings = {
        .on_headers_complete = srv_on_headers_complete,
        .on_body = srv_on_body,
        .on_message_complete = srv_on_message_complete,
};

static void write_all(int fd, const char *p, size_t len)
{
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n <= 0)
                        return;
                p += n;
                len -= (size_t) n;
        }
}

static void *server_main(void *arg)
{
        struct server *s = arg;
        int fd = -1;
        static char buf[256 * 1024];

        for (size_t i = 0; i < s->n_ex; i++) {
                const struct exchange *e = &s->ex[i];
                if (e->new_conn || fd < 0) {
                        if (fd >= 0)
                                close(fd);
                        fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                        if (fd < 0)
                                break;
                        s->accepted++;
                }
                if (e->close_unanswered) {
                        struct pollfd pfd = { .fd = fd, .events = POLLIN };
                        (void) poll(&pfd, 1, -1);
                        close(fd);
                        fd = -1;
                        continue;
                }
                http_parser p;
                struct req_state st = { .s = s, .i = (int) i };
                size_t head_len = 0;
                http_parser_init(&p, HTTP_REQUEST);
                p.data = &st;
                while (!st.done && !(e->head_only && st.head_done)) {
                        ssize_t n = read(fd, buf, sizeof(buf));
                        if (n <= 0)
                                break;
                        if (!st.head_done) {
                                size_t k = (size_t) n < sizeof(s->head[0]) - 1 - head_len ? (size_t) n
                                                                                         : sizeof(s->head[0]) - 1 - head_len;
                                memcpy(s->head[i] + head_len, buf, k);
                                head_len += k;
                                char *end = strstr(s->head[i], "\r\n\r\n");
                                if (end)
                                        end[4] = 0;
                        }
                        (void) http_parser_execute(&p, &srv_settings, buf, (size_t) n);
                        if (HTTP_PARSER_ERRNO(&p) != HPE_OK && HTTP_PARSER_ERRNO(&p) != HPE_PAUSED)
                                break;
                }
                s->n_req++;
                write_all(fd, e->response, e->response_len ? e->response_len : strlen(e->response));
                if (e->upgrade_echo) {
                        size_t got = 0;
                        for (;;) {
                                ssize_t n = read(fd, s->echo + got, sizeof(s->echo) - 1 - got);
                                if (n <= 0)
                                        break;
                                got += (size_t) n;
                        }
                        char reply[300];
                        int l = snprintf(reply, sizeof(reply), "got:%s", s->echo);
                        write_all(fd, reply, (size_t) l);
                        close(fd);
                        fd = -1;
                } else if (e->head_only || e->after == CLOSE) {
                        close(fd);
                        fd = -1;
                }
        }
        if (fd >= 0) {
                /* hold the connection until the client is done with it */
                char b;
                while (read(fd, &b, 1) > 0)
                        ;
                close(fd);
        }
        return NULL;
}

static int listen_at(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        (void) unlink(path);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static void server_start(struct server *s, const struct exchange *ex, size_t n)
{
        memset(s, 0, sizeof(*s));
        s->listen_fd = listen_at(sock_path);
        s->ex = ex;
        s->n_ex = n;
        pthread_create(&s->thread, NULL, server_main, s);
}

static void server_stop(struct server *s)
{
        pthread_join(s->thread, NULL);
        close(s->listen_fd);
}

/* ---- the client side ------------------------------------------------- */

struct body {
        char data[1024 * 1024];
        size_t len;
        int fail;               /* return this from the callback */
};

static int collect(const struct moat_http_response *resp, const char *data, size_t len, void *userdata,
                   struct moat_error **reterr)
{
        struct body *b = userdata;
        if (b->fail)
                return b->fail;
        if (b->len + len >= sizeof(b->data))
                return -EFBIG;
        memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = 0;
        return 0;
}

static struct body body;

static int do_request(struct moat_http_conn *c, const char *method, const char *target, const char *upgrade,
                      struct moat_error **err)
{
        static const char *const headers[] = { "User-Agent: moat-test", NULL };
        struct moat_http_request req = {
                .method = method,
                .target = target,
                .host = "api.moby.localhost",
                .headers = headers,
                .upgrade = upgrade,
                .on_body = collect,
                .userdata = &body,
        };
        memset(&body, 0, offsetof(struct body, fail));
        int r = moat_http_conn_request(c, &req, err);
        if (r < 0)
                return r;
        return moat_http_conn_wait(c, err);
}

static void error_clear(struct moat_error **err)
{
        moat_error_free(*err);
        *err = NULL;
}

static void test_content_length_keepalive(void)
{
        static const char json[] = "{\"Id\":\"abc\"}";
        static const struct exchange ex[] = {
                { .response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version:  1.51  \r\n"
                              "X-Empty:\r\nContent-Length: 12\r\n\r\n{\"Id\":\"abc\"}",
                  .new_conn = true },
                { .response = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 37\r\n\r\n"
                              "{\"message\":\"No such container: nope\"}" },
                { .response = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n" },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", .new_conn = true },
        };
        struct server s;
        _cleanup_http_conn_ struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        int r;

        server_start(&s, ex, ELEMENTSOF(ex));
        r = moat_http_conn_new(sock_path, &c, &err);
        is_int(r, 0, "new connection");

        r = do_request(c, "GET", "/v1.51/containers/abc/json", NULL, &err);
        is_int(r, 1, "GET with a Content-Length reply completes: %s", err ? err->msg : "");
        const struct moat_http_response *resp = moat_http_conn_response(c);
        is_int(resp->status, 200, "status 200");
        is_str(resp->reason, "OK", "reason phrase");
        is_str(moat_http_response_header(resp, "content-type"), "application/json", "Content-Type, any case");
        is_str(moat_http_response_header(resp, "Api-Version"), "1.51", "Api-Version, whitespace trimmed");
        is_str(moat_http_response_header(resp, "X-Empty"), "", "an empty field is kept, empty");
        is_str(moat_http_response_header(resp, "Content-Length"), "12", "Content-Length");
        is_int(resp->n_headers, 4, "all four fields stored");
        is_str(body.data, json, "the body");
        ok(resp->complete && resp->keep_alive, "complete, kept alive");

        r = do_request(c, "DELETE", "/v1.51/containers/nope", NULL, &err);
        is_int(r, 1, "a 404 completes: %s", err ? err->msg : "");
        is_int(moat_http_conn_response(c)->status, 404, "status 404");
        is_str(body.data, "{\"message\":\"No such container: nope\"}", "the JSON error body is delivered");

        struct moat_http_request post = {
                .method = "POST",
                .target = "/v1.51/containers/create?name=x",
                .headers = (const char *const[]) { "Content-Type: application/json", NULL },
                .body = "{\"Image\":\"busybox\"}",
                .body_len = 19,
        };
        r = moat_http_conn_request(c, &post, &err);
        is_int(r, 0, "POST with a body sent");
        r = moat_http_conn_wait(c, &err);
        is_int(r, 1, "204 completes without a body");
        ok(!moat_http_conn_response(c)->keep_alive, "Connection: close is honoured");

        r = do_request(c, "GET", "/_ping", NULL, &err);
        is_int(r, 1, "the next request opens a new connection: %s", err ? err->msg : "");
        is_str(body.data, "OK", "its body");
        moat_http_conn_free(TAKE_PTR(c));
        server_stop(&s);

        is_int(s.accepted, 2, "two connections for four requests (keep-alive, then Connection: close)");
        is_int(s.n_req, 4, "four requests served");
        ok(startswith(s.head[0], "GET /v1.51/containers/abc/json HTTP/1.1\r\nHost: api.moby.localhost\r\n"),
           "request line and Host first");
        ok(strstr(s.head[0], "\r\nUser-Agent: moat-test\r\n") && !strstr(s.head[0], "Content-Length"),
           "extra header sent, no Content-Length on a GET");
        ok(strstr(s.head[1], "DELETE /v1.51/containers/nope HTTP/1.1\r\n") != NULL, "DELETE sent");
        ok(strstr(s.head[2], "\r\nContent-Length: 19\r\n") && strstr(s.head[2], "\r\nContent-Type: application/json\r\n"),
           "POST: Content-Length and the caller's Content-Type");
        is_str(s.body[2], "{\"Image\":\"busybox\"}", "POST body received");
        is_str(s.head[3], "GET /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: moat-test\r\n\r\n",
               "exact request head");
}

/* Serve from this thread: accept once, then answer each request with resp
 * cut at every byte boundary, and one byte at a time. */
static void split_one(const char *name, const char *resp, const char *want_body)
{
        int lfd = listen_at(sock_path);
        _cleanup_http_conn_ struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        size_t len = strlen(resp);
        int sfd = -1, bad = 0, r;
        char req[4096];

        r = moat_http_conn_new(sock_path, &c, &err);
        for (size_t k = 0; k <= len + 1 && r >= 0; k++) {
                struct moat_http_request q = { .method = "GET", .target = "/events", .on_body = collect, .userdata = &body };
                memset(&body, 0, offsetof(struct body, fail));
                r = moat_http_conn_request(c, &q, &err);
                if (r < 0)
                        break;
                if (sfd < 0)
                        sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (read(sfd, req, sizeof(req)) <= 0)
                        bad++;
                if (moat_http_conn_feed(c, &err) != 0)
                        bad++;  /* nothing is there yet */
                if (k <= len) {
                        /* two pieces: [0, k) and [k, len) */
                        write_all(sfd, resp, k);
                        int a = moat_http_conn_feed(c, &err);
                        write_all(sfd, resp + k, len - k);
                        int b = k < len ? moat_http_conn_feed(c, &err) : a;
                        if (a != (k == len) || b != 1)
                                bad++;
                } else {
                        /* one byte at a time */
                        for (size_t i = 0; i < len; i++) {
                                write_all(sfd, resp + i, 1);
                                struct pollfd pfd = { .fd = moat_http_conn_fd(c), .events = POLLIN };
                                if (poll(&pfd, 1, 0) != 1)
                                        bad++;
                                int a = moat_http_conn_feed(c, &err);
                                if (a != (i == len - 1))
                                        bad++;
                        }
                }
                if (!streq(body.data, want_body) || moat_http_conn_response(c)->status != 200)
                        bad++;
        }
        is_int(r, 0, "%s: all requests sent: %s", name, err ? err->msg : "");
        is_int(bad, 0, "%s: complete exactly at the last byte, whatever the split, same body", name);
        moat_http_conn_free(TAKE_PTR(c));
        if (sfd >= 0)
                close(sfd);
        close(lfd);
        moat_error_free(err);
}

static void test_split(void)
{
        split_one("chunked",
                  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
                  "hello 0123456789");
        split_one("content-length", "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", "hello world");
        split_one("1xx then 200",
                  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                  "ok");
}

static void test_eof_and_head(void)
{
        static const struct exchange ex[] = {
                { .response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world", .new_conn = true,
                  .after = CLOSE },
                { .response = "HTTP/1.0 200 OK\r\n\r\nold", .new_conn = true, .after = CLOSE },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nApi-Version: 1.51\r\n\r\n", .new_conn = true },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc" },
        };
        struct server s;
        _cleanup_http_conn_ struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        int r;

        server_start(&s, ex, ELEMENTSOF(ex));
        r = moat_http_conn_new(sock_path, &c, &err);
        r = do_request(c, "GET", "/containers/x/logs", NULL, &err);
        is_int(r, 1, "a body until EOF completes at EOF: %s", err ? err->msg : "");
        is_str(body.data, "hello world", "the whole body");
        ok(!moat_http_conn_response(c)->keep_alive, "not kept alive");
        r = do_request(c, "GET", "/old", NULL, &err);
        is_int(r, 1, "HTTP/1.0 without a length: %s", err ? err->msg : "");
        is_str(body.data, "old", "its body");
        is_int(moat_http_conn_response(c)->version_minor, 0, "version 1.0");

        r = do_request(c, "HEAD", "/_ping", NULL, &err);
        is_int(r, 1, "HEAD completes after the head despite Content-Length: %s", err ? err->msg : "");
        is_str(moat_http_response_header(moat_http_conn_response(c), "Api-Version"), "1.51", "HEAD's headers");
        is_int(body.len, 0, "no body");
        r = do_request(c, "GET", "/x", NULL, &err);
        is_int(r, 1, "the next request on the same connection: %s", err ? err->msg : "");
        is_str(body.data, "abc", "reads its own body");
        moat_http_conn_free(TAKE_PTR(c));
        server_stop(&s);
        is_int(s.accepted, 3, "HEAD's connection was reused");
        moat_error_free(err);
}

static void test_upgrade(void)
{
        static const char frame[] = "\x01\0\0\0\0\0\0\x05hello";
        char resp101[512];
        int l = snprintf(resp101, sizeof(resp101),
                         "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                         "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
        memcpy(resp101 + l, frame, sizeof(frame) - 1);
        const struct exchange ex[] = {
                { .response = resp101, .response_len = (size_t) l + sizeof(frame) - 1, .new_conn = true,
                  .upgrade_echo = true },
                { .response = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nraw!",
                  .new_conn = true, .upgrade_echo = true },
                { .response = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 33\r\n\r\n"
                              "{\"message\":\"No such container\"}\r\n",
                  .new_conn = true },
                { .response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n" },
        };
        struct server s;
        _cleanup_http_conn_ struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        _cleanup_free_ char *left = NULL;
        size_t left_len = 0;
        int fd = -1, r;
        char buf[512];

        server_start(&s, ex, ELEMENTSOF(ex));
        r = moat_http_conn_new(sock_path, &c, &err);
        r = do_request(c, "POST", "/v1.51/containers/x/attach?stream=1&stdout=1", "tcp", &err);
        is_int(r, 1, "101 ends the exchange: %s", err ? err->msg : "");
        const struct moat_http_response *resp = moat_http_conn_response(c);
        ok(resp->status == 101 && resp->upgraded, "status 101, upgraded");
        is_str(moat_http_response_header(resp, "Content-Type"), "application/vnd.docker.raw-stream", "Content-Type");
        is_int(body.len, 0, "no body handed to the callback");
        r = moat_http_conn_take(c, &fd, &left, &left_len, &err);
        is_int(r, 0, "take the socket");
        ok(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "the socket is O_CLOEXEC");
        ok(left_len == sizeof(frame) - 1 && memcmp(left, frame, left_len) == 0,
           "the bytes after the head are kept (%zu)", left_len);
        write_all(fd, "ping", 4);
        is_int(shutdown(fd, SHUT_WR), 0, "half-close");
        size_t got = 0;
        for (ssize_t n; (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0;)
                got += (size_t) n;
        buf[got] = 0;
        is_str(buf, "got:ping", "both directions work after the hand-over, EOF seen by the server");
        close(fd);
        free(TAKE_PTR(left));

        r = do_request(c, "POST", "/v1.51/exec/e/start", "tcp", &err);
        is_int(r, 1, "200 with a raw stream to an upgrade request: %s", err ? err->msg : "");
        ok(moat_http_conn_response(c)->upgraded, "upgraded");
        r = moat_http_conn_take(c, &fd, &left, &left_len, &err);
        ok(r == 0 && left_len == 4 && memcmp(left, "raw!", 4) == 0, "its bytes after the head");
        shutdown(fd, SHUT_WR);
        close(fd);
        free(TAKE_PTR(left));

        r = do_request(c, "POST", "/v1.51/containers/nope/attach", "tcp", &err);
        is_int(r, 1, "an error answer to an upgrade request is a normal response");
        resp = moat_http_conn_response(c);
        ok(resp->status == 404 && !resp->upgraded, "404, not upgraded");
        is_str(body.data, "{\"message\":\"No such container\"}\r\n", "the error body");
        r = moat_http_conn_take(c, &fd, &left, &left_len, &err);
        is_int(r, -EINVAL, "nothing to take");
        error_clear(&err);

        r = do_request(c, "POST", "/v1.51/containers/x/wait", NULL, &err);
        is_int(r, -EPROTO, "101 to a request that did not ask for it is refused");
        ok(err && strstr(err->msg, "101"), "message: %s", err ? err->msg : "");
        error_clear(&err);
        moat_http_conn_free(TAKE_PTR(c));
        server_stop(&s);
}

static void test_refused(void)
{
        static char big[MOAT_HTTP_HEAD_MAX + 4096], many[8192];
        size_t o = (size_t) snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nX-Big: ");
        memset(big + o, 'a', MOAT_HTTP_HEAD_MAX);
        strcpy(big + o + MOAT_HTTP_HEAD_MAX, "\r\nContent-Length: 0\r\n\r\n");
        o = (size_t) snprintf(many, sizeof(many), "HTTP/1.1 200 OK\r\n");
        for (unsigned i = 0; i <= MOAT_HTTP_MAX_HEADERS; i++)
                o += (size_t) snprintf(many + o, sizeof(many) - o, "X-%u: 1\r\n", i);
        strcpy(many + o, "\r\n");
        const struct {
                const char *response;
                int want;
                const char *msg;
        } cases[] = {
                { big, -E2BIG, "larger than 65536 bytes" },
                { many, -E2BIG, "more than 128 header fields" },
                { "HTTX/1.1 200 OK\r\n\r\n", -EPROTO, "not an HTTP/1.x response from " },
                { "HTTP/1.1 2x0 OK\r\n\r\n", -EPROTO, "(it starts \"HTTP/1.1 2x0 OK\\r\\n\\r\\n\")" },
                { "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", -EPROTO, "fewer than three digits" },
                { "\x16\x03\x01\x02\x01", -EPROTO, "(it starts \"\\x16\\x03\\x01\\x02\\x01\")" },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", -EPROTO, "malformed response body" },
                { "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", -EPROTO, "invalid response head" },
                { "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", -ECONNRESET, "in the middle of the response" },
                { "HTTP/1.1 200 OK\r\nContent-Le", -ECONNRESET, "in the middle of the response's head" },
                { "", -ECONNRESET, "closed the connection before answering" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct exchange ex[] = { { .response = cases[i].response, .new_conn = true, .after = CLOSE } };
                struct server s;
                _cleanup_http_conn_ struct moat_http_conn *c = NULL;
                struct moat_error *err = NULL;
                server_start(&s, ex, 1);
                int r = moat_http_conn_new(sock_path, &c, &err);
                r = do_request(c, "GET", "/version", NULL, &err);
                is_int(r, cases[i].want, "refused: case %zu", i);
                ok(err && strstr(err->msg, cases[i].msg) && strstr(err->msg, "GET /version"),
                   "message names the request and says \"%s\": %s", cases[i].msg, err ? err->msg : "");
                ok(moat_http_conn_fd(c) < 0, "the connection is dropped");
                moat_error_free(err);
                moat_http_conn_free(TAKE_PTR(c));
                server_stop(&s);
        }
}

/* ---- uploads ------------------------------------------------------------ */

struct source {
        uint64_t left;
        uint32_t sum;
        uint64_t sent;
        int fail_at;            /* -errno once this many bytes are out (0: never) */
};

static ssize_t source_read(char *buf, size_t len, void *userdata)
{
        struct source *s = userdata;
        if (s->fail_at && s->sent >= (uint64_t) s->fail_at)
                return -EIO;
        size_t n = len < 7777 ? len : 7777;
        if (n > s->left)
                n = (size_t) s->left;
        for (size_t i = 0; i < n; i++) {
                buf[i] = (char) ('a' + (s->sent + i) % 26);
                s->sum = s->sum * 31 + (unsigned char) buf[i];
        }
        s->left -= n;
        s->sent += n;
        return (ssize_t) n;
}

static void test_upload(void)
{
        static const struct exchange ex[] = {
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .new_conn = true },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .after = CLOSE },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .new_conn = true, .after = CLOSE },
                { .response = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n"
                              "{\"message\":\"bad tar\"}",
                  .new_conn = true, .head_only = true },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .new_conn = true },
        };
        struct server s;
        _cleanup_http_conn_ struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        struct source src = { .left = 3 * 1024 * 1024 + 5 };
        int r;

        server_start(&s, ex, ELEMENTSOF(ex));
        r = moat_http_conn_new(sock_path, &c, &err);
        struct moat_http_request q = {
                .method = "POST",
                .target = "/v1.51/images/load",
                .headers = (const char *const[]) { "Content-Type: application/x-tar", NULL },
                .source = source_read,
                .source_data = &src,
                .source_length = -1,
                .on_body = collect,
                .userdata = &body,
        };
        memset(&body, 0, offsetof(struct body, fail));
        r = moat_http_conn_request(c, &q, &err);
        is_int(r, 0, "chunked upload of 3 MiB sent: %s", err ? err->msg : "");
        r = moat_http_conn_wait(c, &err);
        is_int(r, 1, "answered");

        struct source src2 = { .left = 100000 };
        q.source_data = &src2;
        q.source_length = 100000;
        r = moat_http_conn_request(c, &q, &err);
        is_int(r, 0, "upload of a known length on the same connection");
        r = moat_http_conn_wait(c, &err);
        is_int(r, 1, "answered");

        struct source src3 = { .left = 10 };
        q.source_data = &src3;
        q.source_length = 11;
        r = moat_http_conn_request(c, &q, &err);
        is_int(r, -EPIPE, "a source shorter than its length is an error");
        ok(err && strstr(err->msg, "1 bytes short of its length 11"), "message: %s", err ? err->msg : "");
        error_clear(&err);
        ok(moat_http_conn_fd(c) < 0, "its connection is dropped");

        struct source src4 = { .left = 1000000, .fail_at = 50000 };
        q.source_data = &src4;
        q.source_length = -1;
        r = moat_http_conn_request(c, &q, &err);
        is_int(r, -EIO, "a failing source aborts the request");
        error_clear(&err);

        struct source src5 = { .left = 64 * 1024 * 1024 };
        q.source_data = &src5;
        memset(&body, 0, offsetof(struct body, fail));
        r = moat_http_conn_request(c, &q, &err);
        is_int(r, 0, "an early answer ends the upload without an error: %s", err ? err->msg : "");
        ok(src5.sent < 64 * 1024 * 1024, "not all of the body was sent (%" PRIu64 ")", src5.sent);
        r = moat_http_conn_wait(c, &err);
        is_int(r, 1, "the early answer is read: %s", err ? err->msg : "");
        is_int(moat_http_conn_response(c)->status, 400, "its status");
        is_str(body.data, "{\"message\":\"bad tar\"}", "its body");
        ok(!moat_http_conn_response(c)->keep_alive, "not kept alive");

        r = do_request(c, "GET", "/_ping", NULL, &err);
        is_int(r, 1, "a request after all that: %s", err ? err->msg : "");
        moat_http_conn_free(TAKE_PTR(c));
        server_stop(&s);

        is_int(s.body_len[0], 3 * 1024 * 1024 + 5, "chunked body length at the server");
        is_int(s.body_sum[0], src.sum, "chunked body content at the server");
        ok(strstr(s.head[0], "\r\nTransfer-Encoding: chunked\r\n") != NULL, "Transfer-Encoding: chunked");
        is_int(s.body_len[1], 100000, "known-length body at the server");
        is_int(s.body_sum[1], src2.sum, "its content");
        ok(strstr(s.head[1], "\r\nContent-Length: 100000\r\n") != NULL, "Content-Length sent");
        is_int(s.accepted, 4, "connections: upload + known length, short source (closed), early answer, last");
}

/* ---- closed connections and retries ------------------------------------- */

static void test_reconnect(void)
{
        static const struct exchange first[] = {
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", .new_conn = true, .after = CLOSE },
        };
        static const struct exchange second[] = {
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2", .new_conn = true },
                { .close_unanswered = true },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n3", .new_conn = true },
        };
        struct server s;
        _cleanup_http_conn_ struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        int r;

        server_start(&s, first, ELEMENTSOF(first));
        r = moat_http_conn_new(sock_path, &c, &err);
        r = do_request(c, "GET", "/a", NULL, &err);
        is_int(r, 1, "first answer");
        ok(moat_http_conn_response(c)->keep_alive, "announced as kept alive");
        server_stop(&s);        /* the server has closed it while idle */

        server_start(&s, second, ELEMENTSOF(second));
        r = do_request(c, "GET", "/b", NULL, &err);
        is_int(r, 1, "a closed idle connection is replaced: %s", err ? err->msg : "");
        is_str(body.data, "2", "answer on the new connection");
        r = do_request(c, "POST", "/c", NULL, &err);
        is_int(r, 1, "a close racing the request: sent again: %s", err ? err->msg : "");
        is_str(body.data, "3", "answer on the third connection");
        moat_http_conn_free(TAKE_PTR(c));
        server_stop(&s);
        is_int(s.accepted, 2, "two connections");
        ok(strstr(s.head[2], "POST /c HTTP/1.1\r\n") && strstr(s.head[2], "Content-Length: 0\r\n"),
           "the resent request");
}

static void test_callback_error(void)
{
        static const struct exchange ex[] = {
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", .new_conn = true },
                { .response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .new_conn = true },
        };
        struct server s;
        _cleanup_http_conn_ struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        int r;

        server_start(&s, ex, ELEMENTSOF(ex));
        r = moat_http_conn_new(sock_path, &c, &err);
        body.fail = -ENOSPC;
        r = do_request(c, "GET", "/containers/x/export", NULL, &err);
        body.fail = 0;
        is_int(r, -ENOSPC, "the body callback's error is returned");
        ok(err && strstr(err->msg, "GET /containers/x/export"), "message: %s", err ? err->msg : "");
        error_clear(&err);
        r = do_request(c, "GET", "/_ping", NULL, &err);
        is_int(r, 1, "the next request works on a new connection");
        is_str(body.data, "ok", "its body");
        moat_http_conn_free(TAKE_PTR(c));
        server_stop(&s);
}

static void test_connect_and_validate(void)
{
        _cleanup_http_conn_ struct moat_http_conn *c = NULL;
        struct moat_error *err = NULL;
        char path[512];
        int r;

        snprintf(path, sizeof(path), "%s/missing.sock", tmpdir);
        r = moat_http_conn_new(path, &c, &err);
        r = moat_http_conn_connect(c, &err);
        is_int(r, -ENOENT, "no socket: ENOENT");
        ok(err && strstr(err->msg, path), "message names the path: %s", err ? err->msg : "");
        error_clear(&err);
        moat_http_conn_free(TAKE_PTR(c));

        snprintf(path, sizeof(path), "%s/dead.sock", tmpdir);
        close(listen_at(path));
        r = moat_http_conn_new(path, &c, &err);
        r = do_request(c, "GET", "/_ping", NULL, &err);
        is_int(r, -ECONNREFUSED, "a socket nobody listens on: ECONNREFUSED");
        error_clear(&err);

        const struct {
                const char *method, *target, *header;
        } bad[] = {
                { "GE T", "/x", NULL },
                { "GET", "/x\r\nEvil: 1", NULL },
                { "GET", "x", NULL },
                { "GET", "/x y", NULL },
                { "GET", "/x", "NoColon" },
                { "GET", "/x", "X-A: b\r\nEvil: 1" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct moat_http_request q = {
                        .method = bad[i].method,
                        .target = bad[i].target,
                        .headers = (const char *const[]) { bad[i].header, NULL },
                };
                r = moat_http_conn_request(c, &q, &err);
                is_int(r, -EINVAL, "invalid request %zu refused before sending", i);
                error_clear(&err);
        }
        char *longt = malloc(MOAT_HTTP_REQUEST_HEAD_MAX + 16);
        longt[0] = '/';
        memset(longt + 1, 'a', MOAT_HTTP_REQUEST_HEAD_MAX);
        longt[MOAT_HTTP_REQUEST_HEAD_MAX + 1] = 0;
        struct moat_http_request q = { .method = "GET", .target = longt };
        r = moat_http_conn_request(c, &q, &err);
        is_int(r, -E2BIG, "a request head over %u bytes is refused", MOAT_HTTP_REQUEST_HEAD_MAX);
        error_clear(&err);
        free(longt);
        moat_http_conn_free(TAKE_PTR(c));

        /* A socket path longer than sun_path. */
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/%0120d", tmpdir, 0);
        ok(mkdir(dir, 0700) == 0, "long directory");
        int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        char via[64];
        snprintf(via, sizeof(via), "/proc/self/fd/%d/s", dfd);
        int lfd = listen_at(via);
        snprintf(path, sizeof(path), "%s/s", dir);
        ok(strlen(path) >= sizeof(((struct sockaddr_un *) 0)->sun_path), "path of %zu bytes", strlen(path));
        r = moat_http_conn_new(path, &c, &err);
        r = moat_http_conn_connect(c, &err);
        is_int(r, 0, "a socket path longer than sun_path connects: %s", err ? err->msg : "");
        error_clear(&err);
        moat_http_conn_free(TAKE_PTR(c));
        unlink(path);
        rmdir(dir);
        close(lfd);
        close(dfd);
}

int main(void)
{
        alarm(120);
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        snprintf(sock_path, sizeof(sock_path), "%s/moat.sock", tmpdir);

        test_content_length_keepalive();
        test_split();
        test_eof_and_head();
        test_upgrade();
        test_refused();
        test_upload();
        test_reconnect();
        test_callback_error();
        test_connect_and_validate();

        char path[512];
        snprintf(path, sizeof(path), "%s/dead.sock", tmpdir);
        unlink(path);
        unlink(sock_path);
        rmdir(tmpdir);
        return tap_done();
}
