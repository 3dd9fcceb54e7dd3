/* threads.h: one place that sets the thread count of OpenMP and the BLAS. */
#ifndef DN_THREADS_H
#define DN_THREADS_H
/* n <= 0: leave the library defaults. */
void dn_threads_apply(int n);
#endif
