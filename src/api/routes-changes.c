/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* GET /containers/{id}/changes (docker diff): the engine's list of the
 * container's filesystem changes (changes.c) as Docker's JSON array. */

#include "api/routes.h"

#include "engine/engine.h"

static struct moat_http_response *changes(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *doc = NULL;
        int r = moat_engine_changes(userdata, moat_http_request_param(req, "id"), &doc, &err);
        if (r < 0) {
                struct moat_http_response *resp = moat_http_response_from_error(r, err);
                moat_error_free(err);
                return resp;
        }
        return moat_http_response_json(200, doc);
}

int moat_api_register_changes(struct moat_http_router *router, struct moat_engine *e, struct moat_error **reterr)
{
        return moat_http_router_add(router, "GET", "/containers/{id}/changes", changes, e, NULL, reterr);
}
