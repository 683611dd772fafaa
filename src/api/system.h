/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The system routes: /_ping, /version and /info. What only the engine
 * knows (how many containers and images) comes through moat_api_engine_ops,
 * which the engine fills when it registers; until then the counts are 0,
 * which is what a daemon without containers truly has.
 */

#include "base/compat.h"

#include <stdatomic.h>

#include "api/http.h"

struct moat_api_counts {
        int64_t containers, running, paused, stopped;
        int64_t images;
};

struct moat_api_engine_ops {
        int (*counts)(void *userdata, struct moat_api_counts *ret, struct moat_error **reterr);
        void *userdata;
};

struct moat_api_system {
        const char *data_root;
        const char *engine_id;          /* persistent, from <data-root>/engine-id */
        const char *runtime_path;       /* the OCI runtime the engine runs */
        atomic_bool debug;              /* reloadable */
        struct moat_api_engine_ops ops;
};

MOAT_NODISCARD int moat_api_register_system(struct moat_http_router *r, struct moat_api_system *sys,
                                            struct moat_error **reterr);

/* Go's GOARCH spelling of the machine ("amd64", "arm64", ...). */
const char *moat_api_go_arch(void);
