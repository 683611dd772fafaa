/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat save [-o FILE] [--platform P] IMAGE...: docker save, through GET
 * /images/get?names=...: the daemon's archive streamed to FILE or to
 * standard output, which must not be a terminal (docker's "cowardly
 * refusing"). FILE is written whole or not at all: the archive goes to a
 * temporary file beside it, renamed over it once complete and synced.
 */

#include <fcntl.h>
#include <getopt.h>
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

/* docker's --platform "os[/arch[/variant]]" as the API's JSON object. */
int cli_platform_query(const char *text, char **ret)
{
        _cleanup_json_ json_t *p = json_object();
        _cleanup_free_ char *dup = strdup(text ? text : ""), *js = NULL;
        char *os, *arch, *variant;

        if (!p || !dup)
                return -ENOMEM;
        os = dup;
        arch = strchr(os, '/');
        if (arch)
                *arch++ = 0;
        variant = arch ? strchr(arch, '/') : NULL;
        if (variant)
                *variant++ = 0;
        if (json_object_set_new(p, "os", json_string(os)) < 0 ||
            (arch && json_object_set_new(p, "architecture", json_string(arch)) < 0) ||
            (variant && json_object_set_new(p, "variant", json_string(variant)) < 0))
                return -ENOMEM;
        js = json_dumps(p, JSON_COMPACT);
        *ret = js ? moat_client_escape(js) : NULL;
        return *ret ? 0 : -ENOMEM;
}

int cmd_save(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_PLATFORM = 256, OPT_FORMAT };
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "platform", required_argument, NULL, OPT_PLATFORM },
                { "format", required_argument, NULL, OPT_FORMAT },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *target = NULL, *tmp = NULL, *plat = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *output = NULL, *platform = NULL, *format = NULL;
        size_t size = 0;
        FILE *f;
        int c, r;

        while ((c = getopt_long(argc, argv, ":o:", options, NULL)) != -1) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case OPT_PLATFORM:
                        platform = optarg;
                        break;
                case OPT_FORMAT:
                        if (!streq(optarg, "docker") && !streq(optarg, "oci"))
                                return moat_error_setx(reterr, -EINVAL,
                                                       "--format: \"%s\" is not docker or oci", optarg);
                        format = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat save\" requires at least 1 argument.");
        if (!output && isatty(STDOUT_FILENO))
                return moat_error_setx(reterr, -EINVAL,
                                       "cowardly refusing to save to a terminal. Use the -o flag or redirect");
        f = open_memstream(&target, &size);
        if (!f)
                return moat_error_set(reterr, -ENOMEM, "save");
        fputs("/images/get?", f);
        for (int i = optind; i < argc; i++) {
                _cleanup_free_ char *e = moat_client_escape(argv[i]);
                fprintf(f, "%snames=%s", i > optind ? "&" : "", e ? e : "");
        }
        if (format)
                fprintf(f, "&format=%s", format);
        if (platform) {
                if (cli_platform_query(platform, &plat) < 0) {
                        fclose(f);
                        return moat_error_set(reterr, -ENOMEM, "save");
                }
                fprintf(f, "&platform=%s", plat);
        }
        if (fclose(f) != 0)
                return moat_error_set(reterr, -ENOMEM, "save");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        if (output) {
                uint32_t rnd;
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd) ||
                    asprintf(&tmp, "%s.moat-tmp-%08x", output, rnd) < 0)
                        return moat_error_set(reterr, -ENOMEM, "save");
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "creating %s", tmp);
        } else {
                fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "standard output");
        }
        r = moat_client_stream(client, "GET", target, NULL, write_chunk, &fd, reterr);
        if (r >= 0 && output && (fsync(fd) < 0 || rename(tmp, output) < 0))
                r = moat_error_set(reterr, errno, "writing %s", output);
        if (r < 0 && tmp)
                (void) unlink(tmp);
        return r < 0 ? r : 0;
}
