/* Load generator and backends for benchmarks/hbone_bench.py (compiled at benchmark time).
 *
 *   loadgen echo PORT            echo server (epoll, any number of connections)
 *   loadgen sink PORT            discard server (bulk throughput)
 *   loadgen bulk HOST PORT SECS  one connection, send as fast as possible; prints Gbit/s
 *   loadgen rr HOST PORT CONNS SECS   1-byte ping-pong on CONNS connections;
 *                                prints "rps p50_us p99_us"
 *   loadgen idle HOST PORT N     open N connections, echo 1 byte on each, print "ready",
 *                                hold them until stdin closes
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(const char *host, int port) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); exit(1); }
    return fd;
}

static int serve(int port, int echo) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) {
        perror("listen"); return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, events[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    static char buf[1 << 18];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int c = accept(lfd, NULL, NULL);
                if (c < 0) continue;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) { close(fd); continue; }
            if (echo) {
                for (ssize_t off = 0; off < r;) {
                    ssize_t w = write(fd, buf + off, r - off);
                    if (w < 0) { if (errno == EAGAIN) continue; break; }
                    off += w;
                }
            }
        }
    }
}

static int bulk(const char *host, int port, double secs) {
    int fd = dial(host, port);
    static char buf[1 << 18];
    memset(buf, 'b', sizeof buf);
    double start = now(), end = start + secs;
    long long sent = 0;
    while (now() < end) {
        ssize_t w = write(fd, buf, sizeof buf);
        if (w < 0) { perror("write"); return 1; }
        sent += w;
    }
    printf("%.3f\n", sent * 8 / (now() - start) / 1e9);
    return 0;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int rr(const char *host, int port, int conns, double secs) {
    int ep = epoll_create1(0), *fds = calloc(conns, sizeof *fds);
    double *sent_at = calloc(conns, sizeof *sent_at);
    size_t cap = 1 << 22, count = 0;
    double *lat = malloc(cap * sizeof *lat);
    for (int i = 0; i < conns; i++) {
        fds[i] = dial(host, port);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    double start = now(), warm = start + 0.3, end = warm + secs;
    for (int i = 0; i < conns; i++) { sent_at[i] = now(); write(fds[i], "x", 1); }
    struct epoll_event events[256];
    char c;
    while (now() < end) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int k = 0; k < n; k++) {
            int i = events[k].data.u32;
            if (read(fds[i], &c, 1) != 1) { fprintf(stderr, "rr: connection closed\n"); return 1; }
            double t = now();
            if (t > warm && count < cap) lat[count++] = t - sent_at[i];
            sent_at[i] = t;
            write(fds[i], "x", 1);
        }
    }
    qsort(lat, count, sizeof *lat, cmp);
    printf("%.0f %.1f %.1f\n", count / secs, lat[count / 2] * 1e6, lat[(size_t)(count * 0.99)] * 1e6);
    return 0;
}

static int idle(const char *host, int port, int n) {
    char c;
    for (int i = 0; i < n; i++) {
        int fd = dial(host, port);
        if (write(fd, "i", 1) != 1 || read(fd, &c, 1) != 1) { fprintf(stderr, "idle: echo failed\n"); return 1; }
    }
    printf("ready\n");
    fflush(stdout);
    while (read(0, &c, 1) > 0) {}
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "echo")) return serve(atoi(argv[2]), 1);
    if (argc >= 3 && !strcmp(argv[1], "sink")) return serve(atoi(argv[2]), 0);
    if (argc >= 5 && !strcmp(argv[1], "bulk")) return bulk(argv[2], atoi(argv[3]), atof(argv[4]));
    if (argc >= 6 && !strcmp(argv[1], "rr")) return rr(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
    if (argc >= 5 && !strcmp(argv[1], "idle")) return idle(argv[2], atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: see the comment at the top of loadgen.c\n");
    return 2;
}
