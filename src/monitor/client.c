/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The daemon's side of a monitor's sockets and files (docs/monitor.md):
 * connecting to attach.sock and ctl.sock, one request line and one reply
 * line on the control socket, and reading exit.json. A container
 * directory may be deeper than a unix socket address allows, so sockets
 * are reached through /proc/self/fd/N/<name> of an fd of the directory.
 */

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "monitor/monitor.h"

/* How long a control request may take (a start runs the runtime's start). */
#define CTL_TIMEOUT_MS 60000

int moat_monitor_connect(const char *dir, const char *name, struct moat_error **reterr)
{
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (dfd < 0)
                return moat_error_set(reterr, errno, "monitor directory '%s'", dir);
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, name);
        if (n < 0 || (size_t) n >= sizeof(sa.sun_path))
                return moat_error_setx(reterr, -ENAMETOOLONG, "monitor socket name '%s' is too long", name);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return moat_error_set(reterr, errno, "socket");
        while (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                if (errno != EINTR)
                        return moat_error_set(reterr, errno, "connecting to the monitor at %s/%s", dir, name);
        return TAKE_FD(fd);
}

/* The acknowledgement: "{}" (registered), or with the log's position
 * when it was asked for and the monitor has a log. */
#define ACK_MAX 256

static int parse_ack(const char *line, struct moat_monitor_log_position *ret_pos)
{
        json_t *doc = json_loads(line, 0, NULL);
        json_t *dev = json_object_get(doc, "log_dev"), *ino = json_object_get(doc, "log_ino"),
               *size = json_object_get(doc, "log_size");
        int r = 0;

        if (!json_is_object(doc))
                r = -EPROTO;
        else if (ret_pos && json_is_integer(dev) && json_is_integer(ino) && json_is_integer(size) &&
                 json_integer_value(dev) >= 0 && json_integer_value(ino) >= 0 && json_integer_value(size) >= 0)
                *ret_pos = (struct moat_monitor_log_position) {
                        .known = true,
                        .dev = (uint64_t) json_integer_value(dev),
                        .ino = (uint64_t) json_integer_value(ino),
                        .size = (uint64_t) json_integer_value(size),
                };
        json_decref(doc);
        return r;
}

int moat_monitor_attach_logs(const char *dir, const char *exec_id, bool in, bool out, bool err,
                             struct moat_monitor_log_position *ret_pos, struct moat_error **reterr)
{
        char name[1100], req[128], ack[ACK_MAX + 1];
        size_t got = 0;

        if (ret_pos)
                *ret_pos = (struct moat_monitor_log_position) {};
        if (moat_monitor_file_name(exec_id, MOAT_MONITOR_ATTACH_SOCK, name, sizeof(name)) < 0)
                return moat_error_setx(reterr, -EINVAL, "exec id \"%s\" cannot name a file", exec_id);
        _cleanup_close_ int fd = moat_monitor_connect(dir, name, reterr);
        if (fd < 0)
                return fd;
        int n = snprintf(req, sizeof(req), "{\"stdin\":%s,\"stdout\":%s,\"stderr\":%s%s}\n", in ? "true" : "false",
                         out ? "true" : "false", err ? "true" : "false", ret_pos ? ",\"logs\":true" : "");
        int r = write_all(fd, req, (size_t) n);
        if (r < 0)
                return moat_error_set(reterr, r, "sending the attach request to %s/%s", dir, name);
        /* One line: the monitor has registered us. Read byte by byte:
         * output follows at once and belongs to the caller. */
        for (;;) {
                ssize_t k = read(fd, ack + got, 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return moat_error_setx(reterr, -EPROTO, "%s/%s closed before acknowledging the attach", dir,
                                               name);
                if (ack[got] == '\n')
                        break;
                if (++got == ACK_MAX)
                        return moat_error_setx(reterr, -EPROTO, "%s/%s: the attach acknowledgement exceeds %d bytes",
                                               dir, name, ACK_MAX);
        }
        ack[got] = '\0';
        if (parse_ack(ack, ret_pos) < 0)
                return moat_error_setx(reterr, -EPROTO, "%s/%s answered the attach request with \"%.64s\"", dir,
                                       name, ack);
        return TAKE_FD(fd);
}

int moat_monitor_attach(const char *dir, const char *exec_id, bool in, bool out, bool err,
                        struct moat_error **reterr)
{
        return moat_monitor_attach_logs(dir, exec_id, in, out, err, NULL, reterr);
}

int moat_monitor_ctl(const char *dir, const char *exec_id, const char *request, char **ret_reply,
                     struct moat_error **reterr)
{
        char name[1100];
        _cleanup_free_ char *reply = NULL;
        size_t n = 0;
        int r;

