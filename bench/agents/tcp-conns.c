// Short TCP connections for the connection-rate benchmark (bench/conn-rate.ts),
// run inside lab namespaces. Built by `make build` into build/bench/tcp-conns.
//
//   tcp-conns server --port P
//     -> {"event":"listening","port":P}
//   tcp-conns client --host H --port P --count N --concurrency C [--duration-ms D] [--timeout-ms T]
//     -> {"event":"done","completed":N,"failed":F,"seconds":S,"connectUs":{"p50":..,"p99":..}}
//
// The server closes each connection as soon as it is accepted, so TIME_WAIT
// stays on the server and a client port is free again as soon as the
// client's own FIN is acknowledged. The client keeps `concurrency`
// non-blocking connects in flight until `count` have completed (connected,
// then closed by the server) or, with --duration-ms, until D ms have passed
// (the connections in flight then still finish), timing each connect() to established (SYN to
// SYN-ACK, as the client sees it). One thread and epoll: at tens of
// thousands of connections per second a Node client was the bottleneck.
// Bounded twice: a connection that takes longer than CONN_TIMEOUT_MS and
// every connection still open at --timeout-ms are aborted with a reset
// (SO_LINGER 0, so their ports come back at once) and counted as failed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_TIMEOUT_MS 5000
#define LISTEN_BACKLOG 4096
#define MAX_CONCURRENCY 65536

static void die(const char *what) {
	fprintf(stderr, "tcp-conns: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(const char *problem, const char *arg) {
	fprintf(stderr, "tcp-conns: %s%s%s\n", problem, arg ? ": " : "", arg ? arg : "");
	fprintf(stderr, "usage: tcp-conns server --port P\n"
			"       tcp-conns client --host H --port P --count N --concurrency C [--duration-ms D] [--timeout-ms T]\n");
	exit(2);
}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct options {
	const char *mode;
	const char *host;
	long port, count, concurrency, duration_ms, timeout_ms;
};

static long positive(const char *name, const char *text, long max) {
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || *end || v <= 0 || v > max) {
		fprintf(stderr, "tcp-conns: --%s %s: a whole number from 1 to %ld is required\n", name, text, max);
		exit(2);
	}
	return v;
}

static struct options parse(int argc, char **argv) {
	struct options o = { .concurrency = 64, .timeout_ms = 30000 };
	if (argc < 2) usage("no mode given", NULL);
	o.mode = argv[1];
	for (int i = 2; i < argc; i += 2) {
		const char *flag = argv[i];
		if (i + 1 >= argc) usage("a value is missing for", flag);
		const char *value = argv[i + 1];
		if (!strcmp(flag, "--host")) o.host = value;
		else if (!strcmp(flag, "--port")) o.port = positive("port", value, 65535);
		else if (!strcmp(flag, "--count")) o.count = positive("count", value, INT_MAX);
		else if (!strcmp(flag, "--concurrency")) o.concurrency = positive("concurrency", value, MAX_CONCURRENCY);
		else if (!strcmp(flag, "--duration-ms")) o.duration_ms = positive("duration-ms", value, 3600000);
		else if (!strcmp(flag, "--timeout-ms")) o.timeout_ms = positive("timeout-ms", value, 3600000);
		else usage("unknown option", flag);
	}
	if (!o.port) usage("--port is required", NULL);
	return o;
}

static void server(const struct options *o) {
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0) die("socket");
	int off = 0, on = 1;
	// One socket for IPv4 and IPv6 clients.
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off)) die("IPV6_V6ONLY");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on)) die("SO_REUSEADDR");
	struct sockaddr_in6 addr = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)o->port), .sin6_addr = in6addr_any };
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr)) die("bind");
	if (listen(fd, LISTEN_BACKLOG)) die("listen");
	printf("{\"event\":\"listening\",\"port\":%ld}\n", o->port);
	fflush(stdout);
	// Runs until the lab stops it. The client sends nothing, so close()
	// sends a FIN, not a reset.
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0) close(c);
		else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE && errno != ENFILE) die("accept");
	}
}

enum slot_state { SLOT_FREE, SLOT_CONNECTING, SLOT_CONNECTED };

struct slot {
	int fd;
	enum slot_state state;
	uint64_t started_ns;
	uint32_t connect_us;
};

struct client {
	struct sockaddr_storage dst;
	socklen_t dst_len;
	int epfd;
	struct slot *slots;
	/** Connect times of the completed connections, in completion order. */
	uint32_t *connect_us;
	long started, completed, failed;
};

static void finish(struct client *c, struct slot *s, int ok) {
	if (!ok) {
		// A reset, not a FIN: the port is free at once and nothing lingers.
		struct linger abort_now = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof abort_now);
	}
	close(s->fd);
	s->state = SLOT_FREE;
	if (ok) c->connect_us[c->completed++] = s->connect_us;
	else c->failed++;
}

