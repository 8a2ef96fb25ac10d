/* worker.c — the fuzz harness's second thread: a persistent worker that runs
 * the bodies (or halves of bodies) that the main thread posts to it, frees its
 * half of the slots at the end of each input, and can be replaced by a new
 * thread (the old one exits, orphaning its blocks).  Handoffs spin briefly
 * before they sleep on a condition variable. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"

/* A thread waiting for the other spins for up to SPIN_NS before it sleeps
 * on a condition variable: long enough to bridge the handoffs between the
 * segments of one input, so that a shared segment usually starts on both
 * threads at once without a wake-up (which can take hundreds of microseconds
 * in a VM); short enough not to steal a busy machine's cores. */
#ifndef SPIN_NS
#define SPIN_NS 50000 /* 50 us */
#endif

static struct {
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t job_cv, start_cv, done_cv;
  atomic_uint job_gen, start_gen, done_gen;
  /* the job: written by main before job_gen moves on (worker_ctx too) */
  int job; /* JOB_RUN, JOB_CLEANUP or JOB_EXIT */
  const uint8_t *data;
  size_t len;
} w = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .job_cv = PTHREAD_COND_INITIALIZER,
       .start_cv = PTHREAD_COND_INITIALIZER,
       .done_cv = PTHREAD_COND_INITIALIZER};

ctx_t worker_ctx;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Waits until *gen differs from seen (acquire), spinning first; returns it. */
static unsigned wait_gen(atomic_uint *gen, pthread_cond_t *cv, unsigned seen) {
  unsigned g;
  uint64_t deadline = 0;
  for (unsigned spins = 0;; spins++) {
    if ((g = atomic_load_explicit(gen, memory_order_acquire)) != seen) return g;
    cpu_relax();
    if (spins % 256 == 255) {
      uint64_t t = now_ns();
      if (deadline == 0)
        deadline = t + SPIN_NS;
      else if (t > deadline)
        break;
    }
  }
  pthread_mutex_lock(&w.mu);
  while ((g = atomic_load_explicit(gen, memory_order_acquire)) == seen) pthread_cond_wait(cv, &w.mu);
  pthread_mutex_unlock(&w.mu);
  return g;
}

static void bump_gen(atomic_uint *gen, pthread_cond_t *cv, unsigned to) {
  pthread_mutex_lock(&w.mu);
  atomic_store_explicit(gen, to, memory_order_release);
  pthread_cond_signal(cv);
  pthread_mutex_unlock(&w.mu);
}

static void *worker_main(void *arg) {
  unsigned seen = (unsigned)(uintptr_t)arg;
  for (;;) {
    seen = wait_gen(&w.job_gen, &w.job_cv, seen);
    bump_gen(&w.start_gen, &w.start_cv, seen);
    if (w.job == JOB_EXIT) {
      bump_gen(&w.done_gen, &w.done_cv, seen);
      return NULL;
    }
    if (w.job == JOB_CLEANUP)
      for (unsigned i = 1; i < NSLOTS; i += 2) release(&worker_ctx, i, "free at the end of the input");
    else
      run_ops(&worker_ctx, w.data, w.len);
    bump_gen(&w.done_gen, &w.done_cv, seen);
  }
}

void worker_post(int job, const uint8_t *data, size_t len) {
  w.job = job;
  w.data = data;
  w.len = len;
  bump_gen(&w.job_gen, &w.job_cv, atomic_load_explicit(&w.job_gen, memory_order_relaxed) + 1);
}

void worker_wait(void) {
  unsigned g = atomic_load_explicit(&w.job_gen, memory_order_relaxed);
  unsigned d = atomic_load_explicit(&w.done_gen, memory_order_acquire);
  while (d != g) d = wait_gen(&w.done_gen, &w.done_cv, d);
}

/* Waits until the worker has picked up the job just posted, so that both
 * halves of a shared segment really run at the same time. */
void worker_started(void) {
  unsigned g = atomic_load_explicit(&w.job_gen, memory_order_relaxed);
  unsigned d = atomic_load_explicit(&w.start_gen, memory_order_acquire);
  while (d != g) d = wait_gen(&w.start_gen, &w.start_cv, d);
}

void worker_start(void) {
  unsigned g = atomic_load(&w.job_gen);
  int rc = pthread_create(&w.thread, NULL, worker_main, (void *)(uintptr_t)g);
  if (rc != 0) fail("pthread_create: %s", strerror(rc));
  w.started = true;
}

bool worker_exists(void) { return w.started; }

/* Ends the worker thread (its blocks become orphans) and starts a new one. */
void worker_replace(void) {
#ifdef FUZZ_TRACE
  fprintf(stderr, "[worker thread replaced]\n");
#endif
  worker_post(JOB_EXIT, NULL, 0);
  worker_wait();
  pthread_join(w.thread, NULL);
  worker_start();
}
