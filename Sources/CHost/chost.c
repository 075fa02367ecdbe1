#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
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

/* Fills `address` for `path`; fails with ENAMETOOLONG when the path and its NUL do not fit in sun_path. */
static int unix_address(const char *path, struct sockaddr_un *address) {
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof address->sun_path) {
        errno = length == 0 ? ENOENT : ENAMETOOLONG;
        return -1;
    }
    memcpy(address->sun_path, path, length + 1);
    return 0;
}

int chost_unix_listen(const char *path, int backlog, int *step) {
    *step = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un address;
    *step = 1;
    if (unix_address(path, &address) < 0) goto fail;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) goto fail;
    *step = 2;
    if (listen(fd, backlog) < 0) goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int chost_unix_connect(const char *path, int *step) {
    *step = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un address;
    *step = 1;
    if (unix_address(path, &address) < 0) goto fail;
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int chost_accept(int listener) { return accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }
