// CHost: the few Linux host interfaces Swift's Glibc module does not export (they sit behind _GNU_SOURCE or
// in headers outside its module map). Declarations only; the definitions in chost.c see _GNU_SOURCE.
#ifndef CHOST_H
#define CHOST_H

#include <sys/signalfd.h>
#include <pthread.h>

/// pthread_setname_np: names a thread for top -H and /proc/PID/task/*/comm (at most 15 bytes).
int chost_set_thread_name(pthread_t thread, const char *name);

/// fallocate(2) (glibc declares it only under _GNU_SOURCE); the FALLOC_FL_* flags come from <linux/falloc.h>.
#include <linux/falloc.h>
#include <stdint.h>
int chost_fallocate(int fd, int mode, int64_t offset, int64_t length);

#endif
