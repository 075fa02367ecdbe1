// kvm-floor: the cheapest possible VMM for the benchmark guest (bench/guests/guest.S) — the floor that
// scripts/bench measures Swiftlet against. It does only the KVM ioctls the guest needs and handles exits with
// a fixed switch: no device model, no threads, no configuration. No VMM can start faster or take an exit more
// cheaply than this on the same host; the difference between Swiftlet and this program is the VMM's own cost.
//
// It sets up the guest exactly as `swiftlet run --raw IMAGE --raw-mode user|long --memory 128M` does:
//   - guest RAM: one anonymous mapping of MEMORY bytes at guest-physical 0 (must stay below 3 GiB here);
//   - GDT at 0x500 (Swiftlet's BootGDT layout), empty IDT at 0x580, a 64-bit TSS at 0x600 whose I/O permission
//     bitmap allows ports 0-0x3FF (nested-PVM hosts ignore RFLAGS.IOPL and consult only the bitmap);
//   - page tables at 0x9000 identity-mapping 4 GiB with 2 MiB pages (U/S set for the CPL 3 mode);
//   - the image at 0x1000, entered there with RSP 0x8000, at CPL 3 (CS 0x43, SS 0x3b, IOPL 3) or CPL 0.
// Exits: COM1 data (0x3f8) writes go to stdout, COM1's scratch register (0x3ff) is a one-byte register,
// 0xFE to port 0x64 (i8042 reset) ends the run with status 0, other ports and MMIO read all-ones and ignore
// writes. HLT ends with 3, a triple fault (shutdown) with 4, anything else with 8.
//
//
// With -r it is the floor of a snapshot restore instead (scripts/bench's restore scenario): guest RAM is the
// snapshot's memory file mapped MAP_PRIVATE (as `swiftlet restore` maps it: nothing read, pages load on first
// touch, the file never written), and the vCPU gets the general and special registers the snapshot saved, read
// from REGS: a struct kvm_regs followed by a struct kvm_sregs, raw, as scripts/bench extracts them from the state
// file's vcpu.0 section. Nothing else is restored (no MSRs, FPU/XSAVE, CPUID, clock, devices): just enough for the
// bench guest to run on from the saved instruction. The exits are handled as above.
//
//   gcc -O2 -Wall -o kvm-floor bench/kvm-floor.c && ./kvm-floor [-m MiB] [-l] IMAGE
//   -m  guest RAM in MiB (default 128)     -l  CPL 0 (`long`) instead of CPL 3 (`user`)
//   ./kvm-floor -r REGS MEMORY-FILE        restore: RAM is the file (its size), registers from REGS
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    LOAD_ADDRESS = 0x1000, MAX_IMAGE = 0x6000, STACK_TOP = 0x8000,
    GDT = 0x500, IDT = 0x580, TSS = 0x600, TSS_SIZE = 104 + 128 + 1, RING0_STACK = 0xfff0,
    PML4 = 0x9000, PDPT = 0xa000, PAGE_DIRECTORIES = 0xb000,
};

static void fail(const char *what) {
    fprintf(stderr, "kvm-floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static struct kvm_segment segment(uint16_t selector, uint8_t type, uint8_t dpl, uint8_t l, uint8_t db, uint8_t s) {
    return (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = selector, .type = type, .present = 1,
                                 .dpl = dpl, .db = db, .s = s, .l = l, .g = 1 };
}

static int create_vm(uint8_t *ram, size_t memory_size, struct kvm_run **run);
static int restore(const char *registers_path, const char *memory_path);
static int run_guest(int vcpu, struct kvm_run *run);

int main(int argc, char **argv) {
    size_t memory_size = 128u << 20;
    int user = 1, option;
    const char *registers_path = NULL;
    while ((option = getopt(argc, argv, "m:lr:")) != -1) {
        if (option == 'm') memory_size = strtoul(optarg, NULL, 0) << 20;
        else if (option == 'l') user = 0;
        else if (option == 'r') registers_path = optarg;
        else return 2;
    }
    if (optind != argc - 1 || memory_size < (1u << 20)) {
        fprintf(stderr, "usage: kvm-floor [-m MiB] [-l] IMAGE | kvm-floor -r REGS MEMORY-FILE\n");
        return 2;
    }
    if (registers_path) return restore(registers_path, argv[optind]);

    // Guest RAM, like Swiftlet's GuestMemory: anonymous, populated on first touch.
    uint8_t *ram = mmap(NULL, memory_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) fail("mmap guest memory");
    int image = open(argv[optind], O_RDONLY | O_CLOEXEC);
    if (image < 0) fail(argv[optind]);
    ssize_t image_size = read(image, ram + LOAD_ADDRESS, MAX_IMAGE + 1);
    if (image_size <= 0 || image_size > MAX_IMAGE) { errno = EFBIG; fail("read image"); }
    close(image);

    // GDT (see Swiftlet's BootGDT): 0x10 code64, 0x18 data, 0x20 TSS (busy), 0x30 code32, 0x38 user data, 0x40 user code64.
    uint64_t *gdt = (uint64_t *)(ram + GDT);
    gdt[2] = 0x00af9b000000ffffull;
    gdt[3] = 0x00cf93000000ffffull;
    gdt[4] = (uint64_t)(TSS_SIZE - 1) | ((uint64_t)TSS << 16) | (0x8bull << 40);
    gdt[6] = 0x00cf9b000000ffffull;
    gdt[7] = 0x00cff3000000ffffull;
    gdt[8] = 0x00affb000000ffffull;
    *(uint64_t *)(ram + TSS + 4) = RING0_STACK;    // RSP0
    *(uint16_t *)(ram + TSS + 102) = 104;          // I/O map base; the 128-byte bitmap after it stays 0 (allowed)
    ram[TSS + TSS_SIZE - 1] = 0xff;                 // bitmap terminator
    uint64_t flags = 0x3 | (user ? 0x4 : 0);        // present, writable, (user)
    *(uint64_t *)(ram + PML4) = PDPT | flags;
    for (uint64_t directory = 0; directory < 4; directory++) {
        *(uint64_t *)(ram + PDPT + directory * 8) = (PAGE_DIRECTORIES + directory * 4096) | flags;
        for (uint64_t entry = 0; entry < 512; entry++)
            *(uint64_t *)(ram + PAGE_DIRECTORIES + (directory * 512 + entry) * 8) = ((directory * 512 + entry) << 21) | flags | 0x80;
    }

    struct kvm_run *run;
    int vcpu = create_vm(ram, memory_size, &run);
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) fail("KVM_GET_SREGS");
    struct kvm_segment code = user ? segment(0x43, 0xb, 3, 1, 0, 1) : segment(0x10, 0xb, 0, 1, 0, 1);
    struct kvm_segment data = user ? segment(0x3b, 0x3, 3, 0, 1, 1) : segment(0x18, 0x3, 0, 0, 1, 1);
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = (struct kvm_segment){ .base = TSS, .limit = TSS_SIZE - 1, .selector = 0x20, .type = 0xb, .present = 1 };
    sregs.ldt = (struct kvm_segment){ .type = 0x2, .unusable = 1 };
    sregs.gdt = (struct kvm_dtable){ .base = GDT, .limit = 9 * 8 - 1 };
    sregs.idt = (struct kvm_dtable){ .base = IDT, .limit = 0 };
    sregs.cr0 = 0x80000031;     // PG | NE | ET | PE
    sregs.cr3 = PML4;
    sregs.cr4 = 0x20;           // PAE
    sregs.efer = 0x500;         // LMA | LME
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) fail("KVM_SET_SREGS");
    struct kvm_regs regs = { .rip = LOAD_ADDRESS, .rsp = STACK_TOP, .rflags = user ? 0x3002 : 0x2 };
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) fail("KVM_SET_REGS");
    return run_guest(vcpu, run);
}

