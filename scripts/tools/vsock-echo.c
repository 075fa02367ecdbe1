/*
 * vsock-echo: a small test tool for Swiftlet's virtio-vsock device, for both ends of a connection.
 * busybox has no AF_VSOCK tool, so scripts/setup builds this statically (gcc -static) into the default guest's
 * initramfs as /usr/bin/vsock-echo; the end-to-end test also runs it in the test host for the host side, which
 * speaks Firecracker's Unix socket convention (CONNECT <port>\n → OK <hostport>\n; a guest connecting to host
 * port P reaches a listener at <socket>_P).
 *
 *   vsock-echo listen PORT [COUNT]       AF_VSOCK echo server: echoes each connection back until it ends
 *                                        (COUNT connections, default: forever; one child process each)
 *   vsock-echo sink PORT                 AF_VSOCK: accepts one connection, reads it to the end, reports the rate
 *   vsock-echo connect CID PORT          AF_VSOCK client for an echo server: sends stdin, reads back as many
 *                                        bytes as it sent, writes them to stdout
 *   vsock-echo unix-listen PATH [COUNT]  the echo server on a Unix socket (a host listener at <socket>_<port>)
 *   vsock-echo unix-connect PATH PORT    host side: connects to the device socket PATH, sends CONNECT PORT,
 *                                        waits for OK, then works as `connect`
 *   vsock-echo unix-send PATH PORT       as unix-connect, but one way: sends stdin, then closes (for `sink`)
 *
 * Clients never half-close (shutdown(SHUT_WR)): on the host side, Firecracker's convention turns end of file
 * into a full shutdown of the connection. Each client prints one summary line on stderr, e.g.
 *   vsock-echo: sent 1048576 bytes, received 1048576 bytes in 0.512 s
 * Exit status: 0 done; 1 usage; 2 connection refused or closed before OK; 3 other errors.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define CHUNK 65536

static void fail(int status, const char *what) {
    fprintf(stderr, "vsock-echo: %s: %s\n", what, strerror(errno));
    exit(status);
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned long parse_number(const char *text, const char *what) {
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || *text == '\0' || *end != '\0' || value > 0xFFFFFFFFul) {
        fprintf(stderr, "vsock-echo: %s '%s' is not a 32-bit number\n", what, text);
        exit(1);
    }
    return value;
}

static int write_all(int fd, const char *bytes, size_t count) {
    while (count > 0) {
        ssize_t written = write(fd, bytes, count);
        if (written < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        bytes += written;
        count -= (size_t)written;
    }
    return 0;
}

/* ---- servers ---- */

static int vsock_listener(unsigned port) {
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) fail(3, "socket(AF_VSOCK)");
    struct sockaddr_vm address = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) fail(3, "bind");
    if (listen(fd, 16) < 0) fail(3, "listen");
    return fd;
}

/* The address of the Unix socket at `path`; a path too long for it ends the program. */
static struct sockaddr_un unix_address(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        fprintf(stderr, "vsock-echo: path too long: %s\n", path);
        exit(1);
    }
    strcpy(address.sun_path, path);
    return address;
}

static int unix_listener(const char *path) {
    struct sockaddr_un address = unix_address(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) fail(3, "socket(AF_UNIX)");
    unlink(path);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) fail(3, "bind");
    if (listen(fd, 16) < 0) fail(3, "listen");
    return fd;
}

/* Echoes one connection until the peer ends it. */
static void echo(int fd) {
    static char buffer[CHUNK];
    for (;;) {
        ssize_t count = read(fd, buffer, sizeof buffer);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) break;
        if (write_all(fd, buffer, (size_t)count) < 0) break;
    }
    close(fd);
}

static int serve(int listener, const char *what, unsigned long count) {
    signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
    printf("vsock-echo: echo server listening on %s\n", what);
    fflush(stdout);
    unsigned long served = 0;
    while (count == 0 || served < count) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            fail(3, "accept");
        }
        served++;
        pid_t child = fork();
        if (child == 0) {
            close(listener);
            echo(fd);
            _exit(0);
        }
        close(fd);
        if (child < 0) fail(3, "fork");
    }
    /* Let the last connections finish before exiting. */
    signal(SIGCHLD, SIG_DFL);
    while (wait(NULL) > 0 || errno == EINTR) {}
    return 0;
}

static int sink(int listener, const char *what) {
    printf("vsock-echo: sink listening on %s\n", what);
    fflush(stdout);
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) fail(3, "accept");
    static char buffer[CHUNK];
    unsigned long long total = 0;
    double started = 0;
    for (;;) {
        ssize_t count = read(fd, buffer, sizeof buffer);
        if (count < 0 && errno == EINTR) continue;
        if (count < 0) fail(3, "read");
        if (count == 0) break;
        if (total == 0) started = now_seconds();
        total += (unsigned long long)count;
    }
    double seconds = total > 0 ? now_seconds() - started : 0;
    printf("vsock-echo: sink received %llu bytes in %.3f s (%.2f MB/s)\n", total, seconds,
           seconds > 0 ? (double)total / seconds / 1e6 : 0.0);
    close(fd);
    return 0;
}

/* ---- clients ---- */

static int vsock_connect(unsigned cid, unsigned port) {
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) fail(3, "socket(AF_VSOCK)");
    struct sockaddr_vm address = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) fail(2, "connect");
    return fd;
}

