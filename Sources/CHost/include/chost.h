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

/// Opens /dev/net/tun and attaches the TAP interface `name` (created if the caller may, i.e. has CAP_NET_ADMIN)
/// with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, sets the 12-byte virtio_net_hdr_v1 size and the offloads in
/// `offloads` (TUN_F_* bits). Returns the fd, or -1 with errno set and `*step` the failing step:
/// 0 open /dev/net/tun, 1 TUNSETIFF, 2 TUNSETVNETHDRSZ, 3 TUNSETOFFLOAD.
int chost_open_tap(const char *name, unsigned int offloads, int *step);

/// A Unix stream socket (non-blocking, close-on-exec) bound to `path` and listening with `backlog`. Returns the fd,
/// or -1 with errno set and `*step` the failing step: 0 socket, 1 bind, 2 listen. A path too long for sun_path
/// fails at step 1 with ENAMETOOLONG. The path must not exist (the caller removes a stale socket first).
int chost_unix_listen(const char *path, int backlog, int *step);

/// A Unix stream socket (non-blocking, close-on-exec) connected to `path`. A Unix connect never waits: it
/// succeeds, or fails with ECONNREFUSED (nobody listens), ENOENT, EAGAIN (the listener's backlog is full), ...
/// Returns the fd, or -1 with errno set and `*step`: 0 socket, 1 connect.
int chost_unix_connect(const char *path, int *step);

/// accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC) (glibc declares it only under _GNU_SOURCE).
int chost_accept(int listener);

#endif
