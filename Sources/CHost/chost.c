#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include "chost.h"

int chost_set_thread_name(pthread_t thread, const char *name) { return pthread_setname_np(thread, name); }

int chost_fallocate(int fd, int mode, int64_t offset, int64_t length) { return fallocate(fd, mode, offset, length); }
