/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * Tar member names are UTF-8 in pax headers (docker's archives carry them
 * so); libarchive converts them to and from the locale's character set,
 * which in the "C" locale is ASCII, so every other name fails ("Can't
 * translate pathname"). The programs that read or write tar streams (the
 * daemon, the client, moat-image) take the character type of C.UTF-8;
 * nothing else about the locale changes (numbers, messages).
 */
#include <locale.h>

static inline void moat_locale_utf8_ctype(void)
{
        (void) setlocale(LC_CTYPE, "C.UTF-8");
}
