/* parallel.c: see parallel.h.
 *
 * One job at a time (job_mu, tried, never waited for). A job is published
 * by resetting the claim word `next` = gen << 32 | item, then the job fields,
 * then `gen` (all sequentially consistent). Items are claimed by CAS on
 * `next` with the claimer's gen, so a helper that read stale fields can
 * never claim an item of a newer job, and a job's counter is only reset
 * after all its items have finished (`done` == n).
 */
#include "parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_IDLE 4000    /* pauses a helper spins before sleeping (~0.1 ms) */
#define SPIN_WAIT 2000    /* pauses the caller spins before yielding */

static struct {
    pthread_mutex_t job_mu;     /* held by the thread running a job */
    pthread_mutex_t mu;         /* with cv: helpers sleeping */
    pthread_cond_t cv;
    int sleepers;               /* under mu */
    int workers;                /* helpers started, under mu */
    _Atomic uint64_t next;      /* gen << 32 | next item */
    _Atomic int done;           /* items finished in the current job */
    _Atomic uint32_t gen;
    _Atomic(dn_parallel_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int n, helpers;     /* items, helpers wanted (tids 1..helpers) */
} pool = {.job_mu = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static _Atomic int nthreads_set;

void dn_parallel_set_threads(int n)
{
    if (n > 0) atomic_store(&nthreads_set, n);
}

int dn_parallel_threads(void)
{
    int n = atomic_load(&nthreads_set);
#ifdef _OPENMP
    if (n <= 0) n = omp_get_max_threads();
#else
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n < 1 ? 1 : n > DN_PARALLEL_MAX_THREADS ? DN_PARALLEL_MAX_THREADS : n;
}

static void run_items(uint32_t g, dn_parallel_fn fn, void *ctx, int n, int tid)
{
    for (;;) {
        uint64_t v = atomic_load(&pool.next);
        if ((uint32_t)(v >> 32) != g || (int)(uint32_t)v >= n) return;
        if (!atomic_compare_exchange_weak(&pool.next, &v, v + 1)) continue;
        fn(ctx, (int)(uint32_t)v, tid);
        atomic_fetch_add(&pool.done, 1);
    }
}

static void *helper(void *arg)
{
    int tid = (int)(intptr_t)arg;
    uint32_t seen = atomic_load(&pool.gen);
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load(&pool.gen)) == seen) {
            if (++spins < SPIN_IDLE) { cpu_relax(); continue; }
            pthread_mutex_lock(&pool.mu);
            pool.sleepers++;
            while ((g = atomic_load(&pool.gen)) == seen) pthread_cond_wait(&pool.cv, &pool.mu);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.mu);
        }
        seen = g;
        dn_parallel_fn fn = atomic_load(&pool.fn);
        void *ctx = atomic_load(&pool.ctx);
        int n = atomic_load(&pool.n);
        if (tid <= atomic_load(&pool.helpers)) run_items(g, fn, ctx, n, tid);
    }
    return NULL;
}

static void after_fork_child(void)
{
    pthread_mutex_init(&pool.job_mu, NULL);
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.cv, NULL);
    pool.sleepers = 0;
    pool.workers = 0;
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, after_fork_child); }

/* Start helpers up to `want`; returns how many exist. Under job_mu. */
static int ensure_helpers(int want)
{
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool.mu);
    while (pool.workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int err = pthread_create(&t, &attr, helper, (void *)(intptr_t)(pool.workers + 1));
        pthread_attr_destroy(&attr);
        if (err) break;
        pool.workers++;
    }
    int have = pool.workers;
    pthread_mutex_unlock(&pool.mu);
    return have;
}

void dn_parallel_for(int n, int nthreads, dn_parallel_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (nthreads > n) nthreads = n;
    if (nthreads > DN_PARALLEL_MAX_THREADS) nthreads = DN_PARALLEL_MAX_THREADS;
    int helpers = nthreads - 1;
    if (helpers > 0 && pthread_mutex_trylock(&pool.job_mu) == 0) {
        int have = ensure_helpers(helpers);
        if (have < helpers) helpers = have;
        uint32_t g = atomic_load(&pool.gen) + 1;
        atomic_store(&pool.next, (uint64_t)g << 32);
        atomic_store(&pool.done, 0);
        atomic_store(&pool.fn, fn);
        atomic_store(&pool.ctx, ctx);
        atomic_store(&pool.n, n);
        atomic_store(&pool.helpers, helpers);
        atomic_store(&pool.gen, g);
        pthread_mutex_lock(&pool.mu);
        if (pool.sleepers) pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
        run_items(g, fn, ctx, n, 0);
        for (int spins = 0; atomic_load(&pool.done) < n; ++spins) {
            if (spins < SPIN_WAIT) cpu_relax();
            else sched_yield();
        }
        pthread_mutex_unlock(&pool.job_mu);
        return;
    }
    for (int i = 0; i < n; ++i) fn(ctx, i, 0);
}
