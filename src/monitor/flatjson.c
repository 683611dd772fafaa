/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The monitor's flat JSON (flatjson.h). Written by hand, not jansson: the
 * monitor's loop must touch as few pages as it can (an idle monitor is
 * charged for every page it has touched), and its requests are one level
 * of strings, booleans, integers and nulls. tests/fuzz/fuzz-flatjson.c
 * runs it against arbitrary bytes.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cleanup.h"
#include "monitor/flatjson.h"

static const char *skip_ws(const char *p)
{
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
                p++;
        return p;
}

/* A JSON string at p (after the quote) into out; NULL when malformed or
 * longer than the buffer. Only ASCII \u escapes are taken. */
static const char *parse_string(const char *p, char *out, size_t size)
{
        size_t n = 0;
        for (;;) {
                char ch = *p++;
                if (ch == '"')
                        break;
                if (ch == '\0' || (unsigned char) ch < 0x20)
                        return NULL;
                if (ch == '\\') {
                        char e = *p++;
                        switch (e) {
                        case '"': case '\\': case '/': ch = e; break;
                        case 'n': ch = '\n'; break;
                        case 't': ch = '\t'; break;
                        case 'r': ch = '\r'; break;
                        case 'b': ch = '\b'; break;
                        case 'f': ch = '\f'; break;
                        case 'u': {
                                unsigned v = 0;
                                for (int k = 0; k < 4; k++) {
                                        char h = *p++;
                                        v <<= 4;
                                        if (h >= '0' && h <= '9') v |= (unsigned) (h - '0');
                                        else if (h >= 'a' && h <= 'f') v |= (unsigned) (h - 'a' + 10);
                                        else if (h >= 'A' && h <= 'F') v |= (unsigned) (h - 'A' + 10);
                                        else return NULL;
                                }
                                if (v == 0 || v > 0x7f)
                                        return NULL;
                                ch = (char) v;
                                break;
                        }
                        default: return NULL;
                        }
                }
                if (n + 1 >= size)
                        return NULL;
                out[n++] = ch;
        }
        out[n] = '\0';
        return p;
}

int flatjson_parse(const char *s, struct flatjson_field *f, size_t nf)
{
        char key[FLATJSON_KEY_MAX], str[FLATJSON_STRING_MAX];
        const char *p = skip_ws(s);

        for (size_t i = 0; i < nf; i++)
                f[i].type = FLATJSON_NONE;
        if (*p++ != '{')
                return -EINVAL;
        p = skip_ws(p);
        if (*p == '}')
                return *skip_ws(p + 1) ? -EINVAL : 0;
        for (;;) {
                if (*p++ != '"' || !(p = parse_string(p, key, sizeof(key))))
                        return -EINVAL;
                p = skip_ws(p);
                if (*p++ != ':')
                        return -EINVAL;
                p = skip_ws(p);
                struct flatjson_field v = {};
                if (*p == '"') {
                        if (!(p = parse_string(p + 1, str, sizeof(str))))
                                return -EINVAL;
                        v.type = FLATJSON_STR;
                        memcpy(v.str, str, sizeof(str));
                } else if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
                        v.type = FLATJSON_BOOL;
                        v.b = *p == 't';
                        p += v.b ? 4 : 5;
                } else if (strncmp(p, "null", 4) == 0) {
                        v.type = FLATJSON_NULL;
                        p += 4;
                } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
                        char *end;
                        errno = 0;
                        v.i = strtoll(p, &end, 10);
                        if (errno || end == p || *end == '.' || *end == 'e' || *end == 'E')
                                return -EINVAL;
                        v.type = FLATJSON_INT;
                        p = end;
                } else
                        return -EINVAL;
                for (size_t i = 0; i < nf; i++)
                        if (streq(f[i].key, key)) {
                                if (f[i].type != FLATJSON_NONE)
                                        return -EINVAL;
                                v.key = f[i].key;
                                f[i] = v;
                        }
                p = skip_ws(p);
                if (*p == '}')
                        return *skip_ws(p + 1) ? -EINVAL : 0;
                if (*p++ != ',')
                        return -EINVAL;
                p = skip_ws(p);
        }
}

void flatjson_escape(const char *msg, char *out, size_t size)
{
        size_t n = 0;
        for (const char *p = msg; *p && n + 7 < size; p++) {
                unsigned char ch = (unsigned char) *p;
                if (ch == '"' || ch == '\\') {
                        out[n++] = '\\';
                        out[n++] = (char) ch;
                } else if (ch < 0x20)
                        n += (size_t) snprintf(out + n, size - n, "\\u%04x", ch);
                else
                        out[n++] = (char) ch;
        }
        out[n] = '\0';
}
