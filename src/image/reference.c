/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Docker image references: the grammar of distribution/reference
 * (reference.go, regexp.go) and docker's normalisation (normalize.go),
 * written as a small hand parser because no C library implements it.
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component [ "/" path-component ]*
 *   domain    := host [ ":" port ]   (host: DNS labels or "[" ipv6 "]")
 *   path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag       := [\w][\w.-]{0,127}
 *   digest    := "sha256:" 64 lower-case hex digits
 *
 * The first component is a domain when it contains '.' or ':', is
 * "localhost", or has an upper-case letter (as docker's splitDockerDomain).
 * Normalisation: no domain -> docker.io, index.docker.io -> docker.io,
 * docker.io/<single> -> docker.io/library/<single>, neither tag nor digest
 * -> tag "latest". The normalised name (domain/path) is at most 255 bytes.
 */

#include "image/reference.h"

#include <stdio.h>

#include "base/cleanup.h"

#define NAME_TOTAL_LENGTH_MAX 255
#define TAG_MAX 128
#define DEFAULT_DOMAIN "docker.io"
#define LEGACY_DEFAULT_DOMAIN "index.docker.io"
#define OFFICIAL_REPO_PREFIX "library/"

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
        return is_alnum(c) || c == '_';
}

static bool is_hex_lower(char c)
{
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* One path component of length n at s. */
static bool path_component_valid(const char *s, size_t n)
{
        size_t i = 0;

        if (n == 0 || !is_lower_alnum(s[0]))
                return false;
        while (i < n) {
                while (i < n && is_lower_alnum(s[i]))
                        i++;
                if (i == n)
                        return true;
                /* separator: ".", "_", "__" or "-"+ */
                if (s[i] == '.')
                        i++;
                else if (s[i] == '_')
                        i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
                else if (s[i] == '-')
                        while (i < n && s[i] == '-')
                                i++;
                else
                        return false;
                if (i >= n || !is_lower_alnum(s[i]))
                        return false;
        }
        return true;
}

/* A DNS-ish label: alnum, or alnum [alnum-]* alnum. */
static bool domain_label_valid(const char *s, size_t n)
{
        if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool domain_valid(const char *s, size_t n)
{
        size_t hostlen;
        const char *colon;

        if (n == 0)
                return false;
        if (s[0] == '[') {
                const char *close = memchr(s, ']', n);
                if (!close || close == s + 1)
                        return false;
                for (const char *p = s + 1; p < close; p++)
                        if (!(is_hex_lower(*p) || (*p >= 'A' && *p <= 'F') || *p == ':'))
                                return false;
                hostlen = (size_t) (close - s) + 1;
        } else {
                colon = memchr(s, ':', n);
                hostlen = colon ? (size_t) (colon - s) : n;
                size_t start = 0;
                for (size_t i = 0; i <= hostlen; i++) {
                        if (i == hostlen || s[i] == '.') {
                                if (!domain_label_valid(s + start, i - start))
                                        return false;
                                start = i + 1;
                        }
                }
        }
        if (hostlen == n)
                return true;
        if (s[hostlen] != ':' || hostlen + 1 == n)
                return false;
        for (size_t i = hostlen + 1; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

static int digest_check(const char *d, struct moat_error **reterr)
{
        const char *colon = strchr(d, ':');

        if (!colon || colon == d)
                return moat_error_setx(reterr, -EINVAL, "invalid digest \"%.100s\": expected algorithm:hex", d);
        if ((size_t) (colon - d) != strlen("sha256") || !startswith(d, "sha256:"))
                return moat_error_setx(reterr, -EINVAL, "unsupported digest algorithm in \"%.100s\": only sha256",
                                       d);
        if (strlen(colon + 1) != 64)
                return moat_error_setx(reterr, -EINVAL,
                                       "invalid digest \"%.100s\": sha256 needs 64 hex digits, got %zu", d,
                                       strlen(colon + 1));
        for (const char *p = colon + 1; *p; p++)
                if (!is_hex_lower(*p))
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid digest \"%.100s\": not lower-case hex at '%c'", d, *p);
        return 0;
}

static int tag_check(const char *t, struct moat_error **reterr)
{
        size_t n = strlen(t);

        if (n == 0)
                return moat_error_setx(reterr, -EINVAL, "empty tag after ':'");
        if (n > TAG_MAX)
                return moat_error_setx(reterr, -EINVAL, "tag is %zu characters long, at most %d allowed", n,
                                       TAG_MAX);
        if (!is_word(t[0]))
                return moat_error_setx(reterr, -EINVAL, "invalid tag \"%s\": must start with a letter, digit or '_'",
                                       t);
        for (size_t i = 1; i < n; i++)
                if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
                        return moat_error_setx(reterr, -EINVAL, "invalid tag \"%s\": character '%c' not allowed",
                                               t, t[i]);
        return 0;
}

void moat_reference_clear(struct moat_reference *r)
{
        if (!r)
                return;
        free(r->domain);
        free(r->path);
        free(r->tag);
        free(r->digest);
        *r = (struct moat_reference) {};
}

int moat_reference_parse(const char *text, struct moat_reference *ret, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL, *domain = NULL, *path = NULL, *tag = NULL, *digest = NULL;
        char *name, *at, *slash, *colon, *remainder;
        size_t len;
        int r;

        if (!text || !*text)
                return moat_error_setx(reterr, -EINVAL, "empty image reference");
        len = strnlen(text, MOAT_REFERENCE_MAX + 1);
        if (len > MOAT_REFERENCE_MAX)
                return moat_error_setx(reterr, -EINVAL, "image reference longer than %d bytes", MOAT_REFERENCE_MAX);

        buf = strdup(text);
        if (!buf)
                return moat_error_set(reterr, -ENOMEM, "reference");
        name = buf;

        /* A bare 64-hex string is an image id, not a name (docker refuses it). */
        if (len == 64) {
                bool allhex = true;
                for (size_t i = 0; i < len; i++)
                        allhex = allhex && is_hex_lower(text[i]);
                if (allhex)
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid reference \"%s\": a 64-digit hex string is an image id, "
                                               "not a repository name",
                                               text);
        }

        at = strchr(name, '@');
        if (at) {
                *at = '\0';
                if (at[1] == '\0')
                        return moat_error_setx(reterr, -EINVAL, "invalid reference \"%.300s\": empty digest after '@'",
                                               text);
                r = digest_check(at + 1, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "invalid reference \"%.300s\"", text);
                digest = strdup(at + 1);
                if (!digest)
                        return moat_error_set(reterr, -ENOMEM, "reference");
        }

        slash = strrchr(name, '/');
        colon = strrchr(slash ? slash : name, ':');
        if (colon) {
                *colon = '\0';
                r = tag_check(colon + 1, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "invalid reference \"%.300s\"", text);
                tag = strdup(colon + 1);
                if (!tag)
                        return moat_error_set(reterr, -ENOMEM, "reference");
        }

        if (*name == '\0')
                return moat_error_setx(reterr, -EINVAL, "invalid reference \"%.300s\": no repository name", text);

        /* Split the domain as docker's splitDockerDomain does. */
        slash = strchr(name, '/');
        if (slash) {
                size_t n = (size_t) (slash - name);
                bool upper = false;
                for (size_t i = 0; i < n; i++)
                        upper = upper || (name[i] >= 'A' && name[i] <= 'Z');
                if (memchr(name, '.', n) || memchr(name, ':', n) || (n == strlen("localhost") &&
                                                                       strncmp(name, "localhost", n) == 0) ||
                    upper) {
                        if (!domain_valid(name, n))
                                return moat_error_setx(reterr, -EINVAL,
                                                       "invalid reference \"%.300s\": invalid registry domain "
                                                       "\"%.*s\"",
                                                       text, (int) n, name);
                        domain = strndup(name, n);
                        remainder = slash + 1;
                } else
                        remainder = name;
        } else
                remainder = name;
        if (!domain)
                domain = strdup(DEFAULT_DOMAIN);
        if (!domain)
                return moat_error_set(reterr, -ENOMEM, "reference");
        if (streq(domain, LEGACY_DEFAULT_DOMAIN)) {
                free(domain);
                domain = strdup(DEFAULT_DOMAIN);
                if (!domain)
                        return moat_error_set(reterr, -ENOMEM, "reference");
        }

        /* Validate the repository path component by component. */
        if (*remainder == '\0')
                return moat_error_setx(reterr, -EINVAL, "invalid reference \"%.300s\": empty repository path", text);
        for (const char *p = remainder; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid reference \"%.300s\": repository name must be lowercase",
                                               text);
        for (const char *c = remainder;;) {
                const char *end = strchrnul(c, '/');
                if (end == c)
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid reference \"%.300s\": empty path component", text);
                if (!path_component_valid(c, (size_t) (end - c)))
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid reference \"%.300s\": invalid path component \"%.*s\"",
                                               text, (int) (end - c), c);
                if (!*end)
                        break;
                c = end + 1;
        }

        if (streq(domain, DEFAULT_DOMAIN) && !strchr(remainder, '/')) {
                if (asprintf(&path, "%s%s", OFFICIAL_REPO_PREFIX, remainder) < 0)
                        return moat_error_set(reterr, -ENOMEM, "reference");
        } else {
                path = strdup(remainder);
                if (!path)
                        return moat_error_set(reterr, -ENOMEM, "reference");
        }

        if (strlen(domain) + 1 + strlen(path) > NAME_TOTAL_LENGTH_MAX)
                return moat_error_setx(reterr, -EINVAL,
                                       "invalid reference \"%.300s\": repository name \"%s/%.300s\" is longer than "
                                       "%d characters",
                                       text, domain, path, NAME_TOTAL_LENGTH_MAX);

        if (!tag && !digest) {
                tag = strdup("latest");
                if (!tag)
                        return moat_error_set(reterr, -ENOMEM, "reference");
        }

        *ret = (struct moat_reference) {
                .domain = TAKE_PTR(domain),
                .path = TAKE_PTR(path),
                .tag = TAKE_PTR(tag),
                .digest = TAKE_PTR(digest),
        };
        return 0;
}

