/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>

#include "base/parse.h"

int safe_atou64(const char *s, uint64_t *ret)
{
        char *end = NULL;
        unsigned long long v;

        if (strempty(s) || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -errno;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int safe_atoi64(const char *s, int64_t *ret)
{
        char *end = NULL;
        long long v;

        if (strempty(s) || isspace((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0)
                return -errno;
        if (*end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int safe_atou32(const char *s, uint32_t *ret)
{
        uint64_t v = 0;
        int r = safe_atou64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

int safe_atoi(const char *s, int *ret)
{
        int64_t v = 0;
        int r = safe_atoi64(s, &v);
        if (r < 0)
                return r;
        if (v < INT_MIN || v > INT_MAX)
                return -ERANGE;
        *ret = (int) v;
        return 0;
}

int parse_ram_in_bytes(const char *text, int64_t *ret)
{
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        uint64_t mult = 1;

        if (strempty(text) || end == text || errno || v < 0 || !(text[0] >= '0' && text[0] <= '9'))
                return -EINVAL;
        switch (*end | 0x20) {
        case 'k':
                mult = 1024, end++;
                break;
        case 'm':
                mult = 1024 * 1024, end++;
                break;
        case 'g':
                mult = 1024ULL * 1024 * 1024, end++;
                break;
        case 't':
                mult = 1024ULL * 1024 * 1024 * 1024, end++;
                break;
        case 'p':
                mult = 1024ULL * 1024 * 1024 * 1024 * 1024, end++;
                break;
        default:
                break;
        }
        if ((*end | 0x20) == 'b')
                end++;
        if (*end || v * (double) mult > 9.2e18)
                return -EINVAL;
        *ret = (int64_t) (v * (double) mult);
        return 0;
}
