/*
 * nng_bench: the libnng column of `ferry bench sp`.
 *
 * `ferry bench sp` embeds this file, compiles it with `cc ... -lnng` into a temporary
 * directory and runs it once per measurement, so that the ferry binary itself stays pure
 * Rust. Both ends of a measurement run in this one process (the server or the sender on a
 * thread), as ferry's and the raw floor's do in theirs, so every system pays for the same
 * kind of hand-off between threads.
 *
 *   nng_bench lat URL SIZE WARMUP COUNT DURATION_MS TIMEOUT_S
 *       REQ/REP: WARMUP untimed round trips, then COUNT timed ones (or, with COUNT 0,
 *       as many as fit in DURATION_MS). Prints "result lat NS NS ...", one sample per
 *       round trip.
 *   nng_bench thr URL SIZE WARMUP COUNT DURATION_MS TIMEOUT_S
 *       PUSH/PULL: the sender sends WARMUP messages, then COUNT more (or sends for
 *       DURATION_MS); the last one has first byte 1, every other 0. The receiver times
 *       from the first message after the warm-up to the last and prints
 *       "result thr MESSAGES ELAPSED_NS".
 *
 * URL is what the server or receiver listens on; "tcp://host:0" is dialed at the port
 * the system chose. For tls+tcp:// the environment names the files: NNG_BENCH_CERT_KEY
 * (certificate and key, for the listener) and NNG_BENCH_CA (for the dialer to verify it). Results are printed before anything is closed, and the program then
 * leaves with _exit without closing: libnng 1.5.2 can deadlock in nng_close. alarm()
 * bounds the run even if the parent is gone; the parent also kills it after a timeout.
 */
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct config {
    char url[512];
    char dial_url[512];
    size_t size;
    uint64_t warmup;
    uint64_t count;
    uint64_t duration_ns;
    int timeout_ms;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rv) {
    fprintf(stderr, "nng_bench: %s: %s\n", what, nng_strerror(rv));
    fflush(stderr);
    _exit(1);
}

static void usage(void) {
    fprintf(stderr, "usage: nng_bench lat|thr URL SIZE WARMUP COUNT DURATION_MS TIMEOUT_S\n");
    _exit(2);
}

static uint64_t parse_u64(const char *s) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0') {
        usage();
    }
    return (uint64_t)v;
}

/* Listens on cfg->url and works out the address to dial (the bound port for tcp://...:0). */
static void listen_on(nng_socket s, struct config *cfg) {
    nng_listener l;
    int rv;
    const char *cert_key = getenv("NNG_BENCH_CERT_KEY");
    if ((rv = nng_listener_create(&l, s, cfg->url)) != 0) die("nng_listener_create", rv);
    if (cert_key != NULL && (rv = nng_listener_set_string(l, NNG_OPT_TLS_CERT_KEY_FILE, cert_key)) != 0) {
        die("tls-cert-key-file", rv);
    }
    if ((rv = nng_listener_start(l, 0)) != 0) die("nng_listener_start", rv);
    snprintf(cfg->dial_url, sizeof cfg->dial_url, "%s", cfg->url);
    size_t n = strlen(cfg->url);
    if (strncmp(cfg->url, "tcp://", 6) == 0 && n > 2 && strcmp(cfg->url + n - 2, ":0") == 0) {
        int port;
        if ((rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port)) != 0) die("tcp-bound-port", rv);
        snprintf(cfg->dial_url, sizeof cfg->dial_url, "%.*s:%d", (int)(n - 2), cfg->url, port);
    }
}

/* Dials cfg->dial_url, verifying a TLS listener against NNG_BENCH_CA when it is set. */
static void dial_to(nng_socket s, struct config *cfg) {
    nng_dialer d;
    int rv;
    const char *ca = getenv("NNG_BENCH_CA");
    if ((rv = nng_dialer_create(&d, s, cfg->dial_url)) != 0) die("nng_dialer_create", rv);
    if (ca != NULL && (rv = nng_dialer_set_string(d, NNG_OPT_TLS_CA_FILE, ca)) != 0) die("tls-ca-file", rv);
    if ((rv = nng_dialer_start(d, 0)) != 0) die("nng_dialer_start", rv);
}

static void set_recv_timeout(nng_socket s, int ms) {
    int rv;
    if ((rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, ms)) != 0) die("recv-timeout", rv);
}

/* REP echo server: sends every request back as its reply (the header keeps the backtrace). */
static void *echo_server(void *arg) {
    nng_socket rep = *(nng_socket *)arg;
    for (;;) {
        nng_msg *m;
        int rv;
        if ((rv = nng_recvmsg(rep, &m, 0)) != 0) die("rep recv", rv);
        if ((rv = nng_sendmsg(rep, m, 0)) != 0) die("rep send", rv);
    }
    return NULL;
}

