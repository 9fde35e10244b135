// SPDX-License-Identifier: Apache-2.0
/*
 * A small HTTP/1.1 server of our own, on the main event loop. One request
 * per connection (every reply says Connection: close), bodies only with
 * Content-Length (chunked uploads get 501), at most HTTP_MAX_CONNS
 * connections, each closed after HTTP_IDLE_S seconds without progress.
 * That is all a local control socket needs; libmicrohttpd did the job too
 * but brings GnuTLS and its dependencies into every keel-vmm (~2.5 MiB
 * resident, counted against the VMM's 4 MiB budget where no other process
 * maps them), for TLS we never use on a UNIX socket.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/http_server.h"
#include "keel/log.h"
#include "keel/unix_socket.h"

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_CONNS 16
#define HTTP_IDLE_S 10

struct conn {
	struct event_handler h;
	struct http_server *s;
	struct conn *next;
	time_t last_activity;
	char buf[HTTP_MAX_HEAD + HTTP_MAX_BODY];
	size_t len;        /* bytes in buf */
	size_t head_len;   /* 0 until the blank line after the headers came */
	size_t body_len;   /* Content-Length */
	char method[16];
	char path[256];
	char content_type[128];
	bool replying;
	char *out;
	size_t out_len, out_pos;
	void (*after)(void *arg);
	void *after_arg;
};

