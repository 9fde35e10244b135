// SPDX-License-Identifier: Apache-2.0
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/http_server.h"
#include "keel/log.h"
#include "keel/unix_socket.h"

struct http_server {
	struct MHD_Daemon *daemon;
	struct event_loop *loop;
	struct event_handler h;   /* MHD's epoll fd, on our loop */
	struct event_timer timer; /* MHD's connection timeouts */
	struct unix_listener listener;
	char *path;
	const struct http_route *routes;
	unsigned nr_routes;
	void *ctx;
};

/* One request in flight (MHD's per-connection closure). */
struct request {
	char body[HTTP_MAX_BODY];
	size_t len;
	bool too_big;
	void (*after)(void *arg);
	void *after_arg;
};

void http_error(struct http_reply *rep, int status, const char *code, const char *fmt, ...)
{
	json_object *err = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(err, "code", json_object_new_string(code));
	json_object_object_add(err, "message", json_object_new_string(msg));
	json_object_put(rep->body);
	rep->body = json_object_new_object();
	json_object_object_add(rep->body, "error", err);
	rep->status = status;
}

bool http_check_fields(json_object *obj, const char *const *allowed, struct http_reply *rep)
{
	if (!obj)
		return true;
	json_object_object_foreach(obj, key, val) {
		const char *const *a;

		(void)val;
		for (a = allowed; *a && strcmp(*a, key); a++)
			;
		if (!*a) {
			http_error(rep, 400, "unknown_field", "unknown field '%.64s'", key);
			return false;
		}
	}
	return true;
}

int http_get_string(json_object *obj, const char *key, const char **out, struct http_reply *rep)
{
	json_object *v;

	if (!obj || !json_object_object_get_ex(obj, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_string)) {
		http_error(rep, 400, "bad_field", "field '%s' must be a string", key);
		return -EINVAL;
	}
	*out = json_object_get_string(v);
	return 0;
}

int http_get_u64(json_object *obj, const char *key, uint64_t min, uint64_t max, uint64_t *out,
		 struct http_reply *rep)
{
	json_object *v;
	int64_t n;

	if (!obj || !json_object_object_get_ex(obj, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_int)) {
		http_error(rep, 400, "bad_field", "field '%s' must be an integer", key);
		return -EINVAL;
	}
	errno = 0;
	n = json_object_get_int64(v);
	/* json-c saturates: a value beyond int64 reads as INT64_MAX with ERANGE. */
	if (n < 0 || errno == ERANGE || (uint64_t)n < min || (uint64_t)n > max) {
		http_error(rep, 400, "bad_field", "field '%s' must be between %llu and %llu", key,
			   (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint64_t)n;
	return 0;
}

int http_get_bool(json_object *obj, const char *key, bool *out, struct http_reply *rep)
{
	json_object *v;

	if (!obj || !json_object_object_get_ex(obj, key, &v))
		return -ENOENT;
	if (!json_object_is_type(v, json_type_boolean)) {
		http_error(rep, 400, "bad_field", "field '%s' must be true or false", key);
		return -EINVAL;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct http_reply *rep,
				  const char *allow)
{
	const char *text;
	struct MHD_Response *resp;
	enum MHD_Result r;

	if (!rep->body)
		rep->body = json_object_new_object();
	text = json_object_to_json_string_ext(rep->body, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	json_object_put(rep->body);
	rep->body = NULL;
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	r = MHD_queue_response(c, (unsigned)(rep->status ? rep->status : 200), resp);
	MHD_destroy_response(resp);
	return r;
}

/* The route for (method, path); NULL with 404 or 405 set in rep. */
static const struct http_route *find_route(struct http_server *s, const char *method,
					   const char *path, struct http_reply *rep,
					   char *allow, size_t allowlen)
{
	bool path_known = false;

	*allow = 0;
	for (unsigned i = 0; i < s->nr_routes; i++) {
		const struct http_route *rt = &s->routes[i];
		size_t n = strlen(allow);

		if (strcmp(rt->path, path))
			continue;
		if (!strcmp(rt->method, method))
			return rt;
		path_known = true;
		snprintf(allow + n, allowlen - n, "%s%s", n ? ", " : "", rt->method);
	}
	if (path_known)
		http_error(rep, 405, "method_not_allowed", "%.16s is not allowed on %.128s (allowed: %s)",
			   method, path, allow);
	else
		http_error(rep, 404, "not_found", "no such endpoint: %.128s", path);
	return NULL;
}

static bool only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)p[i]))
			return false;
	return true;
}

