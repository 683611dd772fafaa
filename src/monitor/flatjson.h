/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Flat JSON objects for the monitor's sockets: requests are one object of
 * strings, booleans, integers and nulls on one line, replies are written
 * with snprintf. See flatjson.c for why this is not jansson.
 */

#include <stdbool.h>
#include <stddef.h>

enum flatjson_type { FLATJSON_NONE, FLATJSON_STR, FLATJSON_BOOL, FLATJSON_INT, FLATJSON_NULL };

#define FLATJSON_STRING_MAX 256u /* a string value's bytes, with its NUL */
#define FLATJSON_KEY_MAX 64u     /* a key's bytes, with its NUL */

struct flatjson_field {
        const char *key;          /* set by the caller */
        enum flatjson_type type;  /* FLATJSON_NONE: not in the object */
        char str[FLATJSON_STRING_MAX];
        bool b;
        long long i;
};

/* Parse s, one flat object and nothing after it but white space: each of
 * the nf fields named in f gets its value, other keys are skipped. -EINVAL
 * when s is not such an object, a string is longer than the bounds above,
 * has a \u escape beyond ASCII (or of NUL), or a field repeats. */
int flatjson_parse(const char *s, struct flatjson_field *f, size_t nf);

/* msg as the content of a JSON string (quotes, backslashes and control
 * characters escaped), cut short rather than overflow out. */
void flatjson_escape(const char *msg, char *out, size_t size);
