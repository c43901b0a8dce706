/* Load generator and backends of benchmarks/ztunnel_bench.py, compiled at benchmark time, so
 * the measuring tools cost little next to the proxies under test (they share two cores).
 *
 *   loadgen serve SINK_PORT ECHO_PORT   sink (answers the byte count at EOF) and echo, any address
 *   loadgen bulk HOST PORT SECS         one connection, sends as fast as it can
 *   loadgen rr HOST PORT CONNS SIZE SECS   SIZE-byte request/response, one in flight per connection
 *   loadgen hold HOST PORT N            opens N connections, round-trips one byte on each,
 *                                       prints "held N", keeps them until SIGTERM
 *
 * Clients print one JSON object. Latencies are per request, from write to the full response.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 512
static char buffer[1 << 18];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int dial(const char *host, int port) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", host); exit(2); }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    nodelay(fd);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); exit(1); }
    return fd;
}

static int listener(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4096) < 0) {
        perror("listen");
        exit(1);
    }
    return fd;
}

/* Connection kinds in epoll data: the fd in the low 32 bits, the kind above. */
enum { SINK_LISTENER = 1, ECHO_LISTENER, SINK, ECHO };
#define TAG(kind, fd) (((unsigned long long)(kind) << 32) | (unsigned)(fd))

static long long *received; /* per fd, for sink connections */

static int serve(int sink_port, int echo_port) {
    int ep = epoll_create1(0);
    struct epoll_event ev, events[MAX_EVENTS];
    int sink = listener(sink_port), echo = listener(echo_port);
    ev.events = EPOLLIN; ev.data.u64 = TAG(SINK_LISTENER, sink); epoll_ctl(ep, EPOLL_CTL_ADD, sink, &ev);
    ev.events = EPOLLIN; ev.data.u64 = TAG(ECHO_LISTENER, echo); epoll_ctl(ep, EPOLL_CTL_ADD, echo, &ev);
    received = calloc(1 << 20, sizeof *received);
    printf("serving\n");
    fflush(stdout);
    for (;;) {
        int n = epoll_wait(ep, events, MAX_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            int kind = events[i].data.u64 >> 32, fd = (int)(events[i].data.u64 & 0xffffffff);
            if (kind == SINK_LISTENER || kind == ECHO_LISTENER) {
                int c = accept4(fd, NULL, NULL, 0);
                if (c < 0) continue;
                nodelay(c);
                received[c] = 0;
                ev.events = EPOLLIN; ev.data.u64 = TAG(kind == SINK_LISTENER ? SINK : ECHO, c);
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                continue;
            }
            ssize_t got = read(fd, buffer, sizeof buffer);
            if (got <= 0) {
                if (kind == SINK && got == 0) {
                    char line[32];
                    int len = snprintf(line, sizeof line, "%lld\n", received[fd]);
                    (void)!write(fd, line, len);
                }
                close(fd);
                continue;
            }
            if (kind == SINK) {
                received[fd] += got;
            } else {
                for (ssize_t off = 0; off < got;) { /* small messages: blocking write is fine */
                    ssize_t w = write(fd, buffer + off, got - off);
                    if (w <= 0) break;
                    off += w;
                }
            }
        }
    }
    return 0;
}

static int bulk(const char *host, int port, double secs) {
    int fd = dial(host, port);
    double start = now(), end = start + secs;
    while (now() < end)
        if (write(fd, buffer, sizeof buffer) < 0) { perror("write"); return 1; }
    shutdown(fd, SHUT_WR);
    char line[64] = {0};
    ssize_t got = 0, r;
    while ((r = read(fd, line + got, sizeof line - 1 - got)) > 0) got += r;
    double elapsed = now() - start;
    long long bytes = atoll(line);
    printf("{\"bytes\": %lld, \"seconds\": %.3f, \"gbit_per_s\": %.3f}\n", bytes, elapsed,
           bytes * 8 / elapsed / 1e9);
    return 0;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int rr(const char *host, int port, int conns, int size, double secs) {
    int ep = epoll_create1(0);
    int *fds = calloc(conns, sizeof *fds), *pending = calloc(conns, sizeof *pending);
    double *began = calloc(conns, sizeof *began);
    size_t cap = 1 << 22, count = 0;
    double *lat = malloc(cap * sizeof *lat);
    char *request = malloc(size);
    memset(request, 'x', size);
    double warm = now() + 0.3, end = warm + secs;
    for (int i = 0; i < conns; i++) {
        fds[i] = dial(host, port);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        began[i] = now();
        pending[i] = size;
        if (write(fds[i], request, size) != size) { perror("write"); return 1; }
    }
    struct epoll_event events[MAX_EVENTS];
    while (now() < end) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 100);
        for (int e = 0; e < n; e++) {
            int i = events[e].data.u32;
            ssize_t got = read(fds[i], buffer, sizeof buffer);
            if (got <= 0) { fprintf(stderr, "connection %d closed\n", i); return 1; }
            pending[i] -= got;
            if (pending[i] > 0) continue;
            double t = now();
            if (t >= warm && count < cap) lat[count++] = (t - began[i]) * 1e6;
            began[i] = t;
            pending[i] = size;
            if (write(fds[i], request, size) != size) { perror("write"); return 1; }
        }
    }
    qsort(lat, count, sizeof *lat, cmp);
    printf("{\"requests\": %zu, \"rps\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f}\n", count,
           count / secs, count ? lat[count / 2] : 0.0, count ? lat[(size_t)(count * 0.99)] : 0.0);
    return 0;
}

static volatile sig_atomic_t stopping = 0;
static void on_term(int sig) { (void)sig; stopping = 1; }

static int hold(const char *host, int port, int n) {
    signal(SIGTERM, on_term);
    for (int i = 0; i < n; i++) {
        int fd = dial(host, port);
        char one = '.';
        if (write(fd, &one, 1) != 1 || read(fd, &one, 1) != 1) { fprintf(stderr, "connection %d failed\n", i); return 1; }
    }
    printf("held %d\n", n);
    fflush(stdout);
    while (!stopping) pause();
    return 0;
}

int main(int argc, char **argv) {
    struct rlimit lim;
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    signal(SIGPIPE, SIG_IGN);
    if (argc == 4 && !strcmp(argv[1], "serve")) return serve(atoi(argv[2]), atoi(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "bulk")) return bulk(argv[2], atoi(argv[3]), atof(argv[4]));
    if (argc == 7 && !strcmp(argv[1], "rr"))
        return rr(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atof(argv[6]));
    if (argc == 5 && !strcmp(argv[1], "hold")) return hold(argv[2], atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: see the comment at the top of loadgen.c\n");
    return 2;
}
