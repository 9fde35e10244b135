// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the control API's HTTP/JSON layer (src/api/http_server.c)
 * on a real UNIX socket, driven from an event loop as keel-vmm drives it,
 * with our client (src/api/http_client.c) or raw bytes on the other side.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/http_client.h"
#include "api/http_server.h"
#include "ktest.h"

static char sock_path[64];
static int echo_calls, after_calls;

static void after(void *arg)
{
	after_calls++;
}

/* Echoes "name" (a string) and "count" (0..10) back; checks its field names. */
static void echo(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	static const char *const fields[] = { "name", "count", "flag", NULL };
	const char *name = "none";
	uint64_t count = 0;
	bool flag = false;

	echo_calls++;
	if (!http_check_fields(req->body, fields, rep))
		return;
	if (http_get_string(req->body, "name", &name, rep) == -EINVAL ||
	    http_get_u64(req->body, "count", 0, 10, &count, rep) == -EINVAL ||
	    http_get_bool(req->body, "flag", &flag, rep) == -EINVAL)
		return;
	rep->body = json_object_new_object();
	json_object_object_add(rep->body, "name", json_object_new_string(name));
	json_object_object_add(rep->body, "count", json_object_new_int((int)count));
	rep->after = after;
}

static void conflict(void *ctx, const struct http_request *req, struct http_reply *rep)
{
	http_error(rep, 409, "invalid_state", "cannot %s now", "do that");
}

static const struct http_route routes[] = {
	{ "POST", "/echo", echo, true },
	{ "GET", "/echo", echo, false },
	{ "POST", "/conflict", conflict, false },
};

struct client_job {
	void (*fn)(void);
	atomic_bool done;
};

static void *client_thread(void *arg)
{
	struct client_job *job = arg;

	job->fn();
	atomic_store(&job->done, true);
	return NULL;
}

/* Runs fn on a client thread while this thread serves the API. */
static void serve_while(void (*fn)(void))
{
	struct event_loop loop;
	struct http_server *s;
	struct client_job job = { .fn = fn };
	pthread_t t;
	char err[256];

	snprintf(sock_path, sizeof(sock_path), "/tmp/keel-test-http-%d.sock", (int)getpid());
	KASSERT(event_loop_init(&loop) == 0);
	s = http_server_start(&loop, sock_path, routes, 3, NULL, err, sizeof(err));
	KASSERT(s != NULL);
	pthread_create(&t, NULL, client_thread, &job);
	for (int i = 0; i < 20000 && !atomic_load(&job.done); i++)
		event_loop_run_once(&loop, 1);
	KCHECK(atomic_load(&job.done));
	pthread_join(t, NULL);
	http_server_stop(s);
	event_loop_destroy(&loop);
}

static struct http_client_reply rep;
static int rc;

static int request(const char *method, const char *path, const char *body)
{
	char err[256];

	http_client_reply_free(&rep);
	rc = http_client_request(sock_path, method, path, body, 5000, &rep, err, sizeof(err));
	return rc ? -1 : rep.status;
}

/* Raw bytes in, the whole reply out. */
static int raw(const char *req, size_t len, char *out, size_t outlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0), status = -1;
	size_t got = 0;
	ssize_t n;

	strcpy(sa.sun_path, sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	for (size_t sent = 0; sent < len; sent += (size_t)n) {
		n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (n <= 0)
			break; /* the server may close early (413): read what it said */
	}
	while (got + 1 < outlen && (n = recv(fd, out + got, outlen - got - 1, 0)) > 0)
		got += (size_t)n;
	out[got] = 0;
	sscanf(out, "HTTP/1.1 %d", &status);
out:
	close(fd);
	return status;
}

static void good_requests(void)
{
	KCHECK_EQ(request("POST", "/echo", "{\"name\": \"a\", \"count\": 3}"), 200);
	KCHECK_STR(rep.body, "{\"name\":\"a\",\"count\":3}");
	KCHECK_EQ(request("GET", "/echo", NULL), 200);
	KCHECK_STR(rep.body, "{\"name\":\"none\",\"count\":0}");
	KCHECK_EQ(request("GET", "/echo", "  {}  "), 200); /* an empty object is no body */
	KCHECK_EQ(request("POST", "/echo", "\n"), 200);
}

KTEST(good_requests_reach_the_handler)
{
	echo_calls = after_calls = 0;
	serve_while(good_requests);
	KCHECK_EQ(echo_calls, 4);
	KCHECK_EQ(after_calls, 4);
	KCHECK(access(sock_path, F_OK) != 0); /* the socket file is gone */
}

