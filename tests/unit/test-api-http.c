/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of api/http.c: request-target splitting and decoding, the
 * version prefix and its range, docker's booleans, the router; then a
 * server on a unix socket in a temp dir, driven with raw HTTP, for what
 * the docker CLI depends on: headers on every response, errors as JSON,
 * body bounds, a stream whose headers arrive before its body, a producer
 * released when its client disconnects and when the server stops, a
 * hijacked connection with half-close both ways, and a streamed upload.
 */

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/http.h"
#include "base/cleanup.h"
#include "tap.h"

static void test_split(void)
{
        _cleanup_free_ char *path = NULL;
        struct moat_http_param *p = NULL;
        size_t n = 0;
        int r = moat_http_split_target("/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a+b%22%5D%7D&x&&y=",
                                       &path, &p, &n, NULL);
        is_int(r, 0, "split a docker ps target");
        is_str(path, "/containers/json", "path without the query");
        is_int(n, 4, "four parameters (empty pieces skipped)");
        if (n == 4) {
                is_str(p[0].key, "all", "first key");
                is_str(p[0].value, "1", "first value");
                is_str(p[1].value, "{\"label\":[\"a b\"]}", "percent-decoding and '+' as space in values");
                is_str(p[2].key, "x", "key without '='");
                is_str(p[2].value, "", "has an empty value");
                is_str(p[3].value, "", "key with '=' and nothing after");
        }
        moat_http_params_free(p, n);
        free(path);
        path = NULL;

        r = moat_http_split_target("/images/a%2Fb+c/json", &path, &p, &n, NULL);
        is_int(r, 0, "escaped path");
        is_str(path, "/images/a/b+c/json", "path is percent-decoded, '+' kept");
        moat_http_params_free(p, n);
        free(path);
        path = NULL;

        struct moat_error *err = NULL;
        r = moat_http_split_target("/x?a=%zz", &path, &p, &n, &err);
        is_int(r, -EINVAL, "bad escape refused");
        ok(err && strstr(err->msg, "a=%zz"), "the message names the parameter: %s", err ? err->msg : "");
        moat_error_free(err);
        err = NULL;
        r = moat_http_split_target("/x%00y", &path, &p, &n, NULL);
        is_int(r, -EINVAL, "an escaped NUL is refused");
        r = moat_http_split_target("x", &path, &p, &n, NULL);
        is_int(r, -EINVAL, "a target not starting with / is refused");

        char many[2048] = "/x?";
        for (int i = 0; i <= MOAT_HTTP_MAX_QUERY_PARAMS; i++)
                snprintf(many + strlen(many), sizeof(many) - strlen(many), "k%d=v&", i);
        r = moat_http_split_target(many, &path, &p, &n, &err);
        is_int(r, -E2BIG, "more than %d parameters refused", MOAT_HTTP_MAX_QUERY_PARAMS);
        moat_error_free(err);
        err = NULL;

        char *longt = malloc(MOAT_HTTP_MAX_TARGET + 2);
        longt[0] = '/';
        memset(longt + 1, 'a', MOAT_HTTP_MAX_TARGET);
        longt[MOAT_HTTP_MAX_TARGET + 1] = '\0';
        r = moat_http_split_target(longt, &path, &p, &n, NULL);
        is_int(r, -E2BIG, "a target over %d bytes is refused", MOAT_HTTP_MAX_TARGET);
        free(longt);
}

