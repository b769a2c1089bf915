/* A dispatcher hands small jobs to a pool of workers through one shared pipe (case study
 * ``poll_herd`` of bench/insight.py).
 *
 *     herd JOBS WORKERS INFLIGHT poll|epollex [WORK]
 *
 * The dispatcher (comm "dispatcher") keeps INFLIGHT jobs in the shared "jobs" pipe; each of WORKERS
 * forked workers (comm "worker") waits for the jobs pipe to be readable, takes one 8-byte job with a
 * non-blocking read (EAGAIN: another worker took it, wait again), computes WORK loop iterations and
 * answers through the "results" pipe, which the dispatcher reads before it sends the next job.
 *
 * poll:     every worker waits in poll() on the shared fd: each job wakes every idle worker, all but
 *           one find the pipe empty and go back to sleep (a thundering herd).
 * epollex:  every worker has its own epoll instance holding the shared fd with EPOLLEXCLUSIVE: each
 *           job wakes one worker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "work.h"

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void worker(int jobs, int results, int exclusive, long n) {
    prctl(PR_SET_NAME, "worker");
    int ep = -1;
    if (exclusive) {
        ep = epoll_create1(0);
        if (ep < 0) die("epoll_create1");
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = jobs};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, jobs, &ev) < 0) die("epoll_ctl EPOLLEXCLUSIVE");
    }
    for (;;) {
        uint64_t job;
        ssize_t r = read(jobs, &job, sizeof job);
        if (r == sizeof job) {
            if (job == 0) exit(0); /* stop */
            work(n);
            if (write(results, &job, sizeof job) != sizeof job) die("write results");
            continue;
        }
        if (r == 0) exit(0);
        if (r < 0 && errno != EAGAIN) die("read jobs");
        if (exclusive) {
            struct epoll_event ev;
            if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR) die("epoll_wait");
        } else {
            struct pollfd p = {.fd = jobs, .events = POLLIN};
            if (poll(&p, 1, -1) < 0 && errno != EINTR) die("poll");
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: herd JOBS WORKERS INFLIGHT poll|epollex [WORK]\n");
        return 2;
    }
    long jobs_n = atol(argv[1]);
    int workers = atoi(argv[2]), inflight = atoi(argv[3]);
    int exclusive = strcmp(argv[4], "epollex") == 0;
    if (!exclusive && strcmp(argv[4], "poll") != 0) {
        fprintf(stderr, "herd: mode must be poll or epollex\n");
        return 2;
    }
    long n = argc > 5 ? atol(argv[5]) : 20000;
    int jp[2], rp[2];
    if (pipe2(jp, O_NONBLOCK) < 0 || pipe(rp) < 0) die("pipe");
    prctl(PR_SET_NAME, "dispatcher");
    pid_t *kids = calloc(workers, sizeof *kids);
    for (int i = 0; i < workers; i++) {
        kids[i] = fork();
        if (kids[i] < 0) die("fork");
        if (kids[i] == 0) {
            close(jp[1]);
            close(rp[0]);
            worker(jp[0], rp[1], exclusive, n);
        }
    }
    close(jp[0]);
    close(rp[1]);
    /* the dispatcher's end of the jobs pipe blocks: it never has more than INFLIGHT jobs in it */
    fcntl(jp[1], F_SETFL, 0);
    long sent = 0, done = 0;
    for (; sent < inflight && sent < jobs_n; sent++) {
        uint64_t j = (uint64_t)sent + 1;
        if (write(jp[1], &j, sizeof j) != sizeof j) die("write jobs");
    }
    while (done < jobs_n) {
        uint64_t j;
        if (read(rp[0], &j, sizeof j) != sizeof j) die("read results");
        done++;
        if (sent < jobs_n) {
            j = (uint64_t)++sent;
            if (write(jp[1], &j, sizeof j) != sizeof j) die("write jobs");
        }
    }
    for (int i = 0; i < workers; i++) {
        uint64_t stop = 0;
        if (write(jp[1], &stop, sizeof stop) != sizeof stop) die("write stop");
    }
    int bad = 0;
    for (int i = 0; i < workers; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad = 1;
    }
    return bad;
}
