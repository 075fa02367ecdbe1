#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "chost.h"

int chost_set_thread_name(pthread_t thread, const char *name) { return pthread_setname_np(thread, name); }

int chost_fallocate(int fd, int mode, int64_t offset, int64_t length) { return fallocate(fd, mode, offset, length); }

int chost_open_tap(const char *name, unsigned int offloads, int *step) {
    *step = 0;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    *step = 1;
    if (ioctl(fd, TUNSETIFF, &request) < 0) goto fail;
    int header_size = 12;   /* struct virtio_net_hdr_v1 (with num_buffers) */
    *step = 2;
    if (ioctl(fd, TUNSETVNETHDRSZ, &header_size) < 0) goto fail;
    *step = 3;
    if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int chost_unix_path_maximum(void) { return (int)sizeof(((struct sockaddr_un *)0)->sun_path) - 1; }

/* Fills `address` for `path`; -1 with ENAMETOOLONG when it does not fit (sun_path is not NUL-terminated
   otherwise, and a silently truncated path would name another socket). */
static int unix_address(const char *path, struct sockaddr_un *address) {
    size_t length = strlen(path);
    if (length == 0 || length > (size_t)chost_unix_path_maximum()) {
        errno = length == 0 ? ENOENT : ENAMETOOLONG;
        return -1;
    }
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    memcpy(address->sun_path, path, length);
    return 0;
}

static int fail_closing(int fd) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int chost_unix_listen(const char *path, int backlog) {
    struct sockaddr_un address;
    if (unix_address(path, &address) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) return fail_closing(fd);
    if (listen(fd, backlog) < 0) return fail_closing(fd);
    return fd;
}

int chost_unix_connect(const char *path) {
    struct sockaddr_un address;
    if (unix_address(path, &address) < 0) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    /* Non-blocking AF_UNIX connect never waits (so never sees EINTR): it is done or refused. */
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) return fail_closing(fd);
    return fd;
}

int chost_accept_nonblocking(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int chost_ofd_lock_whole_file(int fd, int exclusive) {
    struct flock lock = {0};  // l_pid must be 0 for OFD locks
    lock.l_type = exclusive ? F_WRLCK : F_RDLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0;
    lock.l_len = 0;  // to the end of the file, however it grows
    int result;
    do { result = fcntl(fd, F_OFD_SETLK, &lock); } while (result < 0 && errno == EINTR);
    return result;
}

int chost_ofd_lock_conflicts(int fd, int exclusive) {
    struct flock lock = {0};
    lock.l_type = exclusive ? F_WRLCK : F_RDLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = 0;
    lock.l_len = 0;
    if (fcntl(fd, F_OFD_GETLK, &lock) < 0) return -1;
    return lock.l_type == F_UNLCK ? 0 : 1;
}

#include <cpuid.h>
#include <string.h>

int chost_cpu_vendor(char vendor[13]) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return -1;
    memcpy(vendor, &ebx, 4);
    memcpy(vendor + 4, &edx, 4);
    memcpy(vendor + 8, &ecx, 4);
    vendor[12] = 0;
    return 0;
}

#include <malloc.h>

int chost_set_malloc_arena_max(int count) { return mallopt(M_ARENA_MAX, count) == 1 ? 0 : -1; }

void chost_return_free_heap(void) { malloc_trim(0); }

#include <sys/mman.h>

size_t chost_drop_mapped_page_ranges(const uintptr_t *starts, const size_t *lengths, size_t count) {
    size_t dropped = 0;
    for (size_t index = 0; index < count; index++) {
        if (madvise((void *)starts[index], lengths[index], MADV_DONTNEED) == 0) dropped += lengths[index];
    }
    return dropped;
}

#include <sys/auxv.h>

uintptr_t chost_program_entry_point(void) { return (uintptr_t)getauxval(AT_ENTRY); }