// One VM with `ram` as guest-physical 0..size and one vCPU; returns the vCPU and its kvm_run page.
static int create_vm(uint8_t *ram, size_t memory_size, struct kvm_run **run) {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) fail("open /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) fail("KVM_CREATE_VM");
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = memory_size, .userspace_addr = (uint64_t)(uintptr_t)ram };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) fail("KVM_SET_USER_MEMORY_REGION");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) fail("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run)) fail("KVM_GET_VCPU_MMAP_SIZE");
    *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (*run == MAP_FAILED) fail("mmap kvm_run");
    return vcpu;
}

// -r: RAM is the memory file mapped copy-on-write, the registers are the saved ones.
static int restore(const char *registers_path, const char *memory_path) {
    int file = open(memory_path, O_RDONLY | O_CLOEXEC);
    if (file < 0) fail(memory_path);
    struct stat info;
    if (fstat(file, &info) < 0) fail("fstat memory file");
    size_t memory_size = (size_t)info.st_size;
    if (memory_size < (1u << 20) || memory_size % 4096) { errno = EINVAL; fail("memory file size"); }
    uint8_t *ram = mmap(NULL, memory_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, file, 0);
    if (ram == MAP_FAILED) fail("mmap memory file");
    close(file);

    struct kvm_regs regs;
    struct kvm_sregs sregs;
    uint8_t bytes[sizeof regs + sizeof sregs + 1];    // one more, to see that the file is not longer
    int registers = open(registers_path, O_RDONLY | O_CLOEXEC);
    if (registers < 0) fail(registers_path);
    ssize_t got = read(registers, bytes, sizeof bytes);
    if (got != (ssize_t)(sizeof regs + sizeof sregs)) {
        errno = EINVAL;
        fail("REGS is not a struct kvm_regs followed by a struct kvm_sregs");
    }
    close(registers);
    memcpy(&regs, bytes, sizeof regs);
    memcpy(&sregs, bytes + sizeof regs, sizeof sregs);

    struct kvm_run *run;
    int vcpu = create_vm(ram, memory_size, &run);
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) fail("KVM_SET_SREGS");
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) fail("KVM_SET_REGS");
    return run_guest(vcpu, run);
}

// The exit loop: COM1 data to stdout, the scratch register, 0xFE to port 0x64 ends the run.
static int run_guest(int vcpu, struct kvm_run *run) {
    uint8_t scratch = 0;
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            fail("KVM_RUN");
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
                if (run->io.direction == KVM_EXIT_IO_OUT) {
                    if (run->io.port == 0x3f8) {
                        while (write(STDOUT_FILENO, data, 1) < 0 && errno == EINTR) {}
                    } else if (run->io.port == 0x3ff) {
                        scratch = data[0];
                    } else if (run->io.port == 0x64 && data[0] == 0xfe) {
                        return 0;
                    }
                } else {
                    memset(data, 0xff, run->io.size);
                    if (run->io.port == 0x3ff) data[0] = scratch;
                }
            }
            break;
        }
        case KVM_EXIT_MMIO:
            if (!run->mmio.is_write) memset(run->mmio.data, 0xff, run->mmio.len);
            break;
        case KVM_EXIT_HLT:
            return 3;
        case KVM_EXIT_SHUTDOWN:
            fprintf(stderr, "kvm-floor: triple fault\n");
            return 4;
        default:
            fprintf(stderr, "kvm-floor: unexpected exit reason %u\n", run->exit_reason);
            return 8;
        }
    }
}
