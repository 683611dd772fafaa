/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Strict number parsing: the whole string, no sign surprises, range checked. */

#include "base/compat.h"

MOAT_NODISCARD int safe_atou64(const char *s, uint64_t *ret);
MOAT_NODISCARD int safe_atoi64(const char *s, int64_t *ret);
MOAT_NODISCARD int safe_atou32(const char *s, uint32_t *ret);
MOAT_NODISCARD int safe_atoi(const char *s, int *ret);