/* Connects to the device socket and does the CONNECT/OK handshake; the OK line is read byte by byte so that
   no stream data after it is swallowed. */
static int unix_connect(const char *path, unsigned port) {
    struct sockaddr_un address = unix_address(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) fail(3, "socket(AF_UNIX)");
    if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) fail(2, "connect");
    char line[64];
    int length = snprintf(line, sizeof line, "CONNECT %u\n", port);
    if (write_all(fd, line, (size_t)length) < 0) fail(2, "write CONNECT");
    size_t used = 0;
    for (;;) {
        ssize_t count = read(fd, line + used, 1);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) {
            fprintf(stderr, "vsock-echo: the connection to port %u was refused (closed before OK)\n", port);
            exit(2);
        }
        if (line[used] == '\n') break;
        if (++used == sizeof line - 1) {
            fprintf(stderr, "vsock-echo: no OK line\n");
            exit(3);
        }
    }
    line[used] = '\0';
    if (strncmp(line, "OK ", 3) != 0) {
        fprintf(stderr, "vsock-echo: unexpected answer '%s'\n", line);
        exit(3);
    }
    fprintf(stderr, "vsock-echo: connected to port %u (host port %s)\n", port, line + 3);
    return fd;
}

/* Sends stdin to `fd` while copying what comes back to stdout, until stdin is done and (when `expect_echo`)
   as many bytes came back as were sent. poll() keeps both directions moving, so an echo server never blocks
   on a full socket while we block on sending. */
static int pump(int fd, int expect_echo) {
    static char out[CHUNK], in[CHUNK];
    size_t pending = 0, offset = 0;
    unsigned long long sent = 0, received = 0;
    int input_done = 0;
    double started = now_seconds();
    for (;;) {
        if (input_done && pending == 0 && (!expect_echo || received >= sent)) break;
        if (!input_done && pending == 0) {
            ssize_t count = read(STDIN_FILENO, out, sizeof out);
            if (count < 0 && errno == EINTR) continue;
            if (count < 0) fail(3, "read stdin");
            if (count == 0) {
                input_done = 1;
                continue;
            }
            pending = (size_t)count;
            offset = 0;
        }
        struct pollfd fds = {.fd = fd, .events = (short)((pending > 0 ? POLLOUT : 0) | (expect_echo ? POLLIN : 0))};
        if (poll(&fds, 1, -1) < 0) {
            if (errno == EINTR) continue;
            fail(3, "poll");
        }
        if (fds.revents & POLLIN) {
            ssize_t count = read(fd, in, sizeof in);
            if (count < 0 && errno != EINTR) fail(3, "read");
            if (count == 0) break; /* the peer ended the connection */
            if (count > 0) {
                if (write_all(STDOUT_FILENO, in, (size_t)count) < 0) fail(3, "write stdout");
                received += (unsigned long long)count;
            }
        } else if (fds.revents & (POLLERR | POLLHUP)) {
            if (!(fds.revents & POLLOUT)) break;
        }
        if (pending > 0 && (fds.revents & POLLOUT)) {
            ssize_t count = send(fd, out + offset, pending, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (count < 0 && errno != EAGAIN && errno != EINTR) fail(3, "send");
            if (count > 0) {
                offset += (size_t)count;
                pending -= (size_t)count;
                sent += (unsigned long long)count;
            }
        }
    }
    double seconds = now_seconds() - started;
    fprintf(stderr, "vsock-echo: sent %llu bytes, received %llu bytes in %.3f s\n", sent, received, seconds);
    close(fd);
    return expect_echo && received != sent ? 3 : 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: vsock-echo listen PORT [COUNT] | sink PORT | connect CID PORT\n"
            "       vsock-echo unix-listen PATH [COUNT] | unix-connect PATH PORT | unix-send PATH PORT\n");
    exit(1);
}

int main(int argc, char **argv) {
    if (argc < 3) usage();
    const char *mode = argv[1];
    char what[160];
    if (strcmp(mode, "listen") == 0 && argc <= 4) {
        unsigned port = (unsigned)parse_number(argv[2], "port");
        snprintf(what, sizeof what, "vsock port %u", port);
        return serve(vsock_listener(port), what, argc == 4 ? parse_number(argv[3], "count") : 0);
    }
    if (strcmp(mode, "sink") == 0 && argc == 3) {
        unsigned port = (unsigned)parse_number(argv[2], "port");
        snprintf(what, sizeof what, "vsock port %u", port);
        return sink(vsock_listener(port), what);
    }
    if (strcmp(mode, "connect") == 0 && argc == 4) {
        return pump(vsock_connect((unsigned)parse_number(argv[2], "cid"), (unsigned)parse_number(argv[3], "port")), 1);
    }
    if (strcmp(mode, "unix-listen") == 0 && argc <= 4) {
        snprintf(what, sizeof what, "%s", argv[2]);
        return serve(unix_listener(argv[2]), what, argc == 4 ? parse_number(argv[3], "count") : 0);
    }
    if ((strcmp(mode, "unix-connect") == 0 || strcmp(mode, "unix-send") == 0) && argc == 4) {
        int fd = unix_connect(argv[2], (unsigned)parse_number(argv[3], "port"));
        return pump(fd, strcmp(mode, "unix-connect") == 0);
    }
    usage();
    return 1;
}