struct http_server {
	struct event_loop *loop;
	struct event_handler listen_h;
	struct event_timer timer; /* closes idle connections */
	struct unix_listener listener;
	char *path;
	const struct http_route *routes;
	unsigned nr_routes;
	void *ctx;
	struct conn *conns;
	unsigned nr_conns;
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
static json_object *parse_body(struct conn *c, const struct http_route *rt, struct http_reply *rep)
{
	const char *ctype;
	struct json_tokener *tok;
	json_object *obj;
	enum json_tokener_error jerr;
	size_t used;

	const char *body = c->buf + c->head_len;
	size_t len = c->body_len;

	if (only_space(body, len))
		return NULL;
	ctype = c->content_type[0] ? c->content_type : NULL;
	if (ctype && strncasecmp(ctype, "application/json", 16)) {
		http_error(rep, 415, "unsupported_media_type",
			   "the body must be application/json, not %.64s", ctype);
		return NULL;
	}
	if (memchr(body, 0, len)) {
		http_error(rep, 400, "bad_json", "the body contains a NUL byte");
		return NULL;
	}
	tok = json_tokener_new_ex(HTTP_MAX_DEPTH);
	if (!tok) {
		http_error(rep, 500, "internal", "out of memory");
		return NULL;
	}
	obj = json_tokener_parse_ex(tok, body, (int)len);
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
	if (!only_space(body + used, len - used)) {
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

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	default: return "Internal Server Error";
	}
}

static void close_conn(struct conn *c)
{
	struct http_server *s = c->s;

	for (struct conn **pp = &s->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	s->nr_conns--;
	event_loop_del(s->loop, &c->h);
	close(c->h.fd);
	free(c->out);
	if (c->after)
		c->after(c->after_arg);
	free(c);
}

/* Writes what it can; true when the connection is finished with. */
static bool flush_out(struct conn *c)
{
	while (c->out_pos < c->out_len) {
		ssize_t n = send(c->h.fd, c->out + c->out_pos, c->out_len - c->out_pos,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n <= 0)
			return true; /* the client went away */
		c->out_pos += (size_t)n;
		c->last_activity = time(NULL);
	}
	shutdown(c->h.fd, SHUT_WR);
	return true;
}

static void send_reply(struct conn *c, struct http_reply *rep, const char *allow)
{
	char head[256];
	const char *text;
	int n;

	if (!rep->body)
		rep->body = json_object_new_object();
	text = json_object_to_json_string_ext(rep->body, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n",
		     rep->status, reason(rep->status), strlen(text), allow ? "Allow: " : "",
		     allow ? allow : "", allow ? "\r\n" : "");
	c->out_len = (size_t)n + strlen(text);
	c->out = malloc(c->out_len);
	if (c->out) {
		memcpy(c->out, head, (size_t)n);
		memcpy(c->out + n, text, strlen(text));
	} else {
		c->out_len = 0;
	}
	json_object_put(rep->body);
	rep->body = NULL;
	c->after = rep->after;
	c->after_arg = rep->after_arg;
	c->replying = true;
	if (flush_out(c))
		close_conn(c);
	else
		event_loop_mod(c->s->loop, &c->h, EPOLLOUT);
}

static void reply_error(struct conn *c, int status, const char *code, const char *msg)
{
	struct http_reply rep = { 0 };

	http_error(&rep, status, code, "%s", msg);
	send_reply(c, &rep, NULL);
}

/* The request line and headers; 0, or an error reply was sent. */
static int parse_head(struct conn *c)
{
	char *line = c->buf, *end, *v;
	bool has_length = false;
	char version[16];

	c->buf[c->head_len - 2] = 0; /* the head ends "\r\n\r\n": cut at the blank line */
	end = strstr(line, "\r\n");
	if (end)
		*end = 0;
	if (sscanf(line, "%15s %255s %15s", c->method, c->path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7)) {
		reply_error(c, 400, "bad_request", "malformed HTTP request line");
		return -1;
	}
	for (line = end ? end + 2 : NULL; line && *line; line = end ? end + 2 : NULL) {
		end = strstr(line, "\r\n");
		if (end)
			*end = 0;
		v = strchr(line, ':');
		if (!v)
			continue;
		*v++ = 0;
		while (*v == ' ' || *v == '\t')
			v++;
		if (!strcasecmp(line, "Content-Length")) {
			char *e;
			unsigned long long n = strtoull(v, &e, 10);

			if (!isdigit((unsigned char)*v) || *e) {
				reply_error(c, 400, "bad_request", "malformed Content-Length");
				return -1;
			}
			if (n > HTTP_MAX_BODY) {
				char msg[64];

				snprintf(msg, sizeof(msg), "the body is larger than %d bytes", HTTP_MAX_BODY);
				reply_error(c, 413, "payload_too_large", msg);
				return -1;
			}
			c->body_len = (size_t)n;
			has_length = true;
		} else if (!strcasecmp(line, "Transfer-Encoding")) {
			reply_error(c, 501, "not_implemented",
				    "chunked request bodies are not supported: send Content-Length");
			return -1;
		} else if (!strcasecmp(line, "Content-Type")) {
			snprintf(c->content_type, sizeof(c->content_type), "%s", v);
		} else if (!strcasecmp(line, "Expect") && !strcasecmp(v, "100-continue")) {
			/* curl waits for this before sending a body; a reply to it is all we owe. */
			if (send(c->h.fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				log_debug("api: cannot send 100 Continue: %s", strerror(errno));
		}
	}
	(void)has_length;
	return 0;
}

static void dispatch(struct conn *c)
{
	struct http_reply rep = { .status = 200 };
	const struct http_route *rt;
	struct http_request req;
	char allow[64];

	rt = find_route(c->s, c->method, c->path, &rep, allow, sizeof(allow));
	if (!rt) {
		send_reply(c, &rep, rep.status == 405 ? allow : NULL);
		return;
	}
	req = (struct http_request){ .method = c->method, .path = c->path };
	req.body = parse_body(c, rt, &rep);
	if (rep.status == 200)
		rt->fn(c->s->ctx, &req, &rep);
	json_object_put(req.body);
	log_debug("api: %s %s -> %d", c->method, c->path, rep.status);
	send_reply(c, &rep, NULL);
}

static void on_conn(struct event_handler *h, uint32_t events)
{
	struct conn *c = container_of(h, struct conn, h);
	ssize_t n;

	if (c->replying) {
		if (flush_out(c))
			close_conn(c);
		return;
	}
	n = recv(c->h.fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close_conn(c); /* closed or failed before a whole request came */
		return;
	}
	c->len += (size_t)n;
	c->last_activity = time(NULL);
	if (!c->head_len) {
		char *end = memmem(c->buf, MIN(c->len, (size_t)HTTP_MAX_HEAD), "\r\n\r\n", 4);

		if (!end) {
			if (c->len >= HTTP_MAX_HEAD)
				reply_error(c, 431, "bad_request", "the request head is larger than 8192 bytes");
			return;
		}
		c->head_len = (size_t)(end - c->buf) + 4;
		if (parse_head(c))
			return;
	}
	if (c->len - c->head_len < c->body_len)
		return; /* more body to come */
	dispatch(c);
}

static void on_accept(struct event_handler *h, uint32_t events)
{
	struct http_server *s = container_of(h, struct http_server, listen_h);
	int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct conn *c;

	if (fd < 0)
		return;
	if (s->nr_conns >= HTTP_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
		close(fd); /* busy: the client sees the connection closed */
		return;
	}
	c->s = s;
	c->h.fd = fd;
	c->h.cb = on_conn;
	c->last_activity = time(NULL);
	if (event_loop_add(s->loop, &c->h, EPOLLIN)) {
		close(fd);
		free(c);
		return;
	}
	c->next = s->conns;
	s->conns = c;
	s->nr_conns++;
}

static void on_idle_timer(struct event_timer *t)
{
	struct http_server *s = container_of(t, struct http_server, timer);
	time_t now = time(NULL);

	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (now - c->last_activity > HTTP_IDLE_S)
			close_conn(c);
	}
}

struct http_server *http_server_start(struct event_loop *loop, const char *path,
				      const struct http_route *routes, unsigned nr_routes, void *ctx,
				      char *err, size_t errlen)
{
	struct http_server *s = calloc(1, sizeof(*s));
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
	s->listen_h.fd = -1;
	s->timer.h.fd = -1;
	s->path = strdup(path);
	r = unix_socket_listen(&s->listener, path, 8, why, sizeof(why));
	if (r || !s->path) {
		snprintf(err, errlen, "--api-socket %s: %s", path, r ? why : "out of memory");
		http_server_stop(s);
		return NULL;
	}
	s->listen_h.fd = s->listener.fd;
	s->listen_h.cb = on_accept;
	if (event_loop_add(loop, &s->listen_h, EPOLLIN) ||
	    event_timer_init(loop, &s->timer, on_idle_timer) ||
	    event_timer_arm(&s->timer, 1000000000ULL, 1000000000ULL)) {
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
	while (s->conns) {
		s->conns->after = NULL; /* the server is going: no deferred actions */
		close_conn(s->conns);
	}
	if (s->timer.h.fd >= 0)
		event_timer_destroy(s->loop, &s->timer);
	if (s->listen_h.fd >= 0) {
		event_loop_del(s->loop, &s->listen_h);
		close(s->listen_h.fd);
	} else if (s->listener.fd >= 0) {
		close(s->listener.fd);
	}
	if (s->path && s->listener.dev)
		unix_socket_unlink(&s->listener, s->path);
	free(s->path);
	free(s);
}
