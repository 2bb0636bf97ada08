/*
 * bareboat's health probe: a small static program for images without a shell or curl,
 * for a Docker HEALTHCHECK or a Kubernetes exec probe.
 *
 *   health http://HOST[:PORT][/PATH]   healthy when a GET answers 2xx or 3xx
 *   health tcp://HOST:PORT             healthy when a connection opens
 *   health file:///PATH                healthy when PATH exists
 *
 * HOST is an IPv4 address, an IPv6 address in brackets, or localhost: a static program
 * cannot load glibc's name service modules, and a probe checks its own container anyway.
 * Exit status 0 means healthy and 1 unhealthy, as Docker and Kubernetes read it; the
 * whole probe gives up after HEALTH_TIMEOUT seconds (default 5).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int unhealthy(const char *what, const char *detail) {
    printf("unhealthy: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

static void timed_out(int sig) {
    (void)sig;
    static const char msg[] = "unhealthy: timed out\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(1);
}

/* Splits "HOST[:PORT]REST" into a socket address; returns a pointer to REST or NULL. */
static const char *parse_address(const char *s, int default_port, struct sockaddr_storage *addr,
                                 socklen_t *len, char *host, size_t host_size) {
    const char *end;
    if (*s == '[') {
        end = strchr(s, ']');
        if (!end) return NULL;
        s++;
    } else {
        end = s + strcspn(s, ":/");
    }
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= host_size) return NULL;
    memcpy(host, s, n);
    host[n] = 0;
    if (*end == ']') end++;
    long port = default_port;
    if (*end == ':') {
        char *after;
        port = strtol(end + 1, &after, 10);
        if (after == end + 1 || port < 1 || port > 65535) return NULL;
        end = after;
    }
    if (port < 1) return NULL;
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((unsigned short)port);
        *len = sizeof *v4;
    } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((unsigned short)port);
        *len = sizeof *v6;
    } else {
        return NULL;
    }
    return end;
}

static int connect_to(const struct sockaddr_storage *addr, socklen_t len) {
    int fd = socket(addr->ss_family, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (const struct sockaddr *)addr, len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int probe_tcp(const char *target) {
    struct sockaddr_storage addr;
    socklen_t len;
    char host[256];
    const char *rest = parse_address(target, 0, &addr, &len, host, sizeof host);
    if (!rest || *rest) return unhealthy("expected tcp://HOST:PORT with an IP address or localhost", target);
    int fd = connect_to(&addr, len);
    if (fd < 0) return unhealthy("connect", strerror(errno));
    close(fd);
    printf("healthy: connected to %s\n", target);
    return 0;
}

static int probe_http(const char *target) {
    struct sockaddr_storage addr;
    socklen_t len;
    char host[256];
    const char *path = parse_address(target, 80, &addr, &len, host, sizeof host);
    if (!path || (*path && *path != '/'))
        return unhealthy("expected http://HOST[:PORT][/PATH] with an IP address or localhost", target);
    if (!*path) path = "/";
    int fd = connect_to(&addr, len);
    if (fd < 0) return unhealthy("connect", strerror(errno));
    char request[4096];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: bareboat-health\r\n"
                     "Connection: close\r\n\r\n",
                     path, host);
    if (n < 0 || (size_t)n >= sizeof request) return unhealthy("path too long", NULL);
    for (int sent = 0; sent < n;) {
        ssize_t w = write(fd, request + sent, (size_t)(n - sent));
        if (w <= 0) return unhealthy("send", strerror(errno));
        sent += (int)w;
    }
    /* Only the status line matters: "HTTP/1.x NNN ...". */
    char reply[64];
    size_t got = 0;
    while (got < sizeof reply - 1) {
        ssize_t r = read(fd, reply + got, sizeof reply - 1 - got);
        if (r < 0) return unhealthy("receive", strerror(errno));
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    reply[got] = 0;
    int status = 0;
    if (strncmp(reply, "HTTP/", 5) != 0 || sscanf(reply + 5, "%*s %d", &status) != 1)
        return unhealthy("not an HTTP reply", NULL);
    if (status < 200 || status > 399) {
        printf("unhealthy: status %d\n", status);
        return 1;
    }
    printf("healthy: status %d\n", status);
    return 0;
}

static int probe_file(const char *path) {
    struct stat st;
    if (*path != '/') return unhealthy("expected file:///ABSOLUTE/PATH", path);
    if (stat(path, &st) != 0) return unhealthy(path, strerror(errno));
    printf("healthy: %s exists\n", path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr,
                "usage: health http://HOST[:PORT][/PATH] | tcp://HOST:PORT | file:///PATH\n"
                "exit status: 0 healthy, 1 unhealthy; HEALTH_TIMEOUT=SECONDS (default 5)\n");
        return 1;
    }
    const char *t = getenv("HEALTH_TIMEOUT");
    unsigned timeout = t && atoi(t) > 0 ? (unsigned)atoi(t) : 5;
    signal(SIGALRM, timed_out);
    signal(SIGPIPE, SIG_IGN);
    alarm(timeout);
    const char *arg = argv[1];
    if (strncmp(arg, "http://", 7) == 0) return probe_http(arg + 7);
    if (strncmp(arg, "tcp://", 6) == 0) return probe_tcp(arg + 6);
    if (strncmp(arg, "file://", 7) == 0) return probe_file(arg + 7);
    return unhealthy("unknown scheme; use http://, tcp:// or file://", arg);
}
