#define _GNU_SOURCE
#include <pthread.h>
#include "chost.h"

int chost_set_thread_name(pthread_t thread, const char *name) { return pthread_setname_np(thread, name); }
