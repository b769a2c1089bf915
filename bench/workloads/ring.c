/* Tasks in a ring of pipes pass tokens round (case study ``token_ring`` of bench/insight.py).
 *
 *     ring NODES TOKENS HOPS [WORK]
 *
 * NODES processes (comm "ringnode") are joined in a ring by pipes: node i reads an 8-byte token from
 * pipe i, computes WORK loop iterations and writes the token into pipe i+1 (the last node into pipe
 * 0). TOKENS tokens circulate; the work done is fixed by HOPS (the hops of all tokens together,
 * rounded down to a multiple of NODES * TOKENS), whatever TOKENS is.
 *
 * TOKENS = 1: one node runs at a time, every other node waits for its turn (a wait cycle).
 * TOKENS > 1: several messages in flight round the cycle, so nodes work at the same time.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "work.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: ring NODES TOKENS HOPS [WORK]\n");
        return 2;
    }
    int nodes = atoi(argv[1]), tokens = atoi(argv[2]);
    long hops = atol(argv[3]);
    long n = argc > 4 ? atol(argv[4]) : 20000;
    if (nodes < 2 || tokens < 1 || tokens > 512) {
        fprintf(stderr, "ring: NODES >= 2, 1 <= TOKENS <= 512\n");
        return 2;
    }
    long rounds = hops / ((long)nodes * tokens);
    if (rounds < 1) rounds = 1;
    long per_node = rounds * tokens; /* tokens each node reads */
    int (*p)[2] = calloc(nodes, sizeof *p);
    for (int i = 0; i < nodes; i++)
        if (pipe(p[i]) < 0) {
            perror("pipe");
            return 2;
        }
    pid_t *kids = calloc(nodes, sizeof *kids);
    for (int i = 0; i < nodes; i++) {
        kids[i] = fork();
        if (kids[i] < 0) {
            perror("fork");
            return 2;
        }
        if (kids[i] == 0) {
            prctl(PR_SET_NAME, "ringnode");
            int in = p[i][0], out = p[(i + 1) % nodes][1];
            for (int j = 0; j < nodes; j++) {
                if (p[j][0] != in) close(p[j][0]);
                if (p[j][1] != out) close(p[j][1]);
            }
            for (long k = 0; k < per_node; k++) {
                uint64_t t;
                if (read(in, &t, sizeof t) != sizeof t) _exit(3);
                work(n);
                t++;
                if (write(out, &t, sizeof t) != sizeof t) _exit(4);
            }
            _exit(0);
        }
    }
    /* the parent puts the tokens into pipe 0, then only waits; it keeps pipe 0's read end open so
     * that the last node's final writes (the TOKENS tokens nobody reads again) never meet EPIPE */
    for (int t = 0; t < tokens; t++) {
        uint64_t v = 0;
        if (write(p[0][1], &v, sizeof v) != sizeof v) return 2;
    }
    for (int i = 0; i < nodes; i++) {
        if (i) close(p[i][0]);
        close(p[i][1]);
    }
    int bad = 0;
    for (int i = 0; i < nodes; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
    }
    return bad;
}
