/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Root filesystem tarballs into one-layer images (import.h), and the
 * Dockerfile instructions of `docker import --change`.
 *
 * The tarball is read in one pass through two libarchive readers: an inner
 * one (format "raw", the compression filters docker accepts: gzip, bzip2,
 * xz, zstd) yields the uncompressed stream, which feeds the store's ingest
 * (the layer blob, its digest the DiffID) and, through a read callback, an
 * outer tar-only reader that parses every header and skips every body. So
 * the blob holds exactly the bytes given and is known to be a tar before
 * it is committed; bytes after the end-of-archive blocks are kept too, as
 * docker keeps them.
 *
 * The instructions are parsed here, by hand, because no library parses
 * Dockerfiles: a line is INSTRUCTION ARGUMENTS; CMD/ENTRYPOINT/VOLUME take
 * a JSON string array or shell form (CMD/ENTRYPOINT shell form becomes
 * ["/bin/sh","-c",text]); ENV and LABEL take NAME=VALUE words or the
 * legacy "NAME VALUE"; words go through docker's shell-word rules (quotes,
 * backslashes, $VAR and ${VAR[:-+?]word} from the ENV set so far) for the
 * instructions docker expands (ENV, LABEL, EXPOSE, USER, VOLUME, WORKDIR,
 * STOPSIGNAL). The output of expansion is bounded as a whole, so
 * "ENV A=$A$A" repeated cannot grow without limit.
 */

#include "image/import.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/utsname.h>
#include <time.h>

#include "base/cleanup.h"

#define BUF_SIZE (128 * 1024)
/* Everything expansion may produce over all changes. */
#define EXPANSION_BUDGET OCI_IMAGE_DOC_MAX_SIZE
#define ARRAY_MAX 4096u

/* ---- small string builder ---- */

struct sbuf {
        char *s;
        size_t len, cap;
};

static int sbuf_putc(struct sbuf *b, char c)
{
        if (b->len + 2 > b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 64;
                char *n = realloc(b->s, cap);
                if (!n)
                        return -ENOMEM;
                b->s = n;
                b->cap = cap;
        }
        b->s[b->len++] = c;
        b->s[b->len] = '\0';
        return 0;
}

static char *sbuf_take(struct sbuf *b)
{
        char *s = b->s ? b->s : strdup("");
        *b = (struct sbuf) {};
        return s;
}

static int strv_push(char ***v, size_t *n, char *s)
{
        if (!s)
                return -ENOMEM;
        if (*n >= ARRAY_MAX) {
                free(s);
                return -E2BIG;
        }
        char **nv = reallocarray(*v, *n + 2, sizeof(char *));
        if (!nv) {
                free(s);
                return -ENOMEM;
        }
        nv[(*n)++] = s;
        nv[*n] = NULL;
        *v = nv;
        return 0;
}

/* ---- docker's shell-word rules ---- */

struct lexer {
        json_t *env;       /* the Env array so far */
        size_t budget;     /* bytes expansion may still produce */
        const char *instr; /* for messages */
};

static const char *env_get(json_t *env, const char *name, size_t name_len)
{
        size_t i;
        json_t *v;

        json_array_foreach(env, i, v) {
                const char *s = json_string_value(v);
                if (s && strncmp(s, name, name_len) == 0 && s[name_len] == '=')
                        return s + name_len + 1;
        }
        return NULL;
}

struct words {
        char **v;
        size_t n;
        struct sbuf cur;
        bool has_word;
        bool split;
};

static int words_putc(struct lexer *lx, struct words *w, char c, bool quoted, struct moat_error **reterr)
{
        if (w->split && !quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
                if (!w->has_word)
                        return 0;
                w->has_word = false;
                int r = strv_push(&w->v, &w->n, sbuf_take(&w->cur));
                return r < 0 ? moat_error_set(reterr, r, "%s: too many words", lx->instr) : 0;
        }
        if (lx->budget == 0)
                return moat_error_setx(reterr, -E2BIG, "%s: the expanded arguments exceed %u bytes", lx->instr,
                                       EXPANSION_BUDGET);
        lx->budget--;
        w->has_word = true;
        return sbuf_putc(&w->cur, c) < 0 ? moat_error_set(reterr, -ENOMEM, "%s", lx->instr) : 0;
}

static int lex(struct lexer *lx, const char *s, size_t len, bool split, char ***ret, size_t *ret_n,
               struct moat_error **reterr);