/** Starts the next connection in a free slot; a connect() that fails at once counts as failed. */
static void start(struct client *c, struct slot *s, uint32_t index) {
	c->started++;
	s->fd = socket(c->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) die("socket");
	s->state = SLOT_CONNECTING;
	s->started_ns = now_ns();
	if (connect(s->fd, (struct sockaddr *)&c->dst, c->dst_len) && errno != EINPROGRESS) {
		finish(c, s, 0);
		return;
	}
	// Edge-triggered: one event when connected, one when the server's FIN arrives.
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u32 = index };
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s->fd, &ev)) die("epoll_ctl");
}

static void on_event(struct client *c, struct slot *s, uint32_t events) {
	if (s->state == SLOT_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
			finish(c, s, 0);
			return;
		}
		if (!(events & EPOLLOUT)) return;
		s->connect_us = (uint32_t)((now_ns() - s->started_ns) / 1000);
		s->state = SLOT_CONNECTED;
	}
	// Connected: wait for end of stream (the server closes first).
	char buf[64];
	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof buf);
		if (n == 0) return finish(c, s, 1);
		if (n < 0) {
			if (errno == EAGAIN) return;
			if (errno != EINTR) return finish(c, s, 0);
		}
	}
}

static int compare_u32(const void *a, const void *b) {
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/** Nearest-rank percentile of n > 0 sorted values. */
static uint32_t percentile(const uint32_t *sorted, long n, long p) {
	long rank = (p * n + 99) / 100;
	return sorted[(rank < 1 ? 1 : rank) - 1];
}

static void resolve(struct client *c, const struct options *o) {
	struct sockaddr_in *v4 = (struct sockaddr_in *)&c->dst;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&c->dst;
	memset(&c->dst, 0, sizeof c->dst);
	if (inet_pton(AF_INET, o->host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)o->port);
		c->dst_len = sizeof *v4;
	} else if (inet_pton(AF_INET6, o->host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)o->port);
		c->dst_len = sizeof *v6;
	} else {
		usage("--host must be an IPv4 or IPv6 address", o->host);
	}
}

static void client(const struct options *o) {
	if (!o->host) usage("--host is required", NULL);
	if (!o->count) usage("--count is required", NULL);
	struct client c = { 0 };
	resolve(&c, o);
	long slots = o->concurrency < o->count ? o->concurrency : o->count;
	c.slots = calloc((size_t)slots, sizeof *c.slots);
	c.connect_us = calloc((size_t)o->count, sizeof *c.connect_us);
	struct epoll_event *events = calloc((size_t)slots, sizeof *events);
	if (!c.slots || !c.connect_us || !events) die("calloc");
	c.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c.epfd < 0) die("epoll_create1");

	uint64_t t0 = now_ns();
	uint64_t deadline = t0 + (uint64_t)o->timeout_ms * 1000000u;
	uint64_t stop_starting = o->duration_ms ? t0 + (uint64_t)o->duration_ms * 1000000u : UINT64_MAX;
	uint64_t next_sweep = t0;
	for (;;) {
		if (now_ns() < stop_starting)
			for (long i = 0; i < slots && c.started < o->count; i++)
				if (c.slots[i].state == SLOT_FREE) start(&c, &c.slots[i], (uint32_t)i);
		if (c.completed + c.failed == c.started) break;
		uint64_t now = now_ns();
		if (now >= deadline) {
			for (long i = 0; i < slots; i++)
				if (c.slots[i].state != SLOT_FREE) finish(&c, &c.slots[i], 0);
			break;
		}
		if (now >= next_sweep) {
			// Connections that hang (a lost SYN is retried after 1 s, a lost FIN later) give up.
			for (long i = 0; i < slots; i++)
				if (c.slots[i].state != SLOT_FREE && now - c.slots[i].started_ns > (uint64_t)CONN_TIMEOUT_MS * 1000000u)
					finish(&c, &c.slots[i], 0);
			next_sweep = now + 100000000u;
		}
		int n = epoll_wait(c.epfd, events, (int)slots, 100);
		if (n < 0 && errno != EINTR) die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct slot *s = &c.slots[events[i].data.u32];
			// A slot finished by the sweep above may still have an event queued.
			if (s->state != SLOT_FREE) on_event(&c, s, events[i].events);
		}
	}
	double seconds = (double)(now_ns() - t0) / 1e9;
	printf("{\"event\":\"done\",\"completed\":%ld,\"failed\":%ld,\"seconds\":%.6f", c.completed, c.failed, seconds);
	if (c.completed > 0) {
		qsort(c.connect_us, (size_t)c.completed, sizeof *c.connect_us, compare_u32);
		printf(",\"connectUs\":{\"p50\":%u,\"p99\":%u}", percentile(c.connect_us, c.completed, 50), percentile(c.connect_us, c.completed, 99));
	}
	printf("}\n");
	fflush(stdout);
}

int main(int argc, char **argv) {
	struct options o = parse(argc, argv);
	if (!strcmp(o.mode, "server")) server(&o);
	else if (!strcmp(o.mode, "client")) client(&o);
	else usage("unknown mode", o.mode);
	return 0;
}
