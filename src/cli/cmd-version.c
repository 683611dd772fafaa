/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat version [--format F]: docker version. The client part is ours; the
 * server part is GET /version, laid out as docker's template lays it out
 * (Platform.Name, then each component with its details). When the daemon
 * does not answer, the client part is printed and the error follows
 * (exit 1), as docker does. --format takes {"Client": ..., "Server": ...}.
 */

#include <getopt.h>
#include <stdio.h>
#include <sys/utsname.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "moat-config.h"

static const char *arch_go(const char *m)
{
        return streq(m, "x86_64") ? "amd64" : streq(m, "aarch64") ? "arm64" : m;
}

static const char *detail(json_t *d, const char *k)
{
        const char *v = json_string_value(json_object_get(d, k));
        return v ? v : "";
}

int cmd_version(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "format", required_argument, NULL, 'f' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *server = NULL, *client_json = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        const char *format = NULL, *api = MOAT_CLIENT_API_VERSION;
        struct utsname u;
        int c, r;

        while ((c = getopt_long(argc, argv, ":f:", options, NULL)) != -1) {
                if (c == 'f')
                        format = optarg;
                else
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat version\" accepts no arguments.");
        if (format) {
                r = cli_format_parse("version", format, NULL, &fmt, reterr);
                if (r < 0)
                        return r;
        }
        (void) uname(&u);
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = moat_client_api_version(client, &api, reterr);
        if (r >= 0)
                r = moat_client_call(client, "GET", "/version", NULL, NULL, &server, reterr);
        if (r < 0)
                api = MOAT_CLIENT_API_VERSION;
        char osarch[80];
        snprintf(osarch, sizeof(osarch), "linux/%s", arch_go(u.machine));
        if (fmt) {
                _cleanup_free_ char *line = NULL;
                client_json = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Version", MOAT_VERSION, "ApiVersion", api,
                                        "DefaultAPIVersion", MOAT_CLIENT_API_VERSION, "Os", "linux", "Arch",
                                        arch_go(u.machine), "Context", "default", "Host", moat_client_host(client));
                _cleanup_json_ json_t *all = json_pack("{s:O,s:O?}", "Client", client_json, "Server", server);
                if (!all)
                        return moat_error_set(reterr, -ENOMEM, "version");
                int k = cli_format_render(fmt, "version", all, &line, r < 0 ? NULL : reterr);
                if (k >= 0)
                        printf("%s\n", line);
                return r < 0 ? r : k;
        }
        printf("Client:\n"
               " Version:           %s\n"
               " API version:       %s\n"
               " OS/Arch:           %s\n"
               " Host:              %s\n",
               MOAT_VERSION, api, osarch, moat_client_host(client));
        if (r < 0) {
                fflush(stdout);
                return r;
        }
        const char *platform = json_string_value(json_object_get(json_object_get(server, "Platform"), "Name"));
        printf("\nServer:%s%s\n", platform ? " " : "", platform ? platform : "");
        json_t *comp;
        size_t i;
        json_array_foreach(json_object_get(server, "Components"), i, comp) {
                const char *name = json_string_value(json_object_get(comp, "Name"));
                json_t *d = json_object_get(comp, "Details");
                printf(" %s:\n  Version:          %s\n", name ? name : "",
                       json_string_value(json_object_get(comp, "Version")) ?: "");
                if (name && streq(name, "Engine")) {
                        printf("  API version:      %s (minimum version %s)\n"
                               "  Go version:       %s\n"
                               "  Git commit:       %s\n"
                               "  Built:            %s\n"
                               "  OS/Arch:          %s/%s\n"
                               "  Experimental:     %s\n",
                               detail(d, "ApiVersion"), detail(d, "MinAPIVersion"), detail(d, "GoVersion"),
                               detail(d, "GitCommit"), detail(d, "BuildTime"), detail(d, "Os"), detail(d, "Arch"),
                               detail(d, "Experimental"));
                        continue;
                }
                const char *k;
                json_t *v;
                json_object_foreach(d, k, v) {
                        char label[64];
                        snprintf(label, sizeof(label), "%s:", k);
                        printf("  %-17s %s\n", label, json_is_string(v) ? json_string_value(v) : "");
                }
        }
        return 0;
}
