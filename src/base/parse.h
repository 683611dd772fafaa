/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Strict number parsing: the whole string, no sign surprises, range checked. */

#include "base/compat.h"

MOAT_NODISCARD int safe_atou64(const char *s, uint64_t *ret);
MOAT_NODISCARD int safe_atoi64(const char *s, int64_t *ret);
MOAT_NODISCARD int safe_atou32(const char *s, uint32_t *ret);
MOAT_NODISCARD int safe_atoi(const char *s, int *ret);

/* docker's RAMInBytes (go-units): "64m", "1g", "512k", "100" (binary
 * units, an optional "b"); -EINVAL otherwise. */
MOAT_NODISCARD int parse_ram_in_bytes(const char *text, int64_t *ret);
