/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The /volumes routes of the Docker Engine API over the engine's volumes
 * (engine-volumes.h): query parameters and bodies in, docker's status
 * codes and JSON out (create 201, remove 204).
 */

#include "api/routes.h"

#include <errno.h>

#include "base/cleanup.h"
#include "engine/engine-volumes.h"

static struct moat_http_response *error_response(int r, struct moat_error *err)
{
        struct moat_http_response *resp = moat_http_response_from_error(r, err);
        moat_error_free(err);
        return resp;
}

/* The filters query parameter, decoded; *ret NULL when absent. */
static int query_filters(struct moat_http_request *req, json_t **ret, struct moat_error **reterr)
{
        const char *text = moat_http_request_query(req, "filters");
        json_error_t jerr;

        *ret = NULL;
        if (!text || !*text)
                return 0;
        *ret = json_loads(text, 0, &jerr);
        if (!json_is_object(*ret)) {
                json_decref(*ret);
                *ret = NULL;
                return moat_error_setx(reterr, -EINVAL, "invalid filters: %s", jerr.text);
        }
        return 0;
}

static struct moat_http_response *create(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *body = NULL, *out = NULL;
        int r;

        r = moat_http_request_json(req, &body, &err);
        if (r < 0)
                return error_response(r, err);
        r = moat_engine_volume_create(userdata, body, &out, &err);
        json_decref(body);
        if (r < 0)
                return error_response(r, err);
        return moat_http_response_json(201, out);
}

static struct moat_http_response *list(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *filters = NULL, *out = NULL;
        int r;

        r = query_filters(req, &filters, &err);
        if (r >= 0)
                r = moat_engine_volume_list(userdata, filters, &out, &err);
        json_decref(filters);
        if (r < 0)
                return error_response(r, err);
        return moat_http_response_json(200, out);
}

static struct moat_http_response *inspect(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *out = NULL;
        int r = moat_engine_volume_inspect(userdata, moat_http_request_param(req, "name"), &out, &err);
        return r < 0 ? error_response(r, err) : moat_http_response_json(200, out);
}

static struct moat_http_response *remove_(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        int r = moat_engine_volume_remove(userdata, moat_http_request_param(req, "name"),
                                          moat_http_request_query_bool(req, "force"), &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(204);
}

static struct moat_http_response *prune(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *filters = NULL, *out = NULL;
        int r;

        r = query_filters(req, &filters, &err);
        if (r >= 0)
                r = moat_engine_volume_prune(userdata, filters, &out, &err);
        json_decref(filters);
        if (r < 0)
                return error_response(r, err);
        return moat_http_response_json(200, out);
}

int moat_api_register_volumes(struct moat_http_router *router, struct moat_engine *e, struct moat_error **reterr)
{
        static const struct {
                const char *method, *pattern;
                moat_http_handler_fn fn;
        } routes[] = {
                { "POST", "/volumes/create", create },
                { "POST", "/volumes/prune", prune },
                { "GET", "/volumes", list },
                { "GET", "/volumes/{name}", inspect },
                { "DELETE", "/volumes/{name}", remove_ },
        };
        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                int r = moat_http_router_add(router, routes[i].method, routes[i].pattern, routes[i].fn, e, NULL,
                                             reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}