static bool is_name_start(char c)
{
        return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_name_char(char c)
{
        return is_name_start(c) || (c >= '0' && c <= '9');
}

/* s[*i] is '$'. Expand into w (unquoted values split in split mode). */
static int expand_var(struct lexer *lx, const char *s, size_t len, size_t *i, struct words *w, bool quoted,
                      struct moat_error **reterr)
{
        size_t p = *i + 1;
        const char *value = NULL;
        _cleanup_free_ char *owned = NULL;
        int r;

        if (p < len && s[p] == '{') {
                size_t name_start = ++p;
                while (p < len && is_name_char(s[p]))
                        p++;
                size_t name_len = p - name_start;
                if (name_len == 0)
                        return moat_error_setx(reterr, -EINVAL, "%s: bad substitution in \"%.*s\"", lx->instr,
                                               (int) len, s);
                const char *var = env_get(lx->env, s + name_start, name_len);
                if (p < len && s[p] == '}') {
                        value = var;
                        p++;
                } else {
                        bool colon = p < len && s[p] == ':';
                        if (colon)
                                p++;
                        char mod = p < len ? s[p] : '\0';
                        if (mod != '-' && mod != '+' && mod != '?')
                                return moat_error_setx(reterr, -EINVAL,
                                                       "%s: unsupported modifier (%c) in substitution \"%.*s\"",
                                                       lx->instr, mod ? mod : ' ', (int) len, s);
                        size_t word_start = ++p;
                        unsigned depth = 0;
                        for (; p < len; p++) {
                                if (s[p] == '\\' && p + 1 < len)
                                        p++;
                                else if (s[p] == '{')
                                        depth++;
                                else if (s[p] == '}' && depth-- == 0)
                                        break;
                        }
                        if (p >= len)
                                return moat_error_setx(reterr, -EINVAL, "%s: missing '}' in \"%.*s\"", lx->instr,
                                                       (int) len, s);
                        _cleanup_strv_free_ char **word = NULL;
                        size_t n_word = 0;
                        r = lex(lx, s + word_start, p - word_start, false, &word, &n_word, reterr);
                        if (r < 0)
                                return r;
                        p++;
                        bool set = var && (!colon || *var);
                        if (mod == '-')
                                value = set ? var : (owned = strdup(n_word ? word[0] : ""));
                        else if (mod == '+')
                                value = set ? (owned = strdup(n_word ? word[0] : "")) : "";
                        else if (!set)
                                return moat_error_setx(reterr, -EINVAL, "%s: %.*s: %s", lx->instr, (int) name_len,
                                                       s + name_start,
                                                       n_word && *word[0] ? word[0] : "is not allowed to be unset");
                        else
                                value = var;
                        if (!value)
                                return moat_error_set(reterr, -ENOMEM, "%s", lx->instr);
                }
        } else if (p < len && is_name_start(s[p])) {
                size_t name_start = p;
                while (p < len && is_name_char(s[p]))
                        p++;
                value = env_get(lx->env, s + name_start, p - name_start);
        } else {
                *i = p;
                return words_putc(lx, w, '$', quoted, reterr);
        }
        *i = p;
        for (const char *c = value ? value : ""; *c; c++) {
                r = words_putc(lx, w, *c, quoted, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Process s like docker's shell lexer: ProcessWord (split false: one
 * string, spaces kept) or ProcessWords (split true). */
static int lex(struct lexer *lx, const char *s, size_t len, bool split, char ***ret, size_t *ret_n,
               struct moat_error **reterr)
{
        struct words w = { .split = split };
        int r = 0;

        for (size_t i = 0; i < len && r >= 0;) {
                char c = s[i];
                if (c == '\\') {
                        if (i + 1 < len) {
                                r = words_putc(lx, &w, s[i + 1], true, reterr);
                                i += 2;
                        } else {
                                r = words_putc(lx, &w, c, true, reterr);
                                i++;
                        }
                } else if (c == '\'') {
                        size_t end = i + 1;
                        while (end < len && s[end] != '\'')
                                end++;
                        if (end >= len) {
                                r = moat_error_setx(reterr, -EINVAL,
                                                    "%s: unexpected end of statement while looking for matching "
                                                    "single-quote in \"%.*s\"", lx->instr, (int) len, s);
                                break;
                        }
                        w.has_word = true;
                        for (size_t k = i + 1; k < end && r >= 0; k++)
                                r = words_putc(lx, &w, s[k], true, reterr);
                        i = end + 1;
                } else if (c == '"') {
                        w.has_word = true;
                        for (i++; i < len && s[i] != '"' && r >= 0;) {
                                if (s[i] == '\\' && i + 1 < len &&
                                    (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == '$')) {
                                        r = words_putc(lx, &w, s[i + 1], true, reterr);
                                        i += 2;
                                } else if (s[i] == '$')
                                        r = expand_var(lx, s, len, &i, &w, true, reterr);
                                else
                                        r = words_putc(lx, &w, s[i++], true, reterr);
                        }
                        if (r >= 0 && i >= len)
                                r = moat_error_setx(reterr, -EINVAL,
                                                    "%s: unexpected end of statement while looking for matching "
                                                    "double-quote in \"%.*s\"", lx->instr, (int) len, s);
                        i++;
                } else if (c == '$')
                        r = expand_var(lx, s, len, &i, &w, false, reterr);
                else {
                        r = words_putc(lx, &w, c, false, reterr);
                        i++;
                }
        }
        if (r >= 0 && (w.has_word || !split)) {
                r = strv_push(&w.v, &w.n, sbuf_take(&w.cur));
                if (r < 0)
                        r = moat_error_set(reterr, r, "%s", lx->instr);
        }
        free(w.cur.s);
        if (r < 0) {
                strv_free(w.v);
                return r;
        }
        if (!w.v) {
                w.v = calloc(1, sizeof(char *));
                if (!w.v)
                        return moat_error_set(reterr, -ENOMEM, "%s", lx->instr);
        }
        *ret = w.v;
        *ret_n = w.n;
        return 0;
}

static int lex_one(struct lexer *lx, const char *s, size_t len, char **ret, struct moat_error **reterr)
{
        _cleanup_strv_free_ char **v = NULL;
        size_t n;
        int r = lex(lx, s, len, false, &v, &n, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(v[0]);
        return 0;
}

/* docker's parseWords: split on unquoted whitespace, quotes and
 * backslashes kept (they are processed per word afterwards). */
static int raw_words(const char *s, char ***ret, size_t *ret_n)
{
        char **v = NULL;
        size_t n = 0;

        for (const char *p = s; *p;) {
                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        break;
                const char *start = p;
                char quote = 0;
                for (; *p; p++) {
                        if (*p == '\\' && p[1]) {
                                p++;
                                continue;
                        }
                        if (quote) {
                                if (*p == quote)
                                        quote = 0;
                        } else if (*p == '\'' || *p == '"')
                                quote = *p;
                        else if (*p == ' ' || *p == '\t')
                                break;
                }
                int r = strv_push(&v, &n, strndup(start, (size_t) (p - start)));
                if (r < 0) {
                        strv_free(v);
                        return r;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* ---- instructions ---- */

enum json_form { NOT_JSON, JSON_FORM };

/* A JSON array of strings (parseMaybeJSON): NOT_JSON when rest is not a
 * JSON array; an array holding anything but strings is an error. */
static int parse_json_array(const char *instr, const char *rest, json_t **ret, struct moat_error **reterr)
{
        json_t *a;

        if (rest[0] != '[')
                return NOT_JSON;
        a = json_loads(rest, 0, NULL);
        if (!a || !json_is_array(a)) {
                json_decref(a);
                return NOT_JSON;
        }
        if (json_array_size(a) > ARRAY_MAX) {
                json_decref(a);
                return moat_error_setx(reterr, -E2BIG, "%s: more than %u elements", instr, ARRAY_MAX);
        }
        size_t i;
        json_t *v;
        json_array_foreach(a, i, v)
                if (!json_is_string(v)) {
                        json_decref(a);
                        return moat_error_setx(reterr, -EINVAL,
                                               "%s: when using JSON array syntax, arrays must be comprised of "
                                               "strings only", instr);
                }
        *ret = a;
        return JSON_FORM;
}

static int do_cmd(json_t *cfg, const char *key, const char *instr, const char *rest, struct moat_error **reterr)
{
        json_t *a = NULL;
        int r;

        if (!*rest)
                return moat_error_setx(reterr, -EINVAL, "%s requires at least one argument", instr);
        r = parse_json_array(instr, rest, &a, reterr);
        if (r < 0)
                return r;
        if (r == NOT_JSON)
                a = json_pack("[s, s, s]", "/bin/sh", "-c", rest);
        if (!a || json_object_set_new(cfg, key, a) < 0)
                return moat_error_set(reterr, -ENOMEM, "%s", instr);
        return 0;
}

static int push_pair(struct lexer *lx, const char *k, size_t klen, const char *v, size_t vlen, char ***out,
                     size_t *n_out, struct moat_error **reterr)
{
        char *key = NULL, *value = NULL;
        int r = lex_one(lx, k, klen, &key, reterr);
        if (r < 0)
                return r;
        r = lex_one(lx, v, vlen, &value, reterr);
        if (r < 0) {
                free(key);
                return r;
        }
        r = strv_push(out, n_out, key);
        if (r < 0) {
                free(value);
                return moat_error_set(reterr, r, "%s", lx->instr);
        }
        r = strv_push(out, n_out, value);
        return r < 0 ? moat_error_set(reterr, r, "%s", lx->instr) : 0;
}

/* NAME=VALUE words, or the legacy "NAME VALUE"; pairs alternate in ret. */
static int name_vals(struct lexer *lx, const char *rest, char ***ret, size_t *ret_n, struct moat_error **reterr)
{
        _cleanup_strv_free_ char **raw = NULL;
        char **out = NULL;
        size_t n_raw = 0, n_out = 0;
        int r;

        r = raw_words(rest, &raw, &n_raw);
        if (r < 0)
                return moat_error_set(reterr, r, "%s", lx->instr);
        if (n_raw == 0)
                return moat_error_setx(reterr, -EINVAL, "%s requires at least one argument", lx->instr);

        if (!strchr(raw[0], '=')) {
                size_t klen = strcspn(rest, " \t");
                const char *value = rest + klen;
                value += strspn(value, " \t");
                if (!*value)
                        return moat_error_setx(reterr, -EINVAL, "%s must have two arguments", lx->instr);
                r = push_pair(lx, rest, klen, value, strlen(value), &out, &n_out, reterr);
        } else
                for (size_t i = 0; i < n_raw && r >= 0; i++) {
                        char *eq = strchr(raw[i], '=');
                        if (!eq) {
                                r = moat_error_setx(reterr, -EINVAL,
                                                    "%s: syntax error - can't find = in \"%s\". Must be of the "
                                                    "form: name=value", lx->instr, raw[i]);
                                break;
                        }
                        r = push_pair(lx, raw[i], (size_t) (eq - raw[i]), eq + 1, strlen(eq + 1), &out, &n_out,
                                      reterr);
                }
        if (r < 0) {
                strv_free(out);
                return r;
        }
        for (size_t i = 0; i < n_out; i += 2)
                if (!*out[i]) {
                        strv_free(out);
                        return moat_error_setx(reterr, -EINVAL, "%s names can not be blank", lx->instr);
                }
        *ret = out;
        *ret_n = n_out;
        return 0;
}

static int do_env(struct lexer *lx, json_t *cfg, const char *rest, struct moat_error **reterr)
{
        _cleanup_strv_free_ char **kv = NULL;
        size_t n;
        int r = name_vals(lx, rest, &kv, &n, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i += 2) {
                _cleanup_free_ char *entry = NULL;
                size_t klen = strlen(kv[i]), k;
                json_t *v;
                if (asprintf(&entry, "%s=%s", kv[i], kv[i + 1]) < 0)
                        return moat_error_set(reterr, -ENOMEM, "ENV");
                json_array_foreach(lx->env, k, v)
                        if (strncmp(json_string_value(v), entry, klen + 1) == 0)
                                break;
                if (k < json_array_size(lx->env))
                        r = json_array_set_new(lx->env, k, json_string(entry));
                else if (json_array_size(lx->env) >= ARRAY_MAX)
                        return moat_error_setx(reterr, -E2BIG, "ENV: more than %u variables", ARRAY_MAX);
                else
                        r = json_array_append_new(lx->env, json_string(entry));
                if (r < 0)
                        return moat_error_setx(reterr, -EINVAL, "ENV: \"%s\" is not valid UTF-8", kv[i]);
        }
        return 0;
}

static json_t *object_member(json_t *cfg, const char *key)
{
        json_t *o = json_object_get(cfg, key);
        if (json_is_object(o))
                return o;
        o = json_object();
        if (!o || json_object_set_new(cfg, key, o) < 0)
                return NULL;
        return o;
}

static int do_label(struct lexer *lx, json_t *cfg, const char *rest, struct moat_error **reterr)
{
        _cleanup_strv_free_ char **kv = NULL;
        size_t n;
        int r = name_vals(lx, rest, &kv, &n, reterr);
        if (r < 0)
                return r;
        json_t *labels = object_member(cfg, "Labels");
        if (!labels)
                return moat_error_set(reterr, -ENOMEM, "LABEL");
        for (size_t i = 0; i < n; i += 2) {
                if (json_object_size(labels) >= ARRAY_MAX)
                        return moat_error_setx(reterr, -E2BIG, "LABEL: more than %u labels", ARRAY_MAX);
                if (json_object_set_new(labels, kv[i], json_string(kv[i + 1])) < 0)
                        return moat_error_setx(reterr, -EINVAL, "LABEL: \"%s\" is not valid UTF-8", kv[i]);
        }
        return 0;
}

static int parse_port(const char *s, size_t len, unsigned *ret)
{
        unsigned v = 0;

        if (len == 0 || len > 5)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        if (v > 65535)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int do_expose(struct lexer *lx, json_t *cfg, const char *rest, struct moat_error **reterr)
{
        _cleanup_strv_free_ char **words = NULL;
        size_t n;
        int r;

        r = lex(lx, rest, strlen(rest), true, &words, &n, reterr);
        if (r < 0)
                return r;
        if (n == 0)
                return moat_error_setx(reterr, -EINVAL, "EXPOSE requires at least one argument");
        json_t *ports = object_member(cfg, "ExposedPorts");
        if (!ports)
                return moat_error_set(reterr, -ENOMEM, "EXPOSE");
        for (size_t i = 0; i < n; i++) {
                const char *w = words[i];
                /* ip:hostPort:containerPort forms: only the container port counts. */
                const char *colon = strrchr(w, ':');
                const char *spec = colon ? colon + 1 : w;
                const char *slash = strchr(spec, '/');
                size_t plen = slash ? (size_t) (slash - spec) : strlen(spec);
                char proto[8] = "tcp";
                unsigned lo, hi;

                if (slash) {
                        size_t k, l = strlen(slash + 1);
                        if (l == 0 || l >= sizeof(proto))
                                return moat_error_setx(reterr, -EINVAL, "EXPOSE: invalid proto: %s", slash + 1);
                        for (k = 0; k < l; k++)
                                proto[k] = (char) tolower((unsigned char) slash[1 + k]);
                        proto[k] = '\0';
                        if (!streq(proto, "tcp") && !streq(proto, "udp") && !streq(proto, "sctp"))
                                return moat_error_setx(reterr, -EINVAL, "EXPOSE: invalid proto: %s", slash + 1);
                }
                const char *dash = memchr(spec, '-', plen);
                if (dash) {
                        if (parse_port(spec, (size_t) (dash - spec), &lo) < 0 ||
                            parse_port(dash + 1, plen - (size_t) (dash - spec) - 1, &hi) < 0 || hi < lo)
                                return moat_error_setx(reterr, -EINVAL, "EXPOSE: invalid containerPort: %s", w);
                } else {
                        if (parse_port(spec, plen, &lo) < 0)
                                return moat_error_setx(reterr, -EINVAL, "EXPOSE: invalid containerPort: %s", w);
                        hi = lo;
                }
                for (unsigned p = lo; p <= hi; p++) {
                        char key[32];
                        if (json_object_size(ports) >= MOAT_IMPORT_PORTS_MAX)
                                return moat_error_setx(reterr, -E2BIG, "EXPOSE: more than %u ports",
                                                       MOAT_IMPORT_PORTS_MAX);
                        snprintf(key, sizeof(key), "%u/%s", p, proto);
                        if (json_object_set_new(ports, key, json_object()) < 0)
                                return moat_error_set(reterr, -ENOMEM, "EXPOSE");
                }
        }
        return 0;
}

static int do_volume(struct lexer *lx, json_t *cfg, const char *rest, struct moat_error **reterr)
{
        _cleanup_strv_free_ char **raw = NULL;
        size_t n = 0;
        json_t *a = NULL;
        int r;

        r = parse_json_array("VOLUME", rest, &a, reterr);
        if (r < 0)
                return r;
        if (r == JSON_FORM) {
                size_t i;
                json_t *v;
                json_array_foreach(a, i, v) {
                        r = strv_push(&raw, &n, strdup(json_string_value(v)));
                        if (r < 0)
                                break;
                }
                json_decref(a);
        } else
                r = raw_words(rest, &raw, &n);
        if (r < 0)
                return moat_error_set(reterr, r, "VOLUME");
        if (n == 0)
                return moat_error_setx(reterr, -EINVAL, "VOLUME requires at least one argument");
        json_t *vols = object_member(cfg, "Volumes");
        if (!vols)
                return moat_error_set(reterr, -ENOMEM, "VOLUME");
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *v = NULL;
                r = lex_one(lx, raw[i], strlen(raw[i]), &v, reterr);
                if (r < 0)
                        return r;
                char *start = v + strspn(v, " \t");
                size_t l = strlen(start);
                while (l > 0 && (start[l - 1] == ' ' || start[l - 1] == '\t'))
                        start[--l] = '\0';
                if (!*start)
                        return moat_error_setx(reterr, -EINVAL, "VOLUME specified can not be an empty string");
                if (json_object_size(vols) >= ARRAY_MAX)
                        return moat_error_setx(reterr, -E2BIG, "VOLUME: more than %u volumes", ARRAY_MAX);
                if (json_object_set_new(vols, start, json_object()) < 0)
                        return moat_error_setx(reterr, -EINVAL, "VOLUME: \"%s\" is not valid UTF-8", start);
        }
        return 0;
}

/* Go's path.Clean of an absolute path. */
static void path_clean(char *p)
{
        char *out = p, *in = p;

        while (*in) {
                while (*in == '/')
                        in++;
                if (!*in)
                        break;
                char *end = strchrnul(in, '/');
                size_t l = (size_t) (end - in);
                if (l == 1 && in[0] == '.') {
                } else if (l == 2 && in[0] == '.' && in[1] == '.') {
                        while (out > p && *--out != '/')
                                ;
                } else {
                        *out++ = '/';
                        memmove(out, in, l);
                        out += l;
                }
                in = end;
        }
        if (out == p)
                *out++ = '/';
        *out = '\0';
}

static int do_workdir(struct lexer *lx, json_t *cfg, const char *rest, struct moat_error **reterr)
{
        _cleanup_free_ char *v = NULL, *joined = NULL;
        int r = lex_one(lx, rest, strlen(rest), &v, reterr);
        if (r < 0)
                return r;
        if (!*v)
                return moat_error_setx(reterr, -EINVAL, "WORKDIR requires exactly one argument");
        if (v[0] != '/') {
                const char *cur = json_string_value(json_object_get(cfg, "WorkingDir"));
                if (asprintf(&joined, "/%s/%s", cur ? cur : "", v) < 0)
                        return moat_error_set(reterr, -ENOMEM, "WORKDIR");
                path_clean(joined);
        }
        if (json_object_set_new(cfg, "WorkingDir", json_string(joined ? joined : v)) < 0)
                return moat_error_setx(reterr, -EINVAL, "WORKDIR: \"%s\" is not valid UTF-8", v);
        return 0;
}

static int do_user(struct lexer *lx, json_t *cfg, const char *rest, struct moat_error **reterr)
{
        _cleanup_free_ char *v = NULL;
        int r = lex_one(lx, rest, strlen(rest), &v, reterr);
        if (r < 0)
                return r;
        if (!*v)
                return moat_error_setx(reterr, -EINVAL, "USER requires exactly one argument");
        if (json_object_set_new(cfg, "User", json_string(v)) < 0)
                return moat_error_setx(reterr, -EINVAL, "USER: \"%s\" is not valid UTF-8", v);
        return 0;
}

/* docker's signal.ParseSignal: a number, or a name with or without SIG. */
static bool valid_signal(const char *s)
{
        static const char *const aliases[] = { "IOT", "CLD", "POLL" };
        char up[32];
        size_t i;

        if (!*s)
                return false;
        if (strspn(s, "0123456789") == strlen(s)) {
                unsigned v = 0;
                if (parse_port(s, strlen(s), &v) < 0)
                        return false;
                return v >= 1 && v <= (unsigned) SIGRTMAX;
        }
        for (i = 0; s[i] && i + 1 < sizeof(up); i++)
                up[i] = (char) toupper((unsigned char) s[i]);
        if (s[i])
                return false;
        up[i] = '\0';
        const char *name = startswith(up, "SIG") ? up + 3 : up;
        for (int sig = 1; sig < 32; sig++) {
                const char *abbrev = sigabbrev_np(sig);
                if (abbrev && streq(abbrev, name))
                        return true;
        }
        for (i = 0; i < ELEMENTSOF(aliases); i++)
                if (streq(aliases[i], name))
                        return true;
        const int nrt = SIGRTMAX - SIGRTMIN;
        if (streq(name, "RTMIN") || streq(name, "RTMAX"))
                return true;
        for (int k = 1; k < nrt; k++) {
                char buf[32];
                snprintf(buf, sizeof(buf), "RTMIN+%d", k);
                if (streq(buf, name))
                        return true;
                snprintf(buf, sizeof(buf), "RTMAX-%d", k);
                if (streq(buf, name))
                        return true;
        }
        return false;
}

static int do_stopsignal(struct lexer *lx, json_t *cfg, const char *rest, struct moat_error **reterr)
{
        _cleanup_free_ char *v = NULL;
        int r = lex_one(lx, rest, strlen(rest), &v, reterr);
        if (r < 0)
                return r;
        if (!*v)
                return moat_error_setx(reterr, -EINVAL, "STOPSIGNAL requires exactly one argument");
        if (!valid_signal(v))
                return moat_error_setx(reterr, -EINVAL, "STOPSIGNAL: invalid signal: %s", v);
        if (json_object_set_new(cfg, "StopSignal", json_string(v)) < 0)
                return moat_error_set(reterr, -ENOMEM, "STOPSIGNAL");
        return 0;
}

/* Dockerfile instructions docker import does not allow. */
static const char *const not_allowed[] = {
        "FROM", "RUN", "COPY", "ADD", "ARG", "MAINTAINER", "SHELL",
};

static int apply_line(json_t *cfg, json_t *env, size_t *budget, const char *line, bool *cmd_set,
                      struct moat_error **reterr)
{
        char instr[16];
        size_t ilen = strcspn(line, " \t");
        const char *rest = line + ilen;
        _cleanup_free_ char *args = NULL;
        int r;

        if (ilen >= sizeof(instr))
                return moat_error_setx(reterr, -EINVAL, "unknown instruction: %.64s", line);
        for (size_t i = 0; i < ilen; i++)
                instr[i] = (char) toupper((unsigned char) line[i]);
        instr[ilen] = '\0';
        rest += strspn(rest, " \t");
        args = strdup(rest);
        if (!args)
                return moat_error_set(reterr, -ENOMEM, "%s", instr);
        size_t l = strlen(args);
        while (l > 0 && (args[l - 1] == ' ' || args[l - 1] == '\t' || args[l - 1] == '\r'))
                args[--l] = '\0';

        struct lexer lx = { .env = env, .budget = *budget, .instr = instr };
        if (streq(instr, "CMD")) {
                r = do_cmd(cfg, "Cmd", instr, args, reterr);
                *cmd_set = true;
        } else if (streq(instr, "ENTRYPOINT")) {
                r = do_cmd(cfg, "Entrypoint", instr, args, reterr);
                /* As in a Dockerfile: ENTRYPOINT resets a CMD not set by these changes. */
                if (r >= 0 && !*cmd_set)
                        (void) json_object_del(cfg, "Cmd");
        } else if (streq(instr, "ENV"))
                r = do_env(&lx, cfg, args, reterr);
        else if (streq(instr, "LABEL"))
                r = do_label(&lx, cfg, args, reterr);
        else if (streq(instr, "EXPOSE"))
                r = do_expose(&lx, cfg, args, reterr);
        else if (streq(instr, "VOLUME"))
                r = do_volume(&lx, cfg, args, reterr);
        else if (streq(instr, "WORKDIR"))
                r = do_workdir(&lx, cfg, args, reterr);
        else if (streq(instr, "USER"))
                r = do_user(&lx, cfg, args, reterr);
        else if (streq(instr, "STOPSIGNAL"))
                r = do_stopsignal(&lx, cfg, args, reterr);
        else if (streq(instr, "ONBUILD") || streq(instr, "HEALTHCHECK"))
                r = moat_error_setx(reterr, -EOPNOTSUPP, "%s is not supported as a change yet", instr);
        else {
                r = -EINVAL;
                for (size_t i = 0; i < ELEMENTSOF(not_allowed); i++)
                        if (streq(not_allowed[i], instr))
                                return moat_error_setx(reterr, -EINVAL,
                                                       "%s is not a valid change command (allowed: CMD, "
                                                       "ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, "
                                                       "STOPSIGNAL)", instr);
                return moat_error_setx(reterr, -EINVAL, "unknown instruction: %s", instr);
        }
        *budget = lx.budget;
        return r;
}

static int apply_change(json_t *cfg, json_t *env, size_t *budget, const char *change, bool *cmd_set,
                        struct moat_error **reterr)
{
        struct sbuf line = {};
        int r = 0;

        /* Logical lines: "\" at the end of a line continues it; blank lines
         * and "#" comments are skipped, as in a Dockerfile. */
        for (const char *p = change; r >= 0;) {
                const char *nl = strchrnul(p, '\n');
                const char *s = p, *e = nl;
                while (s < e && (*s == ' ' || *s == '\t'))
                        s++;
                bool comment = s < e && *s == '#';
                while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                        e--;
                bool cont = e > s && e[-1] == '\\' && *nl;
                if (cont)
                        e--;
                if (!comment)
                        for (const char *c = s; c < e && r >= 0; c++)
                                r = sbuf_putc(&line, *c);
                if (r < 0) {
                        r = moat_error_set(reterr, r, "change");
                        break;
                }
                if (!cont && line.len > 0) {
                        r = apply_line(cfg, env, budget, line.s, cmd_set, reterr);
                        if (r < 0)
                                break;
                        line.len = 0;
                        line.s[0] = '\0';
                }
                if (!*nl)
                        break;
                p = nl + 1;
        }
        free(line.s);
        return r;
}

int moat_import_apply_changes(json_t *config, char *const *changes, size_t n, struct moat_error **reterr)
{
        json_auto_t *cfg = NULL;
        json_t *env;
        size_t budget = EXPANSION_BUDGET;
        bool cmd_set = false;
        int r;

        if (!json_is_object(config))
                return moat_error_setx(reterr, -EINVAL, "changes: the config is not an object");
        if (n > MOAT_IMPORT_CHANGES_MAX)
                return moat_error_setx(reterr, -E2BIG, "more than %u changes", MOAT_IMPORT_CHANGES_MAX);
        cfg = json_deep_copy(config);
        if (!cfg)
                return moat_error_set(reterr, -ENOMEM, "changes");
        env = json_object_get(cfg, "Env");
        if (!json_is_array(env)) {
                env = json_array();
                if (!env || json_object_set_new(cfg, "Env", env) < 0)
                        return moat_error_set(reterr, -ENOMEM, "changes");
        }
        for (size_t i = 0; i < n; i++) {
                if (strnlen(changes[i], MOAT_IMPORT_CHANGE_LEN_MAX + 1) > MOAT_IMPORT_CHANGE_LEN_MAX)
                        return moat_error_setx(reterr, -E2BIG, "change %zu: longer than %u bytes", i + 1,
                                               MOAT_IMPORT_CHANGE_LEN_MAX);
                r = apply_change(cfg, env, &budget, changes[i], &cmd_set, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "change \"%.200s\"", changes[i]);
        }
        if (json_array_size(env) == 0)
                (void) json_object_del(cfg, "Env");
        json_object_clear(config);
        if (json_object_update(config, cfg) < 0)
                return moat_error_set(reterr, -ENOMEM, "changes");
        return 0;
}

/* ---- platform ---- */

static int normalise_arch(const char *arch, const char *variant, char **ret_arch, char **ret_variant)
{
        static const struct {
                const char *in, *arch, *variant;
        } map[] = {
                { "x86_64", "amd64", NULL }, { "x86-64", "amd64", NULL }, { "amd64", "amd64", NULL },
                { "aarch64", "arm64", NULL }, { "arm64", "arm64", NULL },
                { "armhf", "arm", "v7" }, { "armel", "arm", "v6" }, { "armv7l", "arm", "v7" },
                { "armv6l", "arm", "v6" }, { "arm", "arm", NULL },
                { "i386", "386", NULL }, { "i486", "386", NULL }, { "i586", "386", NULL },
                { "i686", "386", NULL }, { "386", "386", NULL },
                { "ppc64le", "ppc64le", NULL }, { "s390x", "s390x", NULL }, { "riscv64", "riscv64", NULL },
                { "mips64le", "mips64le", NULL }, { "loongarch64", "loong64", NULL }, { "loong64", "loong64", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                if (strcasecmp(map[i].in, arch) != 0)
                        continue;
                const char *a = map[i].arch, *v = variant && *variant ? variant : map[i].variant;
                if (streq(a, "arm64") && v && (streq(v, "v8") || streq(v, "8")))
                        v = NULL;
                if (streq(a, "arm") && !v)
                        v = "v7";
                if (streq(a, "amd64") && v && streq(v, "v1"))
                        v = NULL;
                *ret_arch = strdup(a);
                *ret_variant = v ? strdup(v) : NULL;
                if (!*ret_arch || (v && !*ret_variant)) {
                        free(*ret_arch);
                        free(*ret_variant);
                        return -ENOMEM;
                }
                return 0;
        }
        return -EINVAL;
}

int moat_import_platform(const char *text, struct oci_platform *ret, struct moat_error **reterr)
{
        _cleanup_free_ char *copy = NULL, *arch = NULL, *variant = NULL, *os = NULL;
        struct utsname u;
        const char *os_part, *arch_part, *variant_part = NULL;
        int r;

        if (text) {
                if (strlen(text) > 128)
                        return moat_error_setx(reterr, -EINVAL, "platform \"%.64s...\": too long", text);
                copy = strdup(text);
                if (!copy)
                        return moat_error_set(reterr, -ENOMEM, "platform");
                char *save = NULL;
                os_part = strtok_r(copy, "/", &save);
                arch_part = os_part ? strtok_r(NULL, "/", &save) : NULL;
                variant_part = arch_part ? strtok_r(NULL, "/", &save) : NULL;
                if (!os_part || !arch_part || strtok_r(NULL, "/", &save))
                        return moat_error_setx(reterr, -EINVAL,
                                               "platform \"%s\": must be os/arch or os/arch/variant", text);
                if (!streq(os_part, "linux"))
                        return moat_error_setx(reterr, -EINVAL,
                                               "platform \"%s\": operating system \"%s\" is not supported", text,
                                               os_part);
        } else {
                if (uname(&u) < 0)
                        return moat_error_set(reterr, errno, "uname");
                os_part = "linux";
                arch_part = u.machine;
        }
        r = normalise_arch(arch_part, variant_part, &arch, &variant);
        if (r == -ENOMEM)
                return moat_error_set(reterr, r, "platform");
        if (r < 0)
                return moat_error_setx(reterr, -EINVAL, "platform \"%s\": unknown architecture \"%s\"",
                                       text ? text : "(host)", arch_part);
        os = strdup(os_part);
        if (!os)
                return moat_error_set(reterr, -ENOMEM, "platform");
        *ret = (struct oci_platform) {
                .os = TAKE_PTR(os),
                .architecture = TAKE_PTR(arch),
                .variant = TAKE_PTR(variant),
        };
        return 0;
}

static void platform_clear(struct oci_platform *p)
{
        free(p->os);
        free(p->architecture);
        free(p->variant);
        *p = (struct oci_platform) {};
}

/* ---- the layer ---- */

struct feeder {
        struct archive *inner;
        struct moat_ingest *ingest;
        char *buf;
        uint64_t total, max_bytes;
        int err;
        struct moat_error *error;
};

static la_ssize_t feed_read(struct archive *outer, void *userdata, const void **ret)
{
        struct feeder *f = userdata;
        la_ssize_t k;

        if (f->err < 0)
                return -1;
        k = archive_read_data(f->inner, f->buf, BUF_SIZE);
        if (k < 0) {
                f->err = moat_error_setx(&f->error, -EINVAL, "%s",
                                         archive_error_string(f->inner) ?: "decompression failed");
                archive_set_error(outer, EINVAL, "%s", f->error->msg);
                return -1;
        }
        if (k == 0)
                return 0;
        if (f->total + (uint64_t) k > f->max_bytes) {
                f->err = moat_error_setx(&f->error, -EFBIG, "the tar is larger than %" PRIu64 " bytes",
                                         f->max_bytes);
                archive_set_error(outer, EFBIG, "%s", f->error->msg);
                return -1;
        }
        int r = moat_ingest_write(f->ingest, f->buf, (size_t) k, &f->error);
        if (r < 0) {
                f->err = r;
                archive_set_error(outer, -r, "%s", f->error ? f->error->msg : strerror(-r));
                return -1;
        }
        f->total += (uint64_t) k;
        *ret = f->buf;
        return k;
}

static void archive_readp(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

/* The layer blob: stream in_fd through the ingest while checking it is a tar. */
static int import_layer(struct moat_store *s, int in_fd, int64_t max_entries, int64_t max_bytes,
                        char **ret_digest, int64_t *ret_size, uint64_t *ret_entries, struct moat_error **reterr)
{
        _cleanup_(archive_readp) struct archive *inner = NULL, *outer = NULL;
        _cleanup_free_ char *buf = malloc(BUF_SIZE);
        struct archive_entry *e;
        struct feeder f = { .max_bytes = (uint64_t) max_bytes };
        uint64_t entries = 0;
        int r;

        if (!buf)
                return moat_error_set(reterr, -ENOMEM, "import");
        f.buf = buf;
        inner = archive_read_new();
        outer = archive_read_new();
        if (!inner || !outer)
                return moat_error_set(reterr, -ENOMEM, "import");
        if (archive_read_support_filter_gzip(inner) != ARCHIVE_OK ||
            archive_read_support_filter_bzip2(inner) != ARCHIVE_OK ||
            archive_read_support_filter_xz(inner) != ARCHIVE_OK ||
            archive_read_support_filter_zstd(inner) != ARCHIVE_OK ||
            archive_read_support_format_raw(inner) != ARCHIVE_OK ||
            archive_read_support_format_empty(inner) != ARCHIVE_OK ||
            archive_read_support_format_tar(outer) != ARCHIVE_OK)
                return moat_error_setx(reterr, -EIO, "import: libarchive: %s",
                                       archive_error_string(inner) ?: archive_error_string(outer));
        if (archive_read_open_fd(inner, in_fd, BUF_SIZE) != ARCHIVE_OK)
                return moat_error_setx(reterr, -EINVAL, "not a tar archive: %s", archive_error_string(inner));
        r = archive_read_next_header(inner, &e);
        if (r == ARCHIVE_EOF)
                return moat_error_setx(reterr, -EINVAL, "not a tar archive: the input is empty");
        if (r != ARCHIVE_OK)
                return moat_error_setx(reterr, -EINVAL, "not a tar archive: %s", archive_error_string(inner));

        r = moat_store_ingest_begin(s, NULL, -1, &f.ingest, reterr);
        if (r < 0)
                return r;
        f.inner = inner;
        if (archive_read_open(outer, &f, NULL, feed_read, NULL) != ARCHIVE_OK) {
                r = f.err < 0 ? f.err : -EINVAL;
                goto fail_archive;
        }
        for (;;) {
                r = archive_read_next_header(outer, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
                        r = f.err < 0 ? f.err : -EINVAL;
                        goto fail_archive;
                }
                if (++entries > (uint64_t) max_entries) {
                        moat_ingest_abort(f.ingest);
                        return moat_error_setx(reterr, -E2BIG, "the tar has more than %" PRId64 " entries",
                                               max_entries);
                }
                if (!archive_entry_pathname(e) || !*archive_entry_pathname(e)) {
                        moat_ingest_abort(f.ingest);
                        return moat_error_setx(reterr, -EINVAL, "tar entry %" PRIu64 " has no name", entries);
                }
                if (archive_read_data_skip(outer) != ARCHIVE_OK) {
                        r = f.err < 0 ? f.err : -EINVAL;
                        goto fail_archive;
                }
        }
        if (entries == 0 && f.total == 0) {
                moat_ingest_abort(f.ingest);
                return moat_error_setx(reterr, -EINVAL, "not a tar archive: the input is empty");
        }
        /* What follows the end-of-archive blocks belongs to the blob too. */
        for (;;) {
                const void *p;
                la_ssize_t k = feed_read(outer, &f, &p);
                if (k == 0)
                        break;
                if (k < 0) {
                        moat_ingest_abort(f.ingest);
                        r = f.err;
                        if (reterr && !*reterr)
                                *reterr = TAKE_PTR(f.error);
                        moat_error_free(f.error);
                        return moat_error_wrap(reterr, r, "import");
                }
        }
        r = moat_ingest_commit(f.ingest, ret_digest, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "import: store the layer");
        *ret_size = (int64_t) f.total;
        *ret_entries = entries;
        return 0;

fail_archive:
        moat_ingest_abort(f.ingest);
        if (f.error) {
                if (reterr && !*reterr)
                        *reterr = TAKE_PTR(f.error);
                moat_error_free(f.error);
                return moat_error_wrap(reterr, r, "import");
        }
        if (entries > 0)
                return moat_error_setx(reterr, r, "invalid tar archive after %" PRIu64 " entries: %s", entries,
                                       archive_error_string(outer) ?: "unreadable tar header");
        return moat_error_setx(reterr, r, "not a tar archive: %s",
                               archive_error_string(outer) ?: "unreadable tar header");
}

/* RFC 3339 with nanoseconds, UTC, as Go writes time.Time. */
static int now_rfc3339(char *buf, size_t len)
{
        struct timespec ts;
        struct tm tm;
        char sec[32];

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !gmtime_r(&ts.tv_sec, &tm))
                return -errno;
        strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, len, "%s.%09ldZ", sec, ts.tv_nsec);
        /* Go drops trailing zeros of the fraction (RFC3339Nano). */
        char *z = strchr(buf, 'Z');
        while (z[-1] == '0') {
                z[-1] = 'Z';
                z[0] = '\0';
                z--;
        }
        if (z[-1] == '.') {
                z[-1] = 'Z';
                z[0] = '\0';
        }
        return 0;
}

static int put_json(struct moat_store *s, json_t *doc, char **ret_digest, int64_t *ret_size,
                    struct moat_error **reterr)
{
        _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
                return moat_error_set(reterr, -ENOMEM, "import: JSON");
        size_t len = strlen(text);
        if (len > OCI_IMAGE_DOC_MAX_SIZE)
                return moat_error_setx(reterr, -EFBIG, "import: the image config would be larger than %u bytes",
                                       OCI_IMAGE_DOC_MAX_SIZE);
        *ret_size = (int64_t) len;
        return moat_store_put(s, text, len, NULL, ret_digest, reterr);
}

void moat_import_result_free(struct moat_import_result *r)
{
        if (!r)
                return;
        free(r->manifest.media_type);
        free(r->manifest.digest);
        free(r->id);
        free(r->layer_digest);
        free(r);
}

int moat_import_rootfs(struct moat_store *s, int in_fd, const struct moat_import_options *opts,
                       struct moat_import_result **ret, struct moat_error **reterr)
{
        static const struct moat_import_options defaults = {};
        json_auto_t *exec_config = NULL, *config = NULL, *manifest = NULL;
        _cleanup_free_ char *layer = NULL, *config_digest = NULL, *manifest_digest = NULL;
        struct oci_platform platform = {};
        struct moat_import_result *res;
        int64_t layer_size = 0, config_size, manifest_size;
        uint64_t entries = 0;
        char created[64];
        int r;

        if (!opts)
                opts = &defaults;
        const char *message = opts->message ? opts->message : MOAT_IMPORT_DEFAULT_MESSAGE;
        if (strnlen(message, MOAT_IMPORT_MESSAGE_MAX + 1) > MOAT_IMPORT_MESSAGE_MAX)
                return moat_error_setx(reterr, -E2BIG, "import: the message is longer than %u bytes",
                                       MOAT_IMPORT_MESSAGE_MAX);

        /* Everything that can be refused without reading the input first. */
        exec_config = json_object();
        if (!exec_config)
                return moat_error_set(reterr, -ENOMEM, "import");
        r = moat_import_apply_changes(exec_config, opts->changes, opts->n_changes, reterr);
        if (r < 0)
                return r;
        r = moat_import_platform(opts->platform, &platform, reterr);
        if (r < 0)
                return r;
        r = now_rfc3339(created, sizeof(created));
        if (r < 0) {
                platform_clear(&platform);
                return moat_error_set(reterr, r, "import: clock");
        }

        r = import_layer(s, in_fd, opts->max_entries > 0 ? opts->max_entries : MOAT_IMPORT_ENTRIES_MAX,
                         opts->max_bytes > 0 ? opts->max_bytes : MOAT_IMPORT_BYTES_MAX, &layer, &layer_size,
                         &entries, reterr);
        if (r < 0) {
                platform_clear(&platform);
                return r;
        }

        config = json_pack("{s:s, s:s, s:s, s:s, s:O, s:{s:s, s:[s]}, s:[{s:s, s:s}]}",
                           "architecture", platform.architecture, "os", platform.os, "created", created,
                           "comment", message, "config", exec_config,
                           "rootfs", "type", "layers", "diff_ids", layer,
                           "history", "created", created, "comment", message);
        if (config && platform.variant && json_object_set_new(config, "variant", json_string(platform.variant)) < 0)
                json_decref(TAKE_PTR(config));
        platform_clear(&platform);
        if (!config)
                return moat_error_setx(reterr, -EINVAL, "import: the message is not valid UTF-8");
        r = put_json(s, config, &config_digest, &config_size, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "import: store the config");

        manifest = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}]}",
                             "schemaVersion", 2, "mediaType", OCI_MT_MANIFEST,
                             "config", "mediaType", OCI_MT_CONFIG, "digest", config_digest,
                             "size", (json_int_t) config_size,
                             "layers", "mediaType", OCI_MT_LAYER_TAR, "digest", layer,
                             "size", (json_int_t) layer_size);
        if (!manifest)
                return moat_error_set(reterr, -ENOMEM, "import: manifest");
        r = put_json(s, manifest, &manifest_digest, &manifest_size, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "import: store the manifest");

        res = calloc(1, sizeof(*res));
        if (!res)
                return moat_error_set(reterr, -ENOMEM, "import");
        res->manifest.media_type = strdup(OCI_MT_MANIFEST);
        res->manifest.digest = TAKE_PTR(manifest_digest);
        res->manifest.size = manifest_size;
        res->id = TAKE_PTR(config_digest);
        res->layer_digest = TAKE_PTR(layer);
        res->layer_size = layer_size;
        res->entries = entries;
        if (!res->manifest.media_type) {
                moat_import_result_free(res);
                return moat_error_set(reterr, -ENOMEM, "import");
        }
        *ret = res;
        return 0;
}
