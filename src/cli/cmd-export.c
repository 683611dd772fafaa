/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat export [-o FILE] CONTAINER: docker export. GET
 * /containers/{id}/export streamed to FILE or to standard output, which
 * must not be a terminal (docker's "cowardly refusing"). With -o the tar
 * goes to a temporary file beside FILE, renamed over it at the end, so a
 * failure leaves no partial file.
 */

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "cli/cli.h"
#include "cli/client.h"

static int write_chunk(const char *data, size_t len, void *userdata)
{
        return write_all(*(int *) userdata, data, len);
}

int cmd_export(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *e = NULL, *target = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *output = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "o:", options, NULL)) != -1) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                default:
                        return cli_bad_option("export", argv[optind - 1], reterr);
                }
        }
        if (argc - optind != 1)
                return moat_error_setx(reterr, -EINVAL, "\"moat export\" requires exactly 1 argument.");
        if (!output && isatty(STDOUT_FILENO))
                return moat_error_setx(reterr, -EINVAL,
                                       "cowardly refusing to save to a terminal. Use the -o flag or redirect");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        e = moat_client_escape(argv[optind]);
        if (!e || asprintf(&target, "/containers/%s/export", e) < 0)
                return moat_error_set(reterr, -ENOMEM, "export");
        if (output) {
                uint32_t rnd;
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd) ||
                    asprintf(&tmp, "%s.moat-tmp-%08x", output, rnd) < 0)
                        return moat_error_set(reterr, -ENOMEM, "export");
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "creating %s", tmp);
        } else
                fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return moat_error_set(reterr, errno, "standard output");
        r = moat_client_stream(client, "GET", target, NULL, write_chunk, &fd, reterr);
        if (r >= 0 && output && (fsync(fd) < 0 || rename(tmp, output) < 0))
                r = moat_error_set(reterr, errno, "writing %s", output);
        if (r < 0 && tmp)
                (void) unlink(tmp);
        return r < 0 ? r : 0;
}