static void test_version(void)
{
        unsigned ma, mi;
        const char *rest;
        struct moat_error *err = NULL;

        is_int(moat_http_parse_version_prefix("/v1.24/_ping", &ma, &mi, &rest, NULL), 0, "/v1.24 accepted");
        ok(ma == 1 && mi == 24, "version 1.24");
        is_str(rest, "/_ping", "prefix stripped");
        is_int(moat_http_parse_version_prefix("/v1.51/containers/x/json", &ma, &mi, &rest, NULL), 0, "/v1.51");
        is_str(rest, "/containers/x/json", "rest of a longer path");
        is_int(moat_http_parse_version_prefix("/version", &ma, &mi, &rest, NULL), 0, "unversioned");
        ok(ma == 1 && mi == 51 && streq(rest, "/version"), "unversioned is served as 1.51");
        is_int(moat_http_parse_version_prefix("/v1.99/version", &ma, &mi, &rest, &err), -ERANGE, "1.99 refused");
        is_str(err ? err->msg : NULL, "client version 1.99 is too new. Maximum supported API version is 1.51",
               "moby's wording for too new");
        moat_error_free(err);
        err = NULL;
        is_int(moat_http_parse_version_prefix("/v1.23/version", &ma, &mi, &rest, &err), -ERANGE, "1.23 refused");
        ok(err && startswith(err->msg, "client version 1.23 is too old. Minimum supported API version is 1.24"),
           "moby's wording for too old");
        moat_error_free(err);
        err = NULL;
        is_int(moat_http_parse_version_prefix("/v1.4.5/x", &ma, &mi, &rest, &err), -EINVAL, "1.4.5 malformed");
        moat_error_free(err);
        err = NULL;
        is_int(moat_http_parse_version_prefix("/v1.100/x", &ma, &mi, &rest, NULL), -ERANGE,
               "1.100 is newer than 1.51 (numeric minor)");
        is_int(moat_http_parse_version_prefix("/volumes", &ma, &mi, &rest, NULL), 0, "/volumes is no prefix");
        is_str(rest, "/volumes", "left alone");
}

static void test_bool(void)
{
        ok(moat_http_bool_value("1") && moat_http_bool_value("true") && moat_http_bool_value("True") &&
                   moat_http_bool_value("yes"),
           "true values");
        ok(!moat_http_bool_value(NULL) && !moat_http_bool_value("") && !moat_http_bool_value("0") &&
                   !moat_http_bool_value("FALSE") && !moat_http_bool_value("no") && !moat_http_bool_value("none"),
           "false values");
}

static struct moat_http_response *dummy(struct moat_http_request *req, void *userdata)
{
        return moat_http_response_empty(204);
}

static void test_router(void)
{
        struct moat_http_router *r;
        struct moat_http_path_param params[MOAT_HTTP_MAX_PATH_PARAMS];
        const struct moat_http_route *rt;
        size_t n;
        char *buf;

        is_int(moat_http_router_new(&r), 0, "router");
        is_int(moat_http_router_add(r, "GET", "/containers/{id}/json", dummy, NULL, NULL, NULL), 0, "add");
        is_int(moat_http_router_add(r, "GET", "/images/{name*}/json", dummy, NULL, NULL, NULL), 0, "add greedy");
        is_int(moat_http_router_add(r, "POST", "/images/{name*}/tag", dummy, NULL, NULL, NULL), 0, "add greedy 2");
        is_int(moat_http_router_add(r, "GET", "/_ping", dummy, NULL, NULL, NULL), 0, "add ping");
        is_int(moat_http_router_add(r, "GET", "x", dummy, NULL, NULL, NULL), -EINVAL, "a relative pattern refused");

        is_int(moat_http_router_match(r, "GET", "/containers/abc/json", &rt, params, &n, &buf), MOAT_HTTP_MATCH_OK,
               "match with a parameter");
        ok(n == 1 && streq(params[0].name, "id") && streq(params[0].value, "abc"), "id=abc");
        free(buf);
        is_int(moat_http_router_match(r, "GET", "/images/docker.io/library/busybox:latest/json", &rt, params, &n,
                                      &buf),
               MOAT_HTTP_MATCH_OK, "greedy match");
        ok(n == 1 && streq(params[0].value, "docker.io/library/busybox:latest"), "name spans segments: %s",
           n ? params[0].value : "");
        free(buf);
        is_int(moat_http_router_match(r, "POST", "/images/a/json/tag", &rt, params, &n, &buf), MOAT_HTTP_MATCH_OK,
               "greedy match keeps the fixed suffix");
        ok(n == 1 && streq(params[0].value, "a/json"), "name=a/json");
        free(buf);
        is_int(moat_http_router_match(r, "HEAD", "/_ping", &rt, params, &n, &buf), MOAT_HTTP_MATCH_OK,
               "HEAD served by GET");
        free(buf);
        is_int(moat_http_router_match(r, "POST", "/_ping", &rt, params, &n, &buf), MOAT_HTTP_MATCH_BAD_METHOD,
               "wrong method");
        is_int(moat_http_router_match(r, "GET", "/containers//json", &rt, params, &n, &buf),
               MOAT_HTTP_MATCH_NO_ROUTE, "empty parameter does not match");
        is_int(moat_http_router_match(r, "GET", "/containers/a/b/json", &rt, params, &n, &buf),
               MOAT_HTTP_MATCH_NO_ROUTE, "a plain parameter is one segment");
        is_int(moat_http_router_match(r, "GET", "/nope", &rt, params, &n, &buf), MOAT_HTTP_MATCH_NO_ROUTE,
               "unknown path");
        is_int(moat_http_router_match(r, "GET", "/_ping/", &rt, params, &n, &buf), MOAT_HTTP_MATCH_NO_ROUTE,
               "trailing slash is another path");
        moat_http_router_free(r);
}

