/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of image/reference.c: docker's grammar and normalisation,
 * checked against the exact normalised and familiar forms docker gives,
 * and the errors for each kind of malformed reference.
 */

#include <stdio.h>

#include "base/cleanup.h"
#include "image/reference.h"
#include "tap.h"

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct good {
        const char *in, *domain, *path, *tag, *digest, *full, *familiar;
};

static const struct good goods[] = {
        { "busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest",
          "busybox:latest" },
        { "library/busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest",
          "busybox:latest" },
        { "docker.io/busybox:1.36", "docker.io", "library/busybox", "1.36", NULL,
          "docker.io/library/busybox:1.36", "busybox:1.36" },
        { "index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", NULL,
          "docker.io/library/busybox:latest", "busybox:latest" },
        { "index.docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
          "docker.io/library/busybox:latest", "busybox:latest" },
        { "localhost/x", "localhost", "x", "latest", NULL, "localhost/x:latest", "localhost/x:latest" },
        { "localhost:5000/a/b:tag", "localhost:5000", "a/b", "tag", NULL, "localhost:5000/a/b:tag",
          "localhost:5000/a/b:tag" },
        { "127.0.0.1:5000/x@" D64, "127.0.0.1:5000", "x", NULL, D64, "127.0.0.1:5000/x@" D64,
          "127.0.0.1:5000/x@" D64 },
        { "x:tag@" D64, "docker.io", "library/x", "tag", D64, "docker.io/library/x:tag@" D64, "x:tag@" D64 },
        { "user/app", "docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest", "user/app:latest" },
        { "docker.io/library/a/b", "docker.io", "library/a/b", "latest", NULL, "docker.io/library/a/b:latest",
          "library/a/b:latest" },
        { "quay.io/podman/hello:latest", "quay.io", "podman/hello", "latest", NULL,
          "quay.io/podman/hello:latest", "quay.io/podman/hello:latest" },
        { "ghcr.io/a-b/c_d.e__f--g:v1.2-rc_3", "ghcr.io", "a-b/c_d.e__f--g", "v1.2-rc_3", NULL,
          "ghcr.io/a-b/c_d.e__f--g:v1.2-rc_3", "ghcr.io/a-b/c_d.e__f--g:v1.2-rc_3" },
        { "[::1]:5000/x:y", "[::1]:5000", "x", "y", NULL, "[::1]:5000/x:y", "[::1]:5000/x:y" },
        { "localhost:5000", "docker.io", "library/localhost", "5000", NULL, "docker.io/library/localhost:5000",
          "localhost:5000" },
        { "Registry.Example.COM/x", "Registry.Example.COM", "x", "latest", NULL, "Registry.Example.COM/x:latest",
          "Registry.Example.COM/x:latest" },
        { "busybox:_Tag.1-x", "docker.io", "library/busybox", "_Tag.1-x", NULL,
          "docker.io/library/busybox:_Tag.1-x", "busybox:_Tag.1-x" },
};

struct bad {
        const char *in, *msg;
};

