/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat import [-c INSTRUCTION]... [-m MESSAGE] [--platform P] FILE|-
 * [REPOSITORY[:TAG]]: docker import, through POST
 * /images/create?fromSrc=- with the tarball (FILE or standard input)
 * streamed as the body and docker's query (repo, tag, message, changes,
 * platform). The daemon's message stream ends with the new image's ID,
 * which is printed. URLs are not fetched: moat reaches no network.
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

#define MAX_CHANGES 64

int cmd_import(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_PLATFORM = 256 };
        static const struct option options[] = {
                { "change", required_argument, NULL, 'c' },
                { "message", required_argument, NULL, 'm' },
                { "platform", required_argument, NULL, OPT_PLATFORM },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *target = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *changes[MAX_CHANGES], *message = NULL, *platform = NULL;
        size_t n_changes = 0, size = 0;
        struct cli_jsonmessage m;
        FILE *f;
        int c, r;

        while ((c = getopt_long(argc, argv, ":c:m:", options, NULL)) != -1) {
                switch (c) {
                case 'c':
                        if (n_changes >= MAX_CHANGES)
                                return moat_error_setx(reterr, -E2BIG, "import: more than %d --change",
                                                       MAX_CHANGES);
                        changes[n_changes++] = optarg;
                        break;
                case 'm':
                        message = optarg;
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
        if (argc - optind < 1 || argc - optind > 2)
                return moat_error_setx(reterr, -EINVAL, "\"moat import\" requires at least 1 and at most 2 arguments.");
        const char *src = argv[optind], *ref = optind + 1 < argc ? argv[optind + 1] : NULL;
        if (startswith(src, "http://") || startswith(src, "https://"))
                return moat_error_setx(reterr, -EOPNOTSUPP, "import: importing from a URL is not supported by moat "
                                                            "(no network): download it and import the file");
        if (streq(src, "-"))
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                fd = open(src, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "open %s", src);

        f = open_memstream(&target, &size);
        if (!f)
                return moat_error_set(reterr, -ENOMEM, "import");
        fputs("/images/create?fromSrc=-", f);
        if (ref) {
                _cleanup_free_ char *repo = NULL, *er = NULL, *et = NULL;
                const char *slash = strrchr(ref, '/'), *colon = strrchr(ref, ':');
                bool tagged = colon && (!slash || colon > slash) && !strchr(ref, '@');
                repo = tagged ? strndup(ref, (size_t) (colon - ref)) : strdup(ref);
                er = repo ? moat_client_escape(repo) : NULL;
                et = tagged ? moat_client_escape(colon + 1) : NULL;
                fprintf(f, "&repo=%s", er ? er : "");
                if (et)
                        fprintf(f, "&tag=%s", et);
        }
        if (message) {
                _cleanup_free_ char *e = moat_client_escape(message);
                fprintf(f, "&message=%s", e ? e : "");
        }
        for (size_t i = 0; i < n_changes; i++) {
                _cleanup_free_ char *e = moat_client_escape(changes[i]);
                fprintf(f, "&changes=%s", e ? e : "");
        }
        if (platform) {
                _cleanup_free_ char *e = moat_client_escape(platform);
                fprintf(f, "&platform=%s", e ? e : "");
        }
        if (fclose(f) != 0)
                return moat_error_set(reterr, -ENOMEM, "import");
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
