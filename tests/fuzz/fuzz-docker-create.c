/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * libFuzzer entry point for the docker create body translation: any bytes
 * that are JSON must either be refused with a message or turn into a
 * runtime config that moat-runtime's own parser accepts; never crash or
 * leak. The spec step runs without an image and with no engine callbacks
 * (volumes, other containers, group names are refused), an id and the
 * engine's files set; it reads nothing but what a body can name (a seccomp
 * profile path, bind sources, devices), all bounded.
 */

#include <fcntl.h>

#include "engine/docker-spec.h"
#include "oci/runtime-spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        json_error_t jerr;
        json_t *body = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!body)
                return 0;

        struct moat_docker_create *c = NULL;
        struct moat_error *err = NULL;
        struct moat_docker_host host = { .ncpus = 4 };
        if (moat_docker_create_parse(body, &host, &c, &err) < 0) {
                if (!err || !err->msg || c)
                        __builtin_trap();
                moat_error_free(err);
                json_decref(body);
                return 0;
        }
        if (!c || err || !c->config || !c->host_config || !c->image || !*c->image)
                __builtin_trap();

        struct moat_docker_spec_context ctx = {
                .id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                .root_fd = -EBADF,
                .hostname_path = "/nonexistent/hostname",
                .hosts_path = "/nonexistent/hosts",
                .resolv_conf_path = "/nonexistent/resolv.conf",
                .init_path = "/usr/bin/tini",
                .host_hostname = "fuzz",
        };
        struct moat_docker_spec *s = NULL;
        if (moat_docker_create_spec(c, &ctx, &s, &err) < 0) {
                if (!err || !err->msg || s)
                        __builtin_trap();
                moat_error_free(err);
        } else {
                char *text = json_dumps(s->spec, JSON_COMPACT);
                struct oci_config *cfg = NULL;
                if (!text || oci_config_parse(text, strlen(text), &cfg, &err) < 0)
                        __builtin_trap();
                oci_config_free(cfg);
                free(text);
                moat_docker_spec_free(s);
        }
        moat_docker_create_free(c);
        json_decref(body);
        return 0;
}
