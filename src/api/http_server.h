/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control API's HTTP/1.1 server on a listening UNIX socket, driven
 * from the VMM's main event loop (no thread of its own), so handlers run on
 * the main thread and may act on the machine directly.
 *
 * What this layer enforces, so handlers see only well-formed requests:
 *  - a route table of (method, path); an unknown path is 404, a known path
 *    with another method 405 with an Allow header;
 *  - one request per connection, replies with Connection: close; bodies
 *    with Content-Length only (chunked: 501);
 *  - bodies: at most HTTP_MAX_BODY bytes (413 otherwise), JSON objects
 *    only (400 for anything else, nesting limited), Content-Type
 *    application/json when there is a body (415 otherwise); routes that take
 *    no body accept none or "{}";
 *  - every reply is JSON; errors are {"error": {"code", "message"}}.
 * Handlers check field names with http_check_fields() (400 on an unknown
 * one) and read typed values with the json_* helpers below.
 */
#ifndef KEEL_API_HTTP_SERVER_H
#define KEEL_API_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "keel/compiler.h"
#include "keel/event_loop.h"

#define HTTP_MAX_BODY (16 * 1024)
#define HTTP_MAX_DEPTH 8

struct http_request {
	const char *method;
	const char *path;
	json_object *body; /* NULL when the request had none; else an object */
};

struct http_reply {
	int status;         /* 200 unless set */
	json_object *body;  /* owned by the reply; NULL sends {} */
	/* Called once the reply has been sent (or the client went away). */
	void (*after)(void *arg);
	void *after_arg;
};

typedef void (*http_handler)(void *ctx, const struct http_request *req, struct http_reply *rep);

struct http_route {
	const char *method;
	const char *path;
	http_handler fn;
	bool takes_body;
};

struct http_server;

/*
 * Listens on path (a stale socket file is replaced, a live one refused),
 * serving routes until http_server_stop(). NULL with a reason in err.
 */
struct http_server *http_server_start(struct event_loop *loop, const char *path,
				      const struct http_route *routes, unsigned nr_routes, void *ctx,
				      char *err, size_t errlen);
/* Closes every connection and removes the socket file. NULL is fine. */
void http_server_stop(struct http_server *s);

/* Sets an error reply: status, a short machine-readable code, a sentence. */
void http_error(struct http_reply *rep, int status, const char *code, const char *fmt, ...)
	PRINTF_LIKE(4, 5);

/*
 * 400 and false when obj has a member not in `allowed` (NULL-terminated).
 * A NULL obj (no body) passes.
 */
bool http_check_fields(json_object *obj, const char *const *allowed, struct http_reply *rep);

/*
 * Typed members: -ENOENT when absent (out untouched), 0 when present and
 * right, -EINVAL with a 400 reply set when present and of the wrong type or
 * range.
 */
int http_get_string(json_object *obj, const char *key, const char **out, struct http_reply *rep);
int http_get_u64(json_object *obj, const char *key, uint64_t min, uint64_t max, uint64_t *out,
		 struct http_reply *rep);
int http_get_bool(json_object *obj, const char *key, bool *out, struct http_reply *rep);

#endif