static int format_name(const char *name, const struct moat_reference *r, char **ret)
{
        if (asprintf(ret, "%s%s%s%s%s", name, r->tag ? ":" : "", r->tag ? r->tag : "", r->digest ? "@" : "",
                     r->digest ? r->digest : "") < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

int moat_reference_format(const struct moat_reference *r, char **ret)
{
        _cleanup_free_ char *name = NULL;

        if (!r || !r->domain || !r->path)
                return -EINVAL;
        if (asprintf(&name, "%s/%s", r->domain, r->path) < 0) {
                name = NULL;
                return -ENOMEM;
        }
        return format_name(name, r, ret);
}

int moat_reference_familiar(const struct moat_reference *r, char **ret)
{
        _cleanup_free_ char *name = NULL;

        if (!r || !r->domain || !r->path)
                return -EINVAL;
        if (streq(r->domain, DEFAULT_DOMAIN)) {
                const char *p = r->path;
                if (startswith(p, OFFICIAL_REPO_PREFIX) && !strchr(p + strlen(OFFICIAL_REPO_PREFIX), '/'))
                        p += strlen(OFFICIAL_REPO_PREFIX);
                name = strdup(p);
        } else if (asprintf(&name, "%s/%s", r->domain, r->path) < 0)
                name = NULL;
        if (!name)
                return -ENOMEM;
        return format_name(name, r, ret);
}
