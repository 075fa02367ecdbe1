// disk-io: the disk scenario's workload (scripts/bench --only disk, docs/performance.md). The same static program
// runs inside the guest on /dev/vda and in the test host on the image file behind it, so both sides do exactly the
// same I/O and time it the same way (CLOCK_MONOTONIC around the loop, nothing else inside it).
//
//   disk-io PATH seqread  MIB          read the first MIB MiB in 1 MiB requests
//   disk-io PATH seqwrite MIB          write them in 1 MiB requests, then fdatasync (inside the timing)
//   disk-io PATH randread MIB COUNT    COUNT reads of 4 KiB at random 4 KiB-aligned offsets in the first MIB MiB
//
// O_DIRECT when the file system takes it (a block device does; the test host's tmpfs, Linux 6.1, does not), so
// the guest's own page cache is bypassed and every request reaches the virtio-blk device. Prints one line:
//   DISKIO mode=seqread direct=1 bytes=67108864 ops=64 ns=123456789
// Exit status 1 with a message on any error (short reads included). Built by scripts/bench with gcc -static.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void fail(const char *what) {
    fprintf(stderr, "disk-io: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// xorshift64*: a fixed sequence of offsets, the same on both sides and in every run.
static uint64_t next_random(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Dull;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: disk-io PATH seqread|seqwrite|randread MIB [COUNT]\n");
        return 2;
    }
    const char *path = argv[1], *mode = argv[2];
    uint64_t bytes = strtoull(argv[3], NULL, 10) << 20;
    uint64_t count = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
    int writing = strcmp(mode, "seqwrite") == 0, random = strcmp(mode, "randread") == 0;
    if (!writing && !random && strcmp(mode, "seqread") != 0) {
        fprintf(stderr, "disk-io: unknown mode %s\n", mode);
        return 2;
    }
    if (bytes == 0 || (random && count == 0)) {
        fprintf(stderr, "disk-io: MIB and COUNT must be positive\n");
        return 2;
    }

    int flags = (writing ? O_WRONLY : O_RDONLY) | O_CLOEXEC;
    int direct = 1;
    int fd = open(path, flags | O_DIRECT);
    if (fd < 0 && errno == EINVAL) {
        direct = 0;
        fd = open(path, flags);
    }
    if (fd < 0) fail(path);

    size_t block = random ? 4096 : 1 << 20;
    void *buffer;
    if (posix_memalign(&buffer, 4096, block) != 0) fail("posix_memalign");
    memset(buffer, 0xA5, block);   // written data is not all zeros; read buffers are faulted in before timing

    uint64_t ops = random ? count : bytes / block;
    uint64_t state = 0x9E3779B97F4A7C15ull, blocks = bytes / 4096;
    uint64_t start = now_ns();
    for (uint64_t i = 0; i < ops; i++) {
        off_t offset = random ? (off_t)(next_random(&state) % blocks) * 4096 : (off_t)(i * block);
        ssize_t done = writing ? pwrite(fd, buffer, block, offset) : pread(fd, buffer, block, offset);
        if (done < 0) fail(writing ? "pwrite" : "pread");
        if ((size_t)done != block) {
            errno = EIO;
            fail("short transfer (is the file smaller than MIB?)");
        }
    }
    if (writing && fdatasync(fd) != 0) fail("fdatasync");
    uint64_t elapsed = now_ns() - start;
    close(fd);
    printf("DISKIO mode=%s direct=%d bytes=%llu ops=%llu ns=%llu\n", mode, direct,
           (unsigned long long)(ops * block), (unsigned long long)ops, (unsigned long long)elapsed);
    return 0;
}