/* NULL for an empty body; else an object, or NULL with a 400/415 in rep. */
static json_object *parse_body(struct MHD_Connection *c, struct request *rq,
			       const struct http_route *rt, struct http_reply *rep)
{
	const char *ctype;
	struct json_tokener *tok;
	json_object *obj;
	enum json_tokener_error jerr;
	size_t used;

	if (only_space(rq->body, rq->len))
		return NULL;
	ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (ctype && strncasecmp(ctype, "application/json", 16)) {
		http_error(rep, 415, "unsupported_media_type",
			   "the body must be application/json, not %.64s", ctype);
		return NULL;
	}
	if (memchr(rq->body, 0, rq->len)) {
		http_error(rep, 400, "bad_json", "the body contains a NUL byte");
		return NULL;
	}
	tok = json_tokener_new_ex(HTTP_MAX_DEPTH);
	if (!tok) {
		http_error(rep, 500, "internal", "out of memory");
		return NULL;
	}
	obj = json_tokener_parse_ex(tok, rq->body, (int)rq->len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success || !obj) {
		json_object_put(obj);
		http_error(rep, 400, "bad_json", "malformed JSON: %s",
			   jerr == json_tokener_continue ? "unexpected end of input"
							 : json_tokener_error_desc(jerr));
		return NULL;
	}
	if (!only_space(rq->body + used, rq->len - used)) {
		json_object_put(obj);
		http_error(rep, 400, "bad_json", "malformed JSON: text after the object");
		return NULL;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		http_error(rep, 400, "bad_json", "the body must be a JSON object");
		return NULL;
	}
	if (!rt->takes_body && json_object_object_length(obj)) {
		json_object_put(obj);
		http_error(rep, 400, "unknown_field", "%s %s takes no fields", rt->method, rt->path);
		return NULL;
	}
	return obj;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **closure)
{
	struct http_server *s = cls;
	struct request *rq = *closure;
	struct http_reply rep = { .status = 200 };
	const struct http_route *rt;
	struct http_request req;
	char allow[64];
	enum MHD_Result r;

	if (!rq) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*closure = rq;
		/* Refuse a declared oversize body before reading any of it. */
		if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY) {
			rq->too_big = true;
			http_error(&rep, 413, "payload_too_large", "the body is larger than %d bytes",
				   HTTP_MAX_BODY);
			return send_reply(c, &rep, NULL);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!rq->too_big && *upload_size <= HTTP_MAX_BODY - rq->len) {
			memcpy(rq->body + rq->len, upload, *upload_size);
			rq->len += *upload_size;
		} else {
			rq->too_big = true;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (rq->too_big) {
		http_error(&rep, 413, "payload_too_large", "the body is larger than %d bytes",
			   HTTP_MAX_BODY);
		return send_reply(c, &rep, NULL);
	}
	rt = find_route(s, method, url, &rep, allow, sizeof(allow));
	if (!rt)
		return send_reply(c, &rep, rep.status == 405 ? allow : NULL);
	req = (struct http_request){ .method = method, .path = url };
	req.body = parse_body(c, rq, rt, &rep);
	if (rep.status == 200)
		rt->fn(s->ctx, &req, &rep);
	json_object_put(req.body);
	rq->after = rep.after;
	rq->after_arg = rep.after_arg;
	r = send_reply(c, &rep, NULL);
	log_debug("api: %s %s -> %d", method, url, rep.status);
	return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **closure,
			 enum MHD_RequestTerminationCode why)
{
	struct request *rq = *closure;

	*closure = NULL;
	if (!rq)
		return;
	if (rq->after)
		rq->after(rq->after_arg);
	free(rq);
}

static void mhd_log(void *arg, const char *fmt, va_list ap)
{
	if (log_get_level() >= LOG_LEVEL_DEBUG)
		log_vmsg(LOG_LEVEL_DEBUG, fmt, ap);
}

/* Runs MHD, then arms our timer for its next timeout (or disarms it). */
static void run_mhd(struct http_server *s)
{
	MHD_UNSIGNED_LONG_LONG ms;
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	MHD_run(s->daemon);
	if (MHD_get_timeout(s->daemon, &ms) == MHD_YES) {
		event_timer_arm(&s->timer, ms * 1000000ULL, 0);
		return;
	}
	timerfd_settime(s->timer.h.fd, 0, &its, NULL);
}

static void on_mhd_ready(struct event_handler *h, uint32_t events)
{
	run_mhd(container_of(h, struct http_server, h));
}

static void on_mhd_timer(struct event_timer *t)
{
	run_mhd(container_of(t, struct http_server, timer));
}

struct http_server *http_server_start(struct event_loop *loop, const char *path,
				      const struct http_route *routes, unsigned nr_routes, void *ctx,
				      char *err, size_t errlen)
{
	struct http_server *s = calloc(1, sizeof(*s));
	const union MHD_DaemonInfo *info;
	char why[128];
	int r;

	if (!s) {
		snprintf(err, errlen, "--api-socket %s: out of memory", path);
		return NULL;
	}
	s->loop = loop;
	s->routes = routes;
	s->nr_routes = nr_routes;
	s->ctx = ctx;
	s->h.fd = -1;
	s->timer.h.fd = -1;
	s->path = strdup(path);
	r = unix_socket_listen(&s->listener, path, 8, why, sizeof(why));
	if (r || !s->path) {
		snprintf(err, errlen, "--api-socket %s: %s", path, r ? why : "out of memory");
		http_server_stop(s);
		return NULL;
	}
	s->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				     on_request, s,
				     MHD_OPTION_LISTEN_SOCKET, s->listener.fd,
				     MHD_OPTION_CONNECTION_LIMIT, 16U,
				     MHD_OPTION_CONNECTION_TIMEOUT, 10U,
				     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				     MHD_OPTION_END);
	info = s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		snprintf(err, errlen, "--api-socket %s: cannot start the HTTP server", path);
		http_server_stop(s);
		return NULL;
	}
	s->h.fd = info->epoll_fd;
	s->h.cb = on_mhd_ready;
	if (event_loop_add(loop, &s->h, EPOLLIN) || event_timer_init(loop, &s->timer, on_mhd_timer)) {
		snprintf(err, errlen, "--api-socket %s: cannot watch the socket", path);
		http_server_stop(s);
		return NULL;
	}
	return s;
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	if (s->h.fd >= 0)
		event_loop_del(s->loop, &s->h);
	if (s->timer.h.fd >= 0)
		event_timer_destroy(s->loop, &s->timer);
	if (s->daemon) {
		/* MHD closes the listening socket we gave it. */
		MHD_stop_daemon(s->daemon);
		s->listener.fd = -1;
	}
	if (s->listener.fd >= 0)
		close(s->listener.fd);
	if (s->path && s->listener.dev)
		unix_socket_unlink(&s->listener, s->path);
	free(s->path);
	free(s);
}