static void run_latency(struct config *cfg) {
    nng_socket rep, req;
    pthread_t server;
    int rv;
    if ((rv = nng_rep0_open(&rep)) != 0) die("nng_rep0_open", rv);
    listen_on(rep, cfg);
    if (pthread_create(&server, NULL, echo_server, &rep) != 0) die("pthread_create", NNG_ENOMEM);
    if ((rv = nng_req0_open(&req)) != 0) die("nng_req0_open", rv);
    set_recv_timeout(req, cfg->timeout_ms);
    dial_to(req, cfg);

    nng_msg *m;
    if ((rv = nng_msg_alloc(&m, cfg->size)) != 0) die("nng_msg_alloc", rv);
    memset(nng_msg_body(m), 0, cfg->size);
    /* Like nng's own perf tool, the reply is sent again as the next request. */
    for (uint64_t i = 0; i < cfg->warmup; i++) {
        if ((rv = nng_sendmsg(req, m, 0)) != 0) die("req send", rv);
        if ((rv = nng_recvmsg(req, &m, 0)) != 0) die("req recv", rv);
    }
    size_t cap = cfg->count ? cfg->count : 1024, n = 0;
    uint64_t *samples = malloc(cap * sizeof *samples);
    if (samples == NULL) die("malloc", NNG_ENOMEM);
    uint64_t deadline = now_ns() + cfg->duration_ns;
    for (;;) {
        if (cfg->count ? n >= cfg->count : (n >= 2 && now_ns() >= deadline)) break;
        uint64_t t0 = now_ns();
        if ((rv = nng_sendmsg(req, m, 0)) != 0) die("req send", rv);
        if ((rv = nng_recvmsg(req, &m, 0)) != 0) die("req recv", rv);
        uint64_t t1 = now_ns();
        if (n == cap) {
            cap *= 2;
            samples = realloc(samples, cap * sizeof *samples);
            if (samples == NULL) die("realloc", NNG_ENOMEM);
        }
        samples[n++] = t1 - t0;
    }
    if (nng_msg_len(m) != cfg->size) {
        fprintf(stderr, "nng_bench: reply of %zu bytes, expected %zu\n", nng_msg_len(m), cfg->size);
        _exit(1);
    }
    fputs("result lat", stdout);
    for (size_t i = 0; i < n; i++) printf(" %llu", (unsigned long long)samples[i]);
    putchar('\n');
    fflush(stdout);
    _exit(0);
}

static void send_one(nng_socket push, size_t size, unsigned char marker) {
    nng_msg *m;
    int rv;
    if ((rv = nng_msg_alloc(&m, size)) != 0) die("nng_msg_alloc", rv);
    memset(nng_msg_body(m), 0, size);
    ((unsigned char *)nng_msg_body(m))[0] = marker;
    if ((rv = nng_sendmsg(push, m, 0)) != 0) die("push send", rv);
}

static void *sender(void *arg) {
    struct config *cfg = arg;
    nng_socket push;
    int rv;
    if ((rv = nng_push0_open(&push)) != 0) die("nng_push0_open", rv);
    dial_to(push, cfg);
    for (uint64_t i = 0; i < cfg->warmup; i++) send_one(push, cfg->size, 0);
    if (cfg->count) {
        for (uint64_t i = 1; i < cfg->count; i++) send_one(push, cfg->size, 0);
    } else {
        uint64_t deadline = now_ns() + cfg->duration_ns;
        send_one(push, cfg->size, 0);
        while (now_ns() < deadline) send_one(push, cfg->size, 0);
    }
    send_one(push, cfg->size, 1);
    return NULL;
}

static void run_throughput(struct config *cfg) {
    nng_socket pull;
    pthread_t tx;
    int rv;
    if ((rv = nng_pull0_open(&pull)) != 0) die("nng_pull0_open", rv);
    set_recv_timeout(pull, cfg->timeout_ms);
    listen_on(pull, cfg);
    if (pthread_create(&tx, NULL, sender, cfg) != 0) die("pthread_create", NNG_ENOMEM);
    uint64_t received = 0, first = 0, last = 0;
    for (;;) {
        nng_msg *m;
        if ((rv = nng_recvmsg(pull, &m, 0)) != 0) die("pull recv", rv);
        uint64_t t = now_ns();
        if (nng_msg_len(m) != cfg->size) {
            fprintf(stderr, "nng_bench: message of %zu bytes, expected %zu\n", nng_msg_len(m), cfg->size);
            _exit(1);
        }
        int is_last = ((unsigned char *)nng_msg_body(m))[0] == 1;
        nng_msg_free(m);
        if (received == cfg->warmup) first = t;
        received++;
        if (is_last) {
            last = t;
            break;
        }
    }
    if (received <= cfg->warmup) {
        fprintf(stderr, "nng_bench: the last message came before the warm-up ended\n");
        _exit(1);
    }
    printf("result thr %llu %llu\n", (unsigned long long)(received - cfg->warmup), (unsigned long long)(last - first));
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 8) usage();
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (strlen(argv[2]) + 1 > sizeof cfg.url) usage();
    snprintf(cfg.url, sizeof cfg.url, "%s", argv[2]);
    cfg.size = (size_t)parse_u64(argv[3]);
    cfg.warmup = parse_u64(argv[4]);
    cfg.count = parse_u64(argv[5]);
    cfg.duration_ns = parse_u64(argv[6]) * 1000000u;
    uint64_t timeout_s = parse_u64(argv[7]);
    if (cfg.size == 0 || timeout_s == 0 || timeout_s > 86400) usage();
    cfg.timeout_ms = (int)(timeout_s * 1000);
    /* Self-destruct, should the parent die before it can kill us. */
    alarm((unsigned)timeout_s);
    if (strcmp(argv[1], "lat") == 0) {
        run_latency(&cfg);
    } else if (strcmp(argv[1], "thr") == 0) {
        if (cfg.count == 1) usage();
        run_throughput(&cfg);
    } else {
        usage();
    }
    return 0;
}