        if (strchr(request, '\n') || strlen(request) >= MOAT_MONITOR_LINE_MAX)
                return moat_error_setx(reterr, -EINVAL, "control request must be one line of less than %u bytes",
                                       MOAT_MONITOR_LINE_MAX);
        if (moat_monitor_file_name(exec_id, MOAT_MONITOR_CTL_SOCK, name, sizeof(name)) < 0)
                return moat_error_setx(reterr, -EINVAL, "exec id \"%s\" cannot name a file", exec_id);
        _cleanup_close_ int fd = moat_monitor_connect(dir, name, reterr);
        if (fd < 0)
                return fd;
        r = write_all(fd, request, strlen(request));
        if (r >= 0)
                r = write_all(fd, "\n", 1);
        if (r < 0)
                return moat_error_set(reterr, r, "sending a control request to %s/%s", dir, name);
        reply = malloc(MOAT_MONITOR_LINE_MAX + 1);
        if (!reply)
                return moat_error_set(reterr, -ENOMEM, "control reply");
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int k = poll(&p, 1, CTL_TIMEOUT_MS);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return moat_error_setx(reterr, -ETIMEDOUT, "the monitor at %s/%s did not reply", dir, name);
                ssize_t m = read(fd, reply + n, MOAT_MONITOR_LINE_MAX - n);
                if (m < 0 && errno == EINTR)
                        continue;
                if (m < 0)
                        return moat_error_set(reterr, errno, "reading the monitor's reply");
                if (m == 0)
                        return moat_error_setx(reterr, -EPROTO, "the monitor at %s/%s closed without a reply", dir,
                                               name);
                n += (size_t) m;
                char *nl = memchr(reply, '\n', n);
                if (nl) {
                        *nl = '\0';
                        break;
                }
                if (n == MOAT_MONITOR_LINE_MAX)
                        return moat_error_setx(reterr, -EMSGSIZE, "the monitor's reply exceeds %u bytes",
                                               MOAT_MONITOR_LINE_MAX);
        }
        json_t *doc = json_loads(reply, 0, NULL);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return moat_error_setx(reterr, -EPROTO, "the monitor's reply is not a JSON object: %s", reply);
        }
        json_t *err = json_object_get(doc, "error");
        if (err) {
                r = moat_error_setx(reterr, -EIO, "%s",
                                    json_is_string(err) ? json_string_value(err) : "the monitor reported an error");
                json_decref(doc);
                return r;
        }
        json_decref(doc);
        if (ret_reply)
                *ret_reply = TAKE_PTR(reply);
        return 0;
}

int moat_monitor_resize(const char *dir, const char *exec_id, unsigned height, unsigned width,
                        struct moat_error **reterr)
{
        char req[96];
        snprintf(req, sizeof(req), "{\"op\":\"resize\",\"height\":%u,\"width\":%u}", height, width);
        return moat_monitor_ctl(dir, exec_id, req, NULL, reterr);
}

int moat_monitor_close_stdin(const char *dir, const char *exec_id, struct moat_error **reterr)
{
        return moat_monitor_ctl(dir, exec_id, "{\"op\":\"close-stdin\"}", NULL, reterr);
}

int moat_monitor_start(const char *dir, struct moat_error **reterr)
{
        return moat_monitor_ctl(dir, NULL, "{\"op\":\"start\"}", NULL, reterr);
}

int moat_monitor_read_exit(const char *dir, const char *exec_id, struct moat_monitor_exit *ret,
                           struct moat_error **reterr)
{
        char name[1100];
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        size_t len;
        int r;

        if (dfd < 0)
                return moat_error_set(reterr, errno, "monitor directory '%s'", dir);
        if (moat_monitor_file_name(exec_id, MOAT_MONITOR_EXIT_FILE, name, sizeof(name)) < 0)
                return moat_error_setx(reterr, -EINVAL, "exec id \"%s\" cannot name a file", exec_id);
        r = read_full_file_at(dfd, name, 4096, &text, &len);
        if (r < 0)
                return moat_error_set(reterr, r, "%s/%s", dir, name);
        json_t *doc = json_loadb(text, len, 0, NULL);
        json_t *code = json_object_get(doc, "exit_code"), *sig = json_object_get(doc, "signal"),
               *oom = json_object_get(doc, "oom_killed"), *st = json_object_get(doc, "started_at"),
               *fin = json_object_get(doc, "finished_at");
        *ret = (struct moat_monitor_exit){};
        if (!json_is_integer(code) || !json_is_integer(sig) || !json_is_boolean(oom) || !json_is_string(st) ||
            !json_is_string(fin) || moat_parse_rfc3339nano(json_string_value(fin), &ret->finished_at) < 0 ||
            (json_string_length(st) > 0 && moat_parse_rfc3339nano(json_string_value(st), &ret->started_at) < 0)) {
                json_decref(doc);
                return moat_error_setx(reterr, -EBADMSG, "%s/%s: not a monitor exit record", dir, name);
        }
        ret->exit_code = (int) json_integer_value(code);
        ret->signal = (int) json_integer_value(sig);
        ret->oom_killed = json_is_true(oom);
        json_decref(doc);
        return 0;
}
