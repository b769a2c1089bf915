/* The busy work of the case-study workloads (herd.c, relay.c, ring.c): N iterations of a linear
 * congruential step, kept by a volatile store so that -O2 cannot drop the loop. */
#ifndef FTRACEIPC_WORK_H
#define FTRACEIPC_WORK_H
#include <stdint.h>

static volatile uint32_t work_sink;

static void work(long n) {
    uint32_t x = 1;
    for (long i = 0; i < n; i++) x = x * 1103515245u + 12345u;
    work_sink = x;
}
#endif
