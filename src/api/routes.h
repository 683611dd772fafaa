/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/* The engine's route groups (one file each: routes-<group>.c). */
#include "base/compat.h"
#include "base/error.h"

#include "api/http.h"

struct moat_engine;

MOAT_NODISCARD int moat_api_register_containers(struct moat_http_router *router, struct moat_engine *e,
                                                struct moat_error **reterr);
MOAT_NODISCARD int moat_api_register_exec(struct moat_http_router *router, struct moat_engine *e,
                                          struct moat_error **reterr);
MOAT_NODISCARD int moat_api_register_events(struct moat_http_router *router, struct moat_engine *e,
                                            struct moat_error **reterr);
