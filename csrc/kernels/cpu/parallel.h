/* parallel.h: a small completion-based thread pool for the CPU kernels.
 *
 * dn_parallel_for hands out items one at a time to the calling thread and up
 * to nthreads-1 pool threads, and returns as soon as every item has
 * finished: it never waits for a helper that took no item. On a machine
 * where another process occupies a core, a helper that is not scheduled
 * simply does less, instead of holding everyone at a barrier as a static
 * OpenMP split does. Helpers spin briefly between calls, then sleep.
 *
 * The thread count follows the one setting of threads.h: dn_threads_apply
 * also sets it here; until then it is omp_get_max_threads() (or the online
 * CPUs without OpenMP). Calls from inside an item, or while another thread
 * is using the pool, run serially on the caller.
 */
#ifndef DN_PARALLEL_H
#define DN_PARALLEL_H

/* fn(ctx, item, tid): tid in [0, nthreads) is unique among the threads
 * running items of this call at the same time (index per-thread scratch). */
typedef void (*dn_parallel_fn)(void *ctx, int item, int tid);

void dn_parallel_for(int n, int nthreads, dn_parallel_fn fn, void *ctx);

/* The thread count kernels should use now; n <= 0 leaves it unchanged. */
int dn_parallel_threads(void);
void dn_parallel_set_threads(int n);

#define DN_PARALLEL_MAX_THREADS 64

#endif
