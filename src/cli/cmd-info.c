/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat info [--format F]: docker info. The client part, then GET /info
 * laid out as docker's cli/command/system/info.go prints the fields that
 * matter for moat (containers, images, storage, cgroups, plugins,
 * runtimes, security options, kernel, OS, CPUs, memory, root dir, debug,
 * live restore) and the daemon's warnings on stderr.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "moat-config.h"

static const char *s(json_t *o, const char *k)
{
        const char *v = json_string_value(json_object_get(o, k));
        return v ? v : "";
}

static json_int_t n(json_t *o, const char *k)
{
        return json_integer_value(json_object_get(o, k));
}

static void strings_line(const char *label, json_t *a)
{
        json_t *v;
        size_t i;
        printf("%s", label);
        json_array_foreach(a, i, v)
                printf(" %s", json_is_string(v) ? json_string_value(v) : "");
        printf("\n");
}

/* docker's units.BytesSize: binary units, four significant digits */
static void bytes_size(double v, char *buf, size_t len)
{
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        size_t u = 0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        snprintf(buf, len, "%.4g%s", v, units[u]);
}

int cmd_info(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "format", required_argument, NULL, 'f' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *info = NULL;
        _cleanup_format_ struct cli_format *fmt = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, ":f:", options, NULL)) != -1) {
                if (c != 'f')
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                r = cli_format_parse("info", optarg, NULL, &fmt, reterr);
                if (r < 0)
                        return r;
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat info\" accepts no arguments.");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        r = moat_client_call(client, "GET", "/info", NULL, NULL, &info, reterr);
        if (fmt) {
                _cleanup_free_ char *line = NULL;
                if (r < 0)
                        return r;
                r = cli_format_render(fmt, "info", info, &line, reterr);
                if (r >= 0)
                        printf("%s\n", line);
                return r;
        }
        printf("Client:\n Version:    %s\n Context:    default\n Debug Mode: %s\n\n", MOAT_VERSION,
               cli->debug ? "true" : "false");
        printf("Server:\n");
        if (r < 0) {
                fflush(stdout);
                return r;
        }
        printf(" Containers: %" JSON_INTEGER_FORMAT "\n  Running: %" JSON_INTEGER_FORMAT "\n  Paused: %" JSON_INTEGER_FORMAT
               "\n  Stopped: %" JSON_INTEGER_FORMAT "\n Images: %" JSON_INTEGER_FORMAT "\n",
               n(info, "Containers"), n(info, "ContainersRunning"), n(info, "ContainersPaused"),
               n(info, "ContainersStopped"), n(info, "Images"));
        printf(" Server Version: %s\n Storage Driver: %s\n", s(info, "ServerVersion"), s(info, "Driver"));
        json_t *pair;
        size_t i;
        json_array_foreach(json_object_get(info, "DriverStatus"), i, pair)
                printf("  %s: %s\n", json_string_value(json_array_get(pair, 0)) ?: "",
                       json_string_value(json_array_get(pair, 1)) ?: "");
        printf(" Cgroup Driver: %s\n Cgroup Version: %s\n", s(info, "CgroupDriver"), s(info, "CgroupVersion"));
        json_t *plugins = json_object_get(info, "Plugins");
        printf(" Plugins:\n");
        strings_line("  Volume:", json_object_get(plugins, "Volume"));
        strings_line("  Network:", json_object_get(plugins, "Network"));
        strings_line("  Log:", json_object_get(plugins, "Log"));
        printf(" Swarm: %s\n", s(json_object_get(info, "Swarm"), "LocalNodeState"));
        printf(" Runtimes:");
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(info, "Runtimes"), k, v)
                printf(" %s", k);
        printf("\n Default Runtime: %s\n Init Binary: %s\n", s(info, "DefaultRuntime"), s(info, "InitBinary"));
        printf(" Security Options:\n");
        json_array_foreach(json_object_get(info, "SecurityOptions"), i, v) {
                /* "name=seccomp,profile=default" */
                _cleanup_free_ char *t = strdup(json_string_value(v) ?: "");
                if (!t)
                        return moat_error_set(reterr, -ENOMEM, "info");
                for (char *p = strtok(t, ","); p; p = strtok(NULL, ",")) {
                        char *eq = strchr(p, '=');
                        if (!eq)
                                continue;
                        *eq = 0;
                        if (streq(p, "name"))
                                printf("  %s\n", eq + 1);
                        else if (eq[1]) {
                                p[0] = (char) (p[0] >= 'a' && p[0] <= 'z' ? p[0] - 'a' + 'A' : p[0]);
                                printf("   %s: %s\n", p, eq + 1);
                        }
                }
        }
        char mem[32];
        bytes_size((double) n(info, "MemTotal"), mem, sizeof(mem));
        printf(" Kernel Version: %s\n Operating System: %s\n OSType: %s\n Architecture: %s\n CPUs: %" JSON_INTEGER_FORMAT
               "\n Total Memory: %s\n Name: %s\n ID: %s\n Docker Root Dir: %s\n Debug Mode: %s\n Experimental: %s\n"
               " Live Restore Enabled: %s\n",
               s(info, "KernelVersion"), s(info, "OperatingSystem"), s(info, "OSType"), s(info, "Architecture"),
               n(info, "NCPU"), mem, s(info, "Name"), s(info, "ID"), s(info, "DockerRootDir"),
               json_is_true(json_object_get(info, "Debug")) ? "true" : "false",
               json_is_true(json_object_get(info, "ExperimentalBuild")) ? "true" : "false",
               json_is_true(json_object_get(info, "LiveRestoreEnabled")) ? "true" : "false");
        fflush(stdout);
        json_array_foreach(json_object_get(info, "Warnings"), i, v)
                if (json_is_string(v))
                        fprintf(stderr, "%s\n", json_string_value(v));
        return 0;
}