/* ---- a live server ---- */

static char sock_path[108];
static int wait_pipe[2];
static int freed_pipe[2];

static struct moat_http_response *h_echo(struct moat_http_request *req, void *userdata)
{
        const char *a = moat_http_request_query(req, "a");
        unsigned ma, mi;
        moat_http_request_version(req, &ma, &mi);
        pid_t pid;
        uid_t uid;
        moat_http_request_peer(req, &pid, &uid, NULL);
        return moat_http_response_json(200, json_pack("{s:s?, s:s, s:i, s:i, s:i}", "a", a, "id",
                                                      moat_http_request_param(req, "id"), "minor", (int) mi, "pid",
                                                      (int) pid, "uid", (int) uid));
}

static struct moat_http_response *h_json(struct moat_http_request *req, void *userdata)
{
        json_t *j;
        struct moat_error *err = NULL;
        int r = moat_http_request_json(req, &j, &err);
        if (r < 0) {
                struct moat_http_response *resp = moat_http_response_from_error(r, err);
                moat_error_free(err);
                return resp;
        }
        return moat_http_response_json(200, j);
}

static ssize_t produce_wait(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        int *done = userdata;
        if (*done)
                return 0;
        int r = moat_http_stream_wait(s, wait_pipe[0], POLLIN, -1);
        if (r < 0)
                return r;
        char c;
        if (read(wait_pipe[0], &c, 1) != 1)
                return -EIO;
        *done = 1;
        return snprintf(buf, max, "{\"StatusCode\":%d}\n", c - '0');
}

static void free_marker(void *p)
{
        free(p);
        if (write(freed_pipe[1], "F", 1) != 1)
                abort();
}

static struct moat_http_response *h_wait(struct moat_http_request *req, void *userdata)
{
        return moat_http_response_stream(200, "application/json", produce_wait, calloc(1, sizeof(int)), free_marker);
}

static ssize_t produce_forever(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        int *sent = userdata;
        if (!*sent) {
                *sent = 1;
                return snprintf(buf, max, "first\n");
        }
        int r = moat_http_stream_wait(s, -1, 0, -1);
        return r < 0 ? r : -EIO;
}

static struct moat_http_response *h_forever(struct moat_http_request *req, void *userdata)
{
        return moat_http_response_stream(200, "application/json", produce_forever, calloc(1, sizeof(int)),
                                         free_marker);
}

static void hijack_echo(struct moat_http_hijack *h, void *userdata)
{
        char buf[256];
        ssize_t n;
        while ((n = moat_http_hijack_read(h, buf, sizeof(buf))) > 0)
                if (moat_http_hijack_write(h, buf, (size_t) n) < 0)
                        return;
        /* The client half-closed: answer once more, then half-close too. */
        if (moat_http_hijack_write(h, "bye", 3) < 0)
                return;
        (void) moat_http_hijack_close_write(h);
}

static struct moat_http_response *h_hijack(struct moat_http_request *req, void *userdata)
{
        return moat_http_response_hijack("application/vnd.docker.raw-stream", hijack_echo, NULL, NULL);
}

static struct moat_http_response *h_upload(struct moat_http_request *req, void *userdata)
{
        char buf[4096];
        ssize_t n;
        long total = 0;
        while ((n = read(moat_http_request_body_fd(req), buf, sizeof(buf))) > 0)
                total += n;
        return moat_http_response_json(200, json_pack("{s:I, s:b}", "bytes", (json_int_t) total, "complete",
                                                      moat_http_request_body_complete(req)));
}

static int client(void)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, sock_path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                abort();
        return fd;
}

