/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * Names for containers created without --name, docker style:
 * "<adjective>_<noun>", lower case, matching the name grammar
 * [a-zA-Z0-9][a-zA-Z0-9_.-]*. The caller retries on a clash; after a few
 * clashes a random digit is appended, as docker does.
 */
#include "base/compat.h"
#include "base/error.h"

/* A new random name; retry > 0 appends a digit in 0..9. */
MOAT_NODISCARD int moat_engine_random_name(unsigned retry, char **ret);
