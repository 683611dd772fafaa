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
MOAT_NODISCARD int moat_api_register_logs(struct moat_http_router *router, struct moat_engine *e,
                                          struct moat_error **reterr);
MOAT_NODISCARD int moat_api_register_images(struct moat_http_router *router, struct moat_engine *e,
                                            struct moat_error **reterr);

/* docker's timestamps in since/until: Unix seconds with an optional
 * fraction ("1700000000.123") or RFC 3339; "" or NULL is 0 (no bound).
 * (The CLI turns relative forms like "10m" into seconds itself.) */
MOAT_NODISCARD int moat_api_parse_time(const char *s, int64_t *ret);
MOAT_NODISCARD int moat_api_register_volumes(struct moat_http_router *router, struct moat_engine *e,
                                             struct moat_error **reterr);
MOAT_NODISCARD int moat_api_register_archive(struct moat_http_router *router, struct moat_engine *e,
                                             struct moat_error **reterr);
MOAT_NODISCARD int moat_api_register_changes(struct moat_http_router *router, struct moat_engine *e,
                                             struct moat_error **reterr);

/* relay.c: copy between a hijacked client and fd (the monitor's stream)
 * until fd's stream ends; the client's bytes go to fd when forward_stdin
 * and its half-close becomes fd's. Ends with the client's side closed. */
void moat_api_relay(struct moat_http_hijack *h, int fd, bool forward_stdin);
/* docker's detach keys spec ("ctrl-p,ctrl-q") to bytes (at most size keys;
 * -EINVAL with "Invalid detach keys (SPEC) provided: ..."), and the relay
 * that stops at them, sending none of them on (true when it did). */
#define MOAT_API_DETACH_SPEC_MAX 256
MOAT_NODISCARD int moat_api_detach_keys_parse(const char *spec, uint8_t *keys, size_t size, size_t *ret_n,
                                              struct moat_error **reterr);
bool moat_api_relay_detach(struct moat_http_hijack *h, int fd, bool forward_stdin, const uint8_t *keys,
                           size_t n_keys);
/* Say msg as the whole of a hijacked stream: one frame of the given stream
 * type (1 stdout, 3 systemerr) without a tty, raw bytes with one. */
void moat_api_stream_message(struct moat_http_hijack *h, bool tty, uint8_t stream, const char *msg);