static void errors(void)
{
	KCHECK_EQ(request("GET", "/nothing", NULL), 404);
	KCHECK_STR(rep.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such endpoint: /nothing\"}}");
	KCHECK_EQ(request("DELETE", "/echo", NULL), 405);
	KCHECK(strstr(rep.body, "DELETE is not allowed on /echo (allowed: POST, GET)") != NULL);
	KCHECK_EQ(request("POST", "/echo", "{\"name\": "), 400);
	KCHECK(strstr(rep.body, "\"bad_json\"") && strstr(rep.body, "malformed JSON: unexpected end of input"));
	KCHECK_EQ(request("POST", "/echo", "[1, 2]"), 400);
	KCHECK(strstr(rep.body, "the body must be a JSON object") != NULL);
	KCHECK_EQ(request("POST", "/echo", "{} {}"), 400);
	KCHECK(strstr(rep.body, "text after the object") != NULL);
	KCHECK_EQ(request("POST", "/echo", "{\"nme\": \"a\"}"), 400);
	KCHECK(strstr(rep.body, "\"unknown_field\"") && strstr(rep.body, "unknown field 'nme'"));
	KCHECK_EQ(request("POST", "/echo", "{\"name\": 5}"), 400);
	KCHECK(strstr(rep.body, "field 'name' must be a string") != NULL);
	KCHECK_EQ(request("POST", "/echo", "{\"count\": 11}"), 400);
	KCHECK(strstr(rep.body, "field 'count' must be between 0 and 10") != NULL);
	KCHECK_EQ(request("POST", "/echo", "{\"count\": -1}"), 400);
	KCHECK_EQ(request("POST", "/echo", "{\"count\": 99999999999999999999999}"), 400);
	KCHECK_EQ(request("POST", "/echo", "{\"count\": 1.5}"), 400);
	KCHECK(strstr(rep.body, "field 'count' must be an integer") != NULL);
	KCHECK_EQ(request("POST", "/echo", "{\"flag\": \"yes\"}"), 400);
	KCHECK_EQ(request("GET", "/echo", "{\"name\": \"a\"}"), 400);
	KCHECK(strstr(rep.body, "GET /echo takes no fields") != NULL);
	KCHECK_EQ(request("POST", "/echo", "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}}}}}}}}}"), 400);
	KCHECK_EQ(request("POST", "/conflict", NULL), 409);
	KCHECK_STR(rep.body, "{\"error\":{\"code\":\"invalid_state\",\"message\":\"cannot do that now\"}}");
}

KTEST(errors_have_status_code_and_message)
{
	echo_calls = 0;
	serve_while(errors);
	KCHECK_EQ(echo_calls, 7); /* the field and type errors come from the handler */
}

static void raw_errors(void)
{
	static char big[HTTP_MAX_BODY + 4096];
	char out[4096];
	int n;

	n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
		     "Content-Type: application/json\r\n\r\n", HTTP_MAX_BODY + 1);
	memset(big + n, ' ', sizeof(big) - (size_t)n);
	KCHECK_EQ(raw(big, sizeof(big), out, sizeof(out)), 413);
	KCHECK(strstr(out, "\"payload_too_large\"") != NULL);

	/* Chunked bodies are refused outright: the API's bodies are small and sized. */
	n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		     "Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
	KCHECK_EQ(raw(big, (size_t)n, out, sizeof(out)), 501);
	KCHECK(strstr(out, "send Content-Length") != NULL);

	/* A head that never ends. */
	n = snprintf(big, sizeof(big), "GET /echo HTTP/1.1\r\nX-Long: ");
	memset(big + n, 'a', 9000);
	KCHECK_EQ(raw(big, (size_t)n + 9000, out, sizeof(out)), 431);

	/* A Content-Length that is not a number. */
	n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nContent-Length: 2x\r\n\r\n{}");
	KCHECK_EQ(raw(big, (size_t)n, out, sizeof(out)), 400);

	n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
		     "Content-Type: text/plain\r\nConnection: close\r\n\r\n{}");
	KCHECK_EQ(raw(big, (size_t)n, out, sizeof(out)), 415);

	n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
		     "Connection: close\r\n\r\n{ }");
	big[n - 2] = 0; /* a NUL inside the body */
	KCHECK_EQ(raw(big, (size_t)n, out, sizeof(out)), 400);
	KCHECK(strstr(out, "NUL byte") != NULL);

	/* Not HTTP at all; the server lives on. */
	KCHECK_EQ(raw("GARBAGE\r\n\r\n", 11, out, sizeof(out)), 400);
	KCHECK(strstr(out, "malformed HTTP request line") != NULL);
	KCHECK_EQ(request("GET", "/echo", NULL), 200);
}

KTEST(oversized_and_odd_bodies_are_refused)
{
	serve_while(raw_errors);
}

KTEST(a_live_socket_is_not_taken_over)
{
	struct event_loop loop;
	struct http_server *a, *b;
	char err[256];

	snprintf(sock_path, sizeof(sock_path), "/tmp/keel-test-http-%d.sock", (int)getpid());
	KASSERT(event_loop_init(&loop) == 0);
	a = http_server_start(&loop, sock_path, routes, 3, NULL, err, sizeof(err));
	KASSERT(a != NULL);
	b = http_server_start(&loop, sock_path, routes, 3, NULL, err, sizeof(err));
	KCHECK(b == NULL);
	KCHECK(strstr(err, "another process is listening there") != NULL);
	http_server_stop(a);
	/* A stale socket file (nobody listening) is replaced. */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		struct stat st;

		strcpy(sa.sun_path, sock_path);
		KASSERT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		close(fd);
		b = http_server_start(&loop, sock_path, routes, 3, NULL, err, sizeof(err));
		KCHECK(b != NULL);
		KCHECK(stat(sock_path, &st) == 0 && (st.st_mode & 0777) == 0600);
		http_server_stop(b);
	}
	event_loop_destroy(&loop);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	return ktest_run_all();
}
