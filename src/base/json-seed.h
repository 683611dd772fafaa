/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * jansson seeds its hash function on first use by opening, reading and
 * closing /dev/urandom: three system calls in every short-lived process
 * that parses JSON (a CLI call, a monitor), about 0.25 ms on the VMs moat
 * is measured on. One getrandom() does the same; where it fails, jansson's
 * own seeding happens as before. Not the auxiliary vector's AT_RANDOM
 * bytes: those are the stack protector's and pointer guard's secrets.
 */
#include <jansson.h>
#include <stdint.h>
#include <sys/random.h>

static inline void moat_json_seed(void)
{
        uint32_t seed;

        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t) sizeof(seed))
                json_object_seed(seed | 1); /* 0 would ask jansson for its own */
}