static void send_str(int fd, const char *s)
{
        size_t len = strlen(s);
        if (send(fd, s, len, MSG_NOSIGNAL) != (ssize_t) len)
                abort();
}

/* Read until the peer closes or the buffer holds `until`. */
static char *read_until(int fd, const char *until)
{
        static char buf[65536];
        size_t len = 0;
        buf[0] = '\0';
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 10000) <= 0)
                        break;
                ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t) n;
                buf[len] = '\0';
                if (until && strstr(buf, until))
                        break;
        }
        return buf;
}

static char *roundtrip(const char *request)
{
        int fd = client();
        send_str(fd, request);
        char *resp = read_until(fd, NULL);
        close(fd);
        return resp;
}

static bool wait_freed(void)
{
        struct pollfd p = { .fd = freed_pipe[0], .events = POLLIN };
        char c;
        return poll(&p, 1, 10000) == 1 && read(freed_pipe[0], &c, 1) == 1;
}

static void test_server(void)
{
        char dir[] = "/tmp/test-api-http-XXXXXX";
        if (!mkdtemp(dir) || pipe2(wait_pipe, O_CLOEXEC) < 0 || pipe2(freed_pipe, O_CLOEXEC) < 0)
                abort();
        snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, sock_path);
        if (bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0)
                abort();

        struct moat_http_router *r;
        if (moat_http_router_new(&r) < 0)
                abort();
        struct moat_http_route_opts small = { .max_body = 16 }, streamed = { .stream_body = true };
        if (moat_http_router_add(r, "GET", "/echo/{id}", h_echo, NULL, NULL, NULL) < 0 ||
            moat_http_router_add(r, "POST", "/json", h_json, NULL, NULL, NULL) < 0 ||
            moat_http_router_add(r, "POST", "/small", h_json, NULL, &small, NULL) < 0 ||
            moat_http_router_add(r, "POST", "/wait", h_wait, NULL, NULL, NULL) < 0 ||
            moat_http_router_add(r, "GET", "/forever", h_forever, NULL, NULL, NULL) < 0 ||
            moat_http_router_add(r, "POST", "/hijack", h_hijack, NULL, NULL, NULL) < 0 ||
            moat_http_router_add(r, "POST", "/upload", h_upload, NULL, &streamed, NULL) < 0)
                abort();
        struct moat_http_server *s;
        struct moat_http_server_config cfg = { .listen_fd = lfd, .server_header = "Moat/test (linux)" };
        struct moat_error *err = NULL;
        is_int(moat_http_server_start(&cfg, r, &s, &err), 0, "server starts");

        char *resp = roundtrip("GET /v1.30/echo/abc?a=x+y HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        ok(startswith(resp, "HTTP/1.1 200"), "GET 200");
        ok(strstr(resp, "Api-Version: 1.51\r\n") && strstr(resp, "Server: Moat/test (linux)\r\n") &&
                   strstr(resp, "Ostype: linux\r\n") && strstr(resp, "Docker-Experimental: false\r\n"),
           "common headers");
        ok(strstr(resp, "\"a\":\"x y\"") && strstr(resp, "\"id\":\"abc\"") && strstr(resp, "\"minor\":30"),
           "query, path parameter and version reach the handler");
        char me[64];
        snprintf(me, sizeof(me), "\"pid\":%d,\"uid\":%d", (int) getpid(), (int) getuid());
        ok(strstr(resp, me) != NULL, "peer credentials from SO_PEERCRED");

        resp = roundtrip("GET /v1.99/echo/x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        ok(startswith(resp, "HTTP/1.1 400") &&
                   strstr(resp, "{\"message\":\"client version 1.99 is too new. Maximum supported API version is "
                                "1.51\"}"),
           "version out of range: 400 with moby's message");
        resp = roundtrip("GET /nope HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        ok(startswith(resp, "HTTP/1.1 404") && strstr(resp, "{\"message\":\"page not found\"}") &&
                   strstr(resp, "Content-Type: application/json"),
           "unknown path: 404 JSON");
        resp = roundtrip("POST /json HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nConnection: close\r\n\r\n{\"a\":1");
        ok(startswith(resp, "HTTP/1.1 400") && strstr(resp, "invalid JSON in the request body"),
           "malformed JSON: 400 naming the problem");
        resp = roundtrip("POST /json HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"a\":1}");
        ok(startswith(resp, "HTTP/1.1 200") && strstr(resp, "{\"a\":1}\n"), "JSON body parsed");
        resp = roundtrip("POST /small HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\nConnection: close\r\n\r\n"
                         "{\"aaaaaaaaaaaa\":1}");
        ok(startswith(resp, "HTTP/1.1 413") && strstr(resp, "larger than the limit of 16 bytes"),
           "over-size body by Content-Length: 413");
        resp = roundtrip("POST /small HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                         "8\r\n{\"a\":111\r\n8\r\n11111111\r\n6\r\n11111}\r\n0\r\n\r\n");
        ok(startswith(resp, "HTTP/1.1 413"), "over-size chunked body: 413");

        /* wait: the headers come before the body exists. */
        int fd = client();
        send_str(fd, "POST /v1.51/wait HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
        resp = read_until(fd, "\r\n\r\n");
        ok(startswith(resp, "HTTP/1.1 200") && strstr(resp, "Transfer-Encoding: chunked") &&
                   !strstr(resp, "StatusCode"),
           "stream: headers flushed before the producer has anything");
        if (write(wait_pipe[1], "7", 1) != 1)
                abort();
        resp = read_until(fd, "0\r\n\r\n");
        ok(strstr(resp, "{\"StatusCode\":7}") != NULL, "then the body");
        ok(wait_freed(), "producer data freed at the end of the stream");
        close(fd);

        /* a blocked producer is released when its client goes away */
        fd = client();
        send_str(fd, "GET /forever HTTP/1.1\r\nHost: h\r\n\r\n");
        resp = read_until(fd, "first\n");
        ok(strstr(resp, "first\n") != NULL, "endless stream started");
        close(fd);
        ok(wait_freed(), "client disconnect stops the producer and frees its data");

        /* hijack with half-close both ways, bytes sent with the request included */
        fd = client();
        send_str(fd, "POST /hijack HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                     "Content-Length: 0\r\n\r\n");
        resp = read_until(fd, "\r\n\r\n");
        ok(startswith(resp, "HTTP/1.1 101") && strstr(resp, "Upgrade: tcp") && strstr(resp, "Connection: Upgrade") &&
                   strstr(resp, "Content-Type: application/vnd.docker.raw-stream") && strstr(resp, "Api-Version"),
           "hijack: 101 with docker's headers");
        send_str(fd, "ping");
        resp = read_until(fd, "ping");
        ok(strstr(resp, "ping") != NULL, "raw bytes echoed");
        shutdown(fd, SHUT_WR);
        resp = read_until(fd, NULL);
        is_str(resp, "bye", "client half-close seen by the handler, which answers and half-closes");
        close(fd);

        resp = roundtrip("POST /hijack HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        ok(startswith(resp, "HTTP/1.1 400") && strstr(resp, "Upgrade: tcp"), "hijack without Upgrade: 400");

        /* streamed upload, larger than the default JSON bound */
        fd = client();
        size_t big = 3 * 1024 * 1024;
        char hdr[160];
        snprintf(hdr, sizeof(hdr), "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 big);
        send_str(fd, hdr);
        char *chunk = calloc(1, 65536);
        for (size_t sent = 0; sent < big; sent += 65536)
                if (send(fd, chunk, 65536, MSG_NOSIGNAL) != 65536)
                        abort();
        free(chunk);
        resp = read_until(fd, NULL);
        char want[64];
        snprintf(want, sizeof(want), "{\"bytes\":%zu,\"complete\":true}", big);
        ok(startswith(resp, "HTTP/1.1 200") && strstr(resp, want), "streamed upload of %zu bytes", big);
        close(fd);

        /* stop with a producer blocked: it is woken and the stop returns */
        fd = client();
        send_str(fd, "GET /forever HTTP/1.1\r\nHost: h\r\n\r\n");
        resp = read_until(fd, "first\n");
        ok(strstr(resp, "first\n") != NULL, "a stream is open when the server stops");
        moat_http_server_stop(s, 1000);
        ok(wait_freed(), "stop wakes the blocked producer and frees its data");
        close(fd);
        moat_http_router_free(r);
        unlink(sock_path);
        rmdir(dir);
}

int main(void)
{
        test_split();
        test_version();
        test_bool();
        test_router();
        test_server();
        return tap_done();
}
