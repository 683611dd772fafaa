/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat load [-i FILE] [-q]: docker load, through POST /images/load with
 * the archive (FILE or standard input, which must not be a terminal)
 * streamed as the body. The daemon answers with docker's JSON message
 * stream: "stream" text is printed as it comes ("Loaded image: x"), on a
 * terminal (and without -q) the daemon's progress lines too, each id's
 * line rewritten in place; an "error" message is the verb's error. Off a
 * terminal the daemon is asked for no progress (quiet), as docker does.
 *
 * An OCI layout directory as FILE is packed into a tar on the fly.
 *
 * The message stream's display (cli_jsonmessage_*) is import's too.
 */

#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

#define LINE_MAX_BYTES (1024 * 1024)

void cli_jsonmessage_init(struct cli_jsonmessage *m)
{
        *m = (struct cli_jsonmessage) { .tty = isatty(STDOUT_FILENO) };
}

static int show(struct cli_jsonmessage *m, json_t *msg)
{
        json_t *err = json_object_get(msg, "error");
        const char *text;

        if (err) {
                const char *detail = json_string_value(json_object_get(json_object_get(msg, "errorDetail"), "message"));
                m->r = moat_error_setx(&m->err, -EIO, "%s", detail ? detail : json_string_value(err) ?: "error");
                return m->r;
        }
        if ((text = json_string_value(json_object_get(msg, "stream")))) {
                if (m->in_progress) {
                        fputc('\n', stdout);
                        m->in_progress = false;
                }
                fputs(text, stdout);
        } else if ((text = json_string_value(json_object_get(msg, "status")))) {
                const char *id = json_string_value(json_object_get(msg, "id"));
                const char *progress = json_string_value(json_object_get(msg, "progress"));
                if (m->tty) {
                        /* docker's jsonmessage: clear the line, draw it, back to its start */
                        printf("\033[2K\r%s%s%s%s%s%s", id ? id : "", id ? ": " : "", text, progress ? " " : "",
                               progress ? progress : "", progress ? "\r" : "\n");
                        m->in_progress = progress != NULL;
                } else if (!progress)
                        printf("%s%s%s\n", id ? id : "", id ? ": " : "", text);
        }
        fflush(stdout);
        return 0;
}

