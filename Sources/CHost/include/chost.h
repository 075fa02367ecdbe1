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

/// The longest Unix socket path that fits sockaddr_un.sun_path with its terminating NUL (107 on Linux).
int chost_unix_path_maximum(void);

/// A non-blocking, close-on-exec Unix stream socket listening at `path` (which must not exist) with `backlog`.
/// Returns the fd, or -1 with errno set (ENAMETOOLONG for a path longer than chost_unix_path_maximum()).
int chost_unix_listen(const char *path, int backlog);

/// A non-blocking, close-on-exec Unix stream socket connected to the listener at `path`. A Unix connect
/// completes at once or fails (ECONNREFUSED, ENOENT; EAGAIN when the listener's backlog is full). Returns the fd,
/// or -1 with errno set.
int chost_unix_connect(const char *path);

/// accept4(2) (a GNU extension glibc declares only under _GNU_SOURCE) of one pending connection on the
/// listening socket `fd`, made non-blocking and close-on-exec. Returns the fd, or -1 with errno set (EAGAIN
/// when none is waiting).
int chost_accept_nonblocking(int fd);

/// An open file description lock (fcntl F_OFD_SETLK, a GNU extension) on the whole of `fd`'s file: a write lock
/// when `exclusive`, else a read lock. Never waits: -1 with errno EAGAIN when another open file description
/// (another process, QEMU, or another open of the file in this one) holds a conflicting lock.
/// `chost_ofd_lock_conflicts` only asks (F_OFD_GETLK): 1 if such a lock exists, 0 if not, -1 on error.
int chost_ofd_lock_whole_file(int fd, int exclusive);
int chost_ofd_lock_conflicts(int fd, int exclusive);

/// The host CPU's vendor string from CPUID leaf 0 ("GenuineIntel", "AuthenticAMD", ...) into `vendor` (13 bytes
/// with the NUL). Returns 0, or -1 where CPUID has no leaf 0.
int chost_cpu_vendor(char vendor[13]);

/// mallopt(M_ARENA_MAX, count): at most `count` malloc arenas for the whole process (glibc otherwise gives threads
/// arenas of their own, up to 8 per core). Returns 0, or -1 if glibc refused.
int chost_set_malloc_arena_max(int count);

/// malloc_trim(0): gives the kernel back the whole free pages inside malloc's heap (and its top).
void chost_return_free_heap(void);

/// madvise(starts[i], lengths[i], MADV_DONTNEED) for each of `count` ranges: unmaps their pages from this process.
/// For a read-only private file mapping whose pages were never copied on write, the next access maps the file's
/// page again (from the page cache), so nothing is lost. One call for all ranges, so that no Swift code runs (and
/// faults its pages back in) between them. Returns the bytes of the ranges madvise accepted.
size_t chost_drop_mapped_page_ranges(const uintptr_t *starts, const size_t *lengths, size_t count);

/// getauxval(AT_ENTRY): the address of the program's entry point, which lies in the executable's code mapping.
uintptr_t chost_program_entry_point(void);

#endif
