/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * libFuzzer entry point for the monitor's flat JSON parser
 * (src/monitor/flatjson.c), which reads every request on the monitor's
 * sockets: any bytes either parse or are refused, never read past their
 * end; a string value that parsed, escaped again and parsed back, is the
 * same string.
 */

#include <stdio.h>

#include "base/cleanup.h"
#include "monitor/flatjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct flatjson_field f[] = { { .key = "op" }, { .key = "height" }, { .key = "stdin" }, { .key = "" } };
        _cleanup_free_ char *text = NULL;

        if (size > 4096)
                return 0;
        text = strndup((const char *) data, size);
        if (!text)
                return 0;
        if (flatjson_parse(text, f, ELEMENTSOF(f)) < 0)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                if (f[i].type == FLATJSON_NONE)
                        continue;
                if (f[i].type != FLATJSON_STR)
                        continue;
                if (strnlen(f[i].str, sizeof(f[i].str)) >= sizeof(f[i].str))
                        __builtin_trap();
                /* Escaping takes at most 6 bytes per byte. */
                char esc[FLATJSON_STRING_MAX * 6 + 8], doc[sizeof(esc) + 16];
                flatjson_escape(f[i].str, esc, sizeof(esc));
                snprintf(doc, sizeof(doc), "{\"op\":\"%s\"}", esc);
                struct flatjson_field again[] = { { .key = "op" } };
                if (flatjson_parse(doc, again, 1) < 0 || again[0].type != FLATJSON_STR ||
                    !streq(again[0].str, f[i].str))
                        __builtin_trap();
        }
        return 0;
}
