/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The smallest HTTP/1.1 client that talks to our own control socket: one
 * request per connection (Connection: close), a JSON body or none, the
 * reply read to the end, for keel-vmm ctl and the black-box tests; it
 * is not a general HTTP client (no chunked replies, no redirects, no TLS).
 */
#ifndef KEEL_API_HTTP_CLIENT_H
#define KEEL_API_HTTP_CLIENT_H

#include <stddef.h>

#define HTTP_CLIENT_MAX_REPLY (4 * 1024 * 1024)

struct http_client_reply {
	int status;
	char *body; /* NUL-terminated, malloc'd */
	size_t len;
};

/*
 * Sends METHOD PATH with body (NULL: none) to the UNIX socket at
 * socket_path, waiting at most timeout_ms for the whole exchange. 0, or
 * -errno with a reason in err.
 */
int http_client_request(const char *socket_path, const char *method, const char *path,
			const char *body, int timeout_ms, struct http_client_reply *rep,
			char *err, size_t errlen);
void http_client_reply_free(struct http_client_reply *rep);

#endif
