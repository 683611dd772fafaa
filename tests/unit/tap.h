/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A minimal TAP producer for the C unit tests (meson runs them with
 * protocol: 'tap'). ok()/is_int()/is_str() print one test line each;
 * tap_done() prints the plan and returns the exit status.
 */

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

#define ok(cond, ...)                                                 \
        do {                                                          \
                bool _c = (cond);                                     \
                tap_count++;                                          \
                if (_c) {                                             \
                        printf("ok %d - ", tap_count);                \
                } else {                                              \
                        tap_failed++;                                 \
                        printf("not ok %d - ", tap_count);            \
                }                                                     \
                printf(__VA_ARGS__);                                  \
                printf("\n");                                         \
                if (!_c)                                              \
                        printf("#   at %s:%d\n", __FILE__, __LINE__); \
        } while (0)

#define is_int(got, want, ...)                                              \
        do {                                                                \
                long long _g = (long long) (got), _w = (long long) (want);  \
                ok(_g == _w, __VA_ARGS__);                                  \
                if (_g != _w)                                               \
                        printf("#   got %lld, want %lld\n", _g, _w);        \
        } while (0)

#define is_str(got, want, ...)                                                     \
        do {                                                                       \
                const char *_g = (got), *_w = (want);                              \
                bool _same = (_g && _w) ? strcmp(_g, _w) == 0 : _g == _w;          \
                ok(_same, __VA_ARGS__);                                            \
                if (!_same)                                                        \
                        printf("#   got '%s', want '%s'\n", _g ? _g : "(null)",    \
                               _w ? _w : "(null)");                                \
        } while (0)

static inline int tap_done(void)
{
        printf("1..%d\n", tap_count);
        return tap_failed ? 1 : 0;
}