int cli_jsonmessage_feed(const char *data, size_t len, void *userdata)
{
        struct cli_jsonmessage *m = userdata;

        for (size_t i = 0; i < len; i++) {
                if (data[i] != '\n') {
                        if (m->len >= LINE_MAX_BYTES)
                                return m->r = moat_error_setx(&m->err, -E2BIG, "a message of the daemon is longer "
                                                                               "than %d bytes", LINE_MAX_BYTES);
                        if (m->len + 1 >= m->size) {
                                size_t n = m->size ? m->size * 2 : 4096;
                                char *b = realloc(m->buf, n);
                                if (!b)
                                        return m->r = moat_error_set(&m->err, -ENOMEM, "message");
                                m->buf = b;
                                m->size = n;
                        }
                        m->buf[m->len++] = data[i];
                        continue;
                }
                if (m->len == 0)
                        continue;
                json_error_t jerr;
                json_t *msg = json_loadb(m->buf, m->len, 0, &jerr);
                m->len = 0;
                if (!msg)
                        return m->r = moat_error_setx(&m->err, -EPROTO, "the daemon's message is not JSON: %s",
                                                      jerr.text);
                int r = show(m, msg);
                json_decref(msg);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cli_jsonmessage_done(struct cli_jsonmessage *m, int r, struct moat_error **reterr)
{
        if (m->len > 0 && m->r >= 0)
                (void) cli_jsonmessage_feed("\n", 1, m);
        if (m->in_progress)
                fputc('\n', stdout);
        free(m->buf);
        m->buf = NULL;
        if (m->r < 0) {
                moat_error_free(*reterr);
                *reterr = TAKE_PTR(m->err);
                return m->r;
        }
        moat_error_free(m->err);
        return r;
}

ssize_t cli_read_fd(char *buf, size_t len, void *userdata)
{
        for (;;) {
                ssize_t n = read(*(int *) userdata, buf, len);
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 ? -errno : n;
        }
}

/* An OCI image layout directory (skopeo's oci:, umoci's) goes to the
 * daemon as the OCI layout tarball it also loads, packed on the fly. */
static int load_directory(struct moat_cli *cli, const char *dir, const char *target, struct moat_error **reterr)
{
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *abs = realpath(dir, NULL);
        _cleanup_close_ int rfd = -EBADF;
        struct cli_jsonmessage m;
        pthread_t thread;
        int fds[2], r;

        if (!abs)
                return moat_error_set(reterr, errno, "%s", dir);
        (void) signal(SIGPIPE, SIG_IGN); /* a refused upload ends the packer with EPIPE */
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return moat_error_set(reterr, errno, "load: pipe");
        rfd = fds[0];
        struct cli_pack p = { .out_fd = fds[1], .path = abs, .name = "." };
        r = -pthread_create(&thread, NULL, cli_pack_thread, &p);
        if (r < 0) {
                close(fds[1]);
                return moat_error_set(reterr, r, "load: thread");
        }
        cli_jsonmessage_init(&m);
        struct moat_client_transfer t = { .content_type = "application/x-tar", .read = cli_read_fd, .read_data = &rfd,
                                          .fn = cli_jsonmessage_feed, .userdata = &m };
        r = moat_client_transfer(client, "POST", target, &t, reterr);
        free(t.header);
        rfd = safe_close(rfd); /* a packer still writing gets EPIPE and ends */
        pthread_join(thread, NULL);
        if (p.r < 0 && r >= 0) {
                moat_error_free(*reterr);
                *reterr = TAKE_PTR(p.err);
                r = moat_error_wrap(reterr, p.r, "packing %s", dir);
        }
        moat_error_free(p.err);
        return cli_jsonmessage_done(&m, r, reterr);
}

int cmd_load(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_PLATFORM = 256 };
        static const struct option options[] = {
                { "input", required_argument, NULL, 'i' },
                { "quiet", no_argument, NULL, 'q' },
                { "platform", required_argument, NULL, OPT_PLATFORM },
                {},
        };
        _cleanup_free_ char *plat = NULL, *target = NULL;
        const char *platform = NULL;
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct cli_jsonmessage m;
        const char *input = NULL;
        bool quiet = false;
        int c, r;

        while ((c = getopt_long(argc, argv, ":i:q", options, NULL)) != -1) {
                switch (c) {
                case 'i':
                        input = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case OPT_PLATFORM:
                        platform = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat load\" accepts no arguments.");
        if (platform && cli_platform_query(platform, &plat) < 0)
                return moat_error_set(reterr, -ENOMEM, "load");
        bool q = quiet || !isatty(STDOUT_FILENO);
        if (asprintf(&target, "/images/load?quiet=%d%s%s", q ? 1 : 0, plat ? "&platform=" : "", plat ? plat : "") < 0)
                return moat_error_set(reterr, -ENOMEM, "load");
        struct stat st;
        if (input && stat(input, &st) == 0 && S_ISDIR(st.st_mode))
                return load_directory(cli, input, target, reterr);
        if (input) {
                fd = open(input, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "open %s", input);
        } else {
                if (isatty(STDIN_FILENO))
                        return moat_error_setx(reterr, -EINVAL, "requested load from stdin, but stdin is empty");
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "standard input");
        }
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        cli_jsonmessage_init(&m);
        struct moat_client_transfer t = { .content_type = "application/x-tar", .read = cli_read_fd, .read_data = &fd,
                                          .fn = cli_jsonmessage_feed, .userdata = &m };
        r = moat_client_transfer(client, "POST", target, &t, reterr);
        free(t.header);
        return cli_jsonmessage_done(&m, r, reterr);
}