static const struct bad bads[] = {
        { "", "empty image reference" },
        { "UPPER", "repository name must be lowercase" },
        { "docker.io/Busybox", "repository name must be lowercase" },
        { "a//b", "empty path component" },
        { ":tag", "no repository name" },
        { "busybox:", "empty tag" },
        { "busybox@", "empty digest" },
        { "busybox@sha256:abc", "64 hex digits" },
        { "busybox@md5:0123456789abcdef0123456789abcdef", "only sha256" },
        { "busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "lower-case hex" },
        { "busybox@" D64 "@" D64, "64 hex digits" },
        { "busybox:-tag", "must start with" },
        { "busybox:t@g", "expected algorithm:hex" },
        { "busybox:ta/g", "invalid registry domain" },
        { "a/b/", "empty path component" },
        { "/a", "empty path component" },
        { "a..b", "invalid path component" },
        { "a___b", "invalid path component" },
        { "-a", "invalid path component" },
        { "a-", "invalid path component" },
        { "-bad.domain/x", "invalid registry domain" },
        { "localhost:50a0/x", "invalid registry domain" },
        { "host:/x", "invalid registry domain" },
        { "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "image id" },
        { "a b", "invalid path component" },
};

static void check_good(const struct good *g)
{
        struct moat_reference ref = {};
        struct moat_error *err = NULL;
        _cleanup_free_ char *full = NULL, *fam = NULL;
        int r = moat_reference_parse(g->in, &ref, &err);

        is_int(r, 0, "parse \"%s\"%s%s", g->in, err ? ": " : "", err ? err->msg : "");
        moat_error_free(err);
        if (r < 0)
                return;
        ok(streq(ref.domain, g->domain) && streq(ref.path, g->path) &&
                   (g->tag ? ref.tag && streq(ref.tag, g->tag) : !ref.tag) &&
                   (g->digest ? ref.digest && streq(ref.digest, g->digest) : !ref.digest),
           "fields of \"%s\": %s | %s | %s | %s", g->in, ref.domain, ref.path, ref.tag ? ref.tag : "-",
           ref.digest ? ref.digest : "-");
        is_int(moat_reference_format(&ref, &full), 0, "format \"%s\"", g->in);
        is_str(full, g->full, "normalised \"%s\"", g->in);
        is_int(moat_reference_familiar(&ref, &fam), 0, "familiar \"%s\"", g->in);
        is_str(fam, g->familiar, "familiar form of \"%s\"", g->in);
        moat_reference_clear(&ref);
}

static void check_bad(const char *in, const char *msg)
{
        struct moat_reference ref = {};
        struct moat_error *err = NULL;
        int r = moat_reference_parse(in, &ref, &err);

        ok(r == -EINVAL && err && err->msg && strstr(err->msg, msg), "\"%.60s%s\" rejected with \"%s\" (%s)", in,
           strlen(in) > 60 ? "..." : "", msg, err && err->msg ? err->msg : "no error");
        ok(!ref.domain && !ref.path && !ref.tag && !ref.digest, "nothing returned for a bad reference");
        moat_error_free(err);
}

int main(void)
{
        char buf[600];

        for (size_t i = 0; i < ELEMENTSOF(goods); i++)
                check_good(&goods[i]);
        for (size_t i = 0; i < ELEMENTSOF(bads); i++)
                check_bad(bads[i].in, bads[i].msg);

        /* Tag of exactly 128 characters is fine, 129 is not. */
        strcpy(buf, "busybox:");
        memset(buf + 8, 'a', 128);
        buf[8 + 128] = '\0';
        {
                struct moat_reference ref = {};
                is_int(moat_reference_parse(buf, &ref, NULL), 0, "tag of 128 characters accepted");
                is_int(ref.tag ? strlen(ref.tag) : 0, 128, "tag kept whole");
                moat_reference_clear(&ref);
        }
        strcat(buf, "a");
        check_bad(buf, "tag is 129 characters long");

        /* Name length: docker.io/library/ (18) + 237 = 255 is fine, one more is not. */
        memset(buf, 'a', 237);
        buf[237] = '\0';
        {
                struct moat_reference ref = {};
                is_int(moat_reference_parse(buf, &ref, NULL), 0, "normalised name of 255 characters accepted");
                moat_reference_clear(&ref);
        }
        strcat(buf, "a");
        check_bad(buf, "longer than 255");
        memset(buf, 'a', 300);
        memcpy(buf, "example.com/", 12);
        buf[300] = '\0';
        check_bad(buf, "longer than 255");

        /* Over the input bound. */
        {
                _cleanup_free_ char *huge = malloc(MOAT_REFERENCE_MAX + 2);
                memset(huge, 'a', MOAT_REFERENCE_MAX + 1);
                huge[MOAT_REFERENCE_MAX + 1] = '\0';
                check_bad(huge, "longer than 4096 bytes");
        }

        return tap_done();
}
