/* A three-stage pipeline whose middle stage only relays (case study ``relay_wake_then_block`` of
 * bench/insight.py).
 *
 *     relay BLOCKS OUT_PIPE_SIZE [WORK]
 *
 * source (comm "source") computes steadily and writes 4 KiB at a time into pipe A; relay (comm
 * "relay") reads each 4 KiB from A and writes it into pipe B; sink (comm "sink") takes 256 KiB from
 * B, then computes on it in one go (a burst), and so on for BLOCKS blocks. source's work per 256 KiB
 * equals sink's work per block (WORK loop iterations each).
 *
 * With the default 64 KiB pipes, while sink computes, relay is woken through A, writes into the full
 * B and blocks at once, and source stalls behind it: source and sink take turns. OUT_PIPE_SIZE
 * (F_SETPIPE_SZ on B, e.g. 1048576) lets relay take its next input while sink computes: source and
 * sink work at the same time. 0 keeps the default size.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK 4096
#define BLOCK (256 * 1024)

#include "work.h"

static int write_all(int fd, const char *b, size_t n) {
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: relay BLOCKS OUT_PIPE_SIZE [WORK]\n");
        return 2;
    }
    long blocks = atol(argv[1]);
    int out_size = atoi(argv[2]);
    long n = argc > 3 ? atol(argv[3]) : 2000000;
    int a[2], b[2];
    if (pipe(a) < 0 || pipe(b) < 0) {
        perror("pipe");
        return 2;
    }
    if (out_size > 0 && fcntl(b[1], F_SETPIPE_SZ, out_size) < out_size) {
        perror("F_SETPIPE_SZ");
        return 2;
    }
    static char buf[BLOCK];
    pid_t kids[2];
    kids[0] = fork();
    if (kids[0] == 0) { /* relay */
        prctl(PR_SET_NAME, "relay");
        close(a[1]);
        close(b[0]);
        for (;;) {
            ssize_t r = read(a[0], buf, CHUNK);
            if (r < 0) _exit(3);
            if (r == 0) _exit(0);
            if (write_all(b[1], buf, (size_t)r) < 0) _exit(4);
        }
    }
    kids[1] = fork();
    if (kids[1] == 0) { /* sink */
        prctl(PR_SET_NAME, "sink");
        close(a[0]);
        close(a[1]);
        close(b[1]);
        for (long k = 0; k < blocks; k++) {
            size_t got = 0;
            while (got < BLOCK) {
                ssize_t r = read(b[0], buf + got, BLOCK - got);
                if (r <= 0) _exit(3);
                got += (size_t)r;
            }
            work(n);
        }
        _exit(0);
    }
    prctl(PR_SET_NAME, "source");
    close(a[0]);
    close(b[0]);
    close(b[1]);
    long per_chunk = n / (BLOCK / CHUNK);
    for (long k = 0; k < blocks * (BLOCK / CHUNK); k++) {
        work(per_chunk);
        if (write_all(a[1], buf, CHUNK) < 0) return 4;
    }
    close(a[1]);
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
    }
    return bad;
}
